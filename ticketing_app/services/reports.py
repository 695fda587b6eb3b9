"""What admins see about the whole system: ticket statistics, the job queue's health, and e-mails."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select, text
from sqlalchemy.orm import Session

from ticketing_app.domain import CorrectionField, JobStatus, TicketStatus, TriageStatus
from ticketing_app.errors import NotFound
from ticketing_app.jobs import queue
from ticketing_app.models import EmailMessage, Job, Ticket, User
from ticketing_app.services import sla
from ticketing_app.services.accounts import require_admin

# The breakdowns the overview shows. One query groups by all four at once (a few hundred combinations) and the
# breakdowns are summed from it here: one parallel scan of the tickets table instead of one per breakdown.
# GROUPING SETS, which sorts once per set, was slower than the five scans (bench/README.md, sixth round).
_BREAKDOWNS = {
    "by_category": Ticket.category,
    "by_priority": Ticket.priority,
    "by_status": Ticket.status,
    "by_provider": Ticket.triage_provider,
}


def _breakdowns(session: Session) -> tuple[dict[str, dict[str, int]], int]:
    """Counts per category, priority, status and provider (None as "untriaged"), and the total."""
    columns = list(_BREAKDOWNS.values())
    out: dict[str, Counter[str]] = {name: Counter() for name in _BREAKDOWNS}
    total = 0
    for result_row in session.execute(select(*columns, func.count()).group_by(*columns)):
        *values, count = tuple(result_row)
        total += count
        for name, value in zip(_BREAKDOWNS, values, strict=True):
            out[name][str(value) if value is not None else "untriaged"] += count
    return {name: dict(counter) for name, counter in out.items()}, total


def ticket_overview(session: Session, actor: User, *, days: int = 14) -> dict[str, Any]:
    """Counts per day, category, priority, status and provider, and the median submit-to-assignment time of
    the tickets filed in the same `days` (the recent figure is the useful one, and it is read from an index)."""
    require_admin(actor)
    since = (datetime.now(UTC) - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = cast(func.timezone("UTC", Ticket.created_at), Date)
    per_day_rows = session.execute(
        select(day, func.count()).where(Ticket.created_at >= since).group_by(day).order_by(day)
    ).all()
    per_day = {d.isoformat(): n for d, n in per_day_rows}
    start = since.date()
    series = [
        {
            "day": (start + timedelta(days=i)).isoformat()[5:],
            "tickets": per_day.get((start + timedelta(days=i)).isoformat(), 0),
        }
        for i in range(days)
    ]
    median_seconds = session.scalar(
        select(
            func.percentile_cont(0.5).within_group(func.extract("epoch", Ticket.assigned_at - Ticket.created_at))
        ).where(Ticket.created_at >= since, Ticket.assigned_at.is_not(None))
    )
    breakdowns, total = _breakdowns(session)
    return {
        "per_day": series,
        **breakdowns,
        "total": total,
        "median_seconds_to_assignment": float(median_seconds) if median_seconds is not None else None,
        "sla_attainment": sla.attainment(session, since),
        "sla_policy": sla.policy(),
    }


# Per closed ticket the AI triaged: its category as the AI set it (before any correction), and whether staff
# corrected each field. Read in one pass over the closed tickets with one look-up per field.
_KEPT = ", ".join(
    f"count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM triage_corrections c "
    f"WHERE c.ticket_id = t.id AND c.field = '{field}')) AS {field}_kept"
    for field in CorrectionField
)
_ACCEPTANCE = f"""
    SELECT coalesce(
               (SELECT c.ai_value FROM triage_corrections c
                WHERE c.ticket_id = t.id AND c.field = '{CorrectionField.CATEGORY}' ORDER BY c.id LIMIT 1),
               t.category, 'untriaged') AS category,
           count(*) AS closed, {_KEPT}
    FROM tickets t
    WHERE t.triage_status = '{TriageStatus.DONE}' AND t.status IN ('{TicketStatus.RESOLVED}', '{TicketStatus.CLOSED}')
    GROUP BY 1
    ORDER BY 2 DESC, 1
"""


def ai_acceptance(session: Session, actor: User) -> dict[str, Any]:
    """The AI acceptance rate: the share of AI-set fields (category, priority, assignee) still unchanged by staff
    when tickets are resolved or closed, overall and per category (as the AI set it). Rates are None when no
    ticket is closed: {"closed": n, "overall": {field: rate}, "per_category": [{"category", "closed", "kept"}]}."""
    require_admin(actor)
    rows = session.execute(text(_ACCEPTANCE)).all()
    fields = [str(f) for f in CorrectionField]

    def rates(closed: int, kept: dict[str, int]) -> dict[str, float | None]:
        return {f: (kept[f] / closed if closed else None) for f in fields}

    per_category = []
    totals = dict.fromkeys(fields, 0)
    closed_total = 0
    for row in rows:
        kept = {f: int(getattr(row, f"{f}_kept")) for f in fields}
        per_category.append({"category": row.category, "closed": int(row.closed), "kept": rates(int(row.closed), kept)})
        closed_total += int(row.closed)
        for f in fields:
            totals[f] += kept[f]
    return {"closed": closed_total, "overall": rates(closed_total, totals), "per_category": per_category}


def job_health(session: Session, actor: User, *, limit: int = 20) -> dict[str, Any]:
    """Queue counts by status (done estimated on a very large table), and the dead-lettered jobs."""
    require_admin(actor)
    dead = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.DEAD)
        .order_by(Job.finished_at.desc().nulls_last(), Job.id.desc())
        .limit(limit)
    ).all()
    counts, done_estimated = queue.counts_by_status(session)
    return {
        "counts": {str(s): counts.get(s, 0) for s in JobStatus},
        "done_estimated": done_estimated,
        "dead": [
            {
                "id": j.id,
                "kind": j.kind,
                "attempts": j.attempts,
                "error": (j.last_error or "")[-500:],
                "payload": j.payload,
                "finished_at": j.finished_at,
            }
            for j in dead
        ],
    }


def retry_job(session: Session, actor: User, job_id: int) -> None:
    """Put a dead-lettered job back in the queue."""
    require_admin(actor)
    if not queue.retry_dead(session, job_id):
        raise NotFound("No dead-lettered job with this id.")


def recent_emails(session: Session, actor: User, *, limit: int = 20) -> list[EmailMessage]:
    """The newest e-mails with their delivery state (recorded ones included)."""
    require_admin(actor)
    return list(session.scalars(select(EmailMessage).order_by(EmailMessage.id.desc()).limit(limit)))


@dataclass(frozen=True)
class AdminOverview:
    """Everything the admin overview shows, read in one transaction."""

    tickets: dict[str, Any]  # ticket_overview
    jobs: dict[str, Any]  # job_health
    emails: list[EmailMessage]  # recent_emails
    satisfaction: dict[str, Any]  # satisfaction.satisfaction_overview
    acceptance: dict[str, Any] | None = None  # ai_acceptance


def admin_overview(session: Session, actor: User) -> AdminOverview:
    """The overview page's data (admins only)."""
    from ticketing_app.services.satisfaction import satisfaction_overview  # it builds on the ticket service

    return AdminOverview(
        tickets=ticket_overview(session, actor),
        jobs=job_health(session, actor),
        emails=recent_emails(session, actor),
        satisfaction=satisfaction_overview(session, actor),
        acceptance=ai_acceptance(session, actor),
    )
