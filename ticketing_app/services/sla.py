"""SLAs in business time: each ticket's targets, the clock's pauses, first response, warnings and attainment.

Two targets per priority (SLA_FIRST_RESPONSE_HOURS_*, SLA_HOURS_*), counted in business hours from the
ticket's arrival (businesstime.py). The resolution clock stops while a ticket is pending, resolved or closed;
when it runs again, the business time it stood still is added to `sla_paused_seconds` and the due time moves
out by it. The first-response clock stops only at the first public staff reply (or when the ticket is closed
or resolved without one). The worker's check mails the assignee at SLA_WARNING_PERCENT and the admins at the
breach, each once per ticket and target, stamped in the same transaction that stores the mails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ticketing_app import businesstime
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import (
    ACTIVE_STATUSES,
    CLOCK_RUNNING_STATUSES,
    Priority,
    Role,
    SlaTarget,
    TicketStatus,
    sql_in,
)
from ticketing_app.mail import sla_messages
from ticketing_app.models import Ticket, User
from ticketing_app.services import notifications

log = logging.getLogger(__name__)


def schedule() -> businesstime.Schedule:
    return get_settings().business_schedule()


def target_hours(target: SlaTarget, priority: str) -> float:
    """The target for a priority, in business hours."""
    prefix = "sla_hours" if target == SlaTarget.RESOLUTION else "sla_first_response_hours"
    return float(getattr(get_settings(), f"{prefix}_{Priority(priority)}"))


def set_targets(ticket: Ticket, *, now: datetime | None = None) -> None:
    """(Re)compute the ticket's due and warning moments from its arrival, priority and paused time.

    Called when the priority is first known (triage) or changed by staff, and when the clock resumes. A stamp
    whose moment moves into the future again is cleared, so that threshold may warn again.
    """
    if ticket.priority is None:
        return
    now = now or datetime.now(UTC)
    sched = schedule()
    share = get_settings().sla_warning_percent / 100
    first = target_hours(SlaTarget.FIRST_RESPONSE, ticket.priority) * 3600
    resolve = target_hours(SlaTarget.RESOLUTION, ticket.priority) * 3600
    paused = ticket.sla_paused_seconds or 0
    start = ticket.created_at
    ticket.first_response_due_at = businesstime.add(sched, start, first)
    ticket.first_response_warn_at = businesstime.add(sched, start, first * share)
    ticket.due_at = businesstime.add(sched, start, resolve + paused)
    ticket.sla_warn_at = businesstime.add(sched, start, resolve * share + paused)
    for moment, stamp in (
        ("first_response_warn_at", "first_response_warned_at"),
        ("first_response_due_at", "first_response_breach_mailed_at"),
        ("sla_warn_at", "sla_warned_at"),
        ("due_at", "sla_breach_mailed_at"),
    ):
        if getattr(ticket, moment) > now:
            setattr(ticket, stamp, None)


def due_time(priority: str | None, created_at: datetime) -> datetime | None:
    """When a ticket of this priority filed at `created_at` should be resolved (no time paused)."""
    if priority is None:
        return None
    return businesstime.add(schedule(), created_at, target_hours(SlaTarget.RESOLUTION, priority) * 3600)


def on_status_change(ticket: Ticket, new: str, *, now: datetime | None = None) -> None:
    """Stop the resolution clock when a ticket leaves open / in progress; run it again when it comes back."""
    now = now or datetime.now(UTC)
    if new in CLOCK_RUNNING_STATUSES:
        if ticket.sla_paused_at is not None:
            stood = businesstime.elapsed(schedule(), ticket.sla_paused_at, now)
            ticket.sla_paused_seconds = (ticket.sla_paused_seconds or 0) + round(stood)
            ticket.sla_paused_at = None
            set_targets(ticket, now=now)
    elif ticket.sla_paused_at is None:
        ticket.sla_paused_at = now


# ----- what a ticket's clocks say -----


@dataclass(frozen=True)
class Clock:
    """One target of one ticket, now: when it is due, whether it is met, missed or paused, and the business
    time left (negative: overdue by that much)."""

    due_at: datetime | None
    breached: bool
    done: bool  # met or missed for good: the clock stopped with a reply / resolution
    paused: bool
    seconds_left: float | None  # None without a target, or once stopped

    def describe(self) -> str:
        """For people: "3h 20m left", "overdue 1h", "paused" (or "paused (overdue)" when it stopped past its
        due time), "met", "missed", or "" without a target."""
        if self.due_at is None:
            return ""
        if self.done:
            return "missed" if self.breached else "met"
        if self.paused:
            return "paused (overdue)" if self.breached else "paused"
        left = self.seconds_left or 0.0
        if left < 0:
            return f"overdue {businesstime.humanize(left)}"
        return f"{businesstime.humanize(left)} left"


def _left(due: datetime, now: datetime) -> float:
    sched = schedule()
    return businesstime.elapsed(sched, now, due) if due > now else -businesstime.elapsed(sched, due, now)


def first_response_clock(ticket: Any, now: datetime) -> Clock:
    due = ticket.first_response_due_at
    stopped = ticket.first_responded_at
    if stopped is None and ticket.status not in ACTIVE_STATUSES:
        stopped = ticket.sla_paused_at or ticket.resolved_at or ticket.updated_at
    if due is None:
        return Clock(None, False, stopped is not None, False, None)
    if stopped is not None:
        return Clock(due, stopped > due, True, False, None)
    return Clock(due, now > due, False, False, _left(due, now))


def resolution_clock(ticket: Any, now: datetime) -> Clock:
    due = ticket.due_at
    done = ticket.status not in ACTIVE_STATUSES
    paused = ticket.status == TicketStatus.PENDING
    if due is None:
        return Clock(None, False, done, paused, None)
    if done or paused:
        stopped = ticket.sla_paused_at or ticket.resolved_at or now
        return Clock(due, stopped > due, done, paused, None)
    return Clock(due, now > due, False, False, _left(due, now))


def clock_text(due_at: datetime | None, *, breached: bool, stopped: bool, paused: bool, now: datetime) -> str:
    """What a clock shows people, from a ticket's JSON-level fields (see Clock.describe)."""
    running = due_at is not None and not stopped and not paused
    left = _left(due_at, now) if running and due_at is not None else None
    return Clock(due_at, breached, stopped, paused, left).describe()


def sla_out(ticket: Any, now: datetime | None = None) -> dict[str, Any]:
    """The `sla` field of ticket JSON."""
    now = now or datetime.now(UTC)
    first, resolution = first_response_clock(ticket, now), resolution_clock(ticket, now)
    return {
        "first_response": {"due_at": first.due_at, "breached": first.breached},
        "resolution": {"due_at": resolution.due_at, "breached": resolution.breached, "paused": resolution.paused},
    }


# ----- the worker's check: warnings and breaches, each mailed once -----

CHECK_BATCH = 200


@dataclass(frozen=True)
class _Threshold:
    target: SlaTarget
    breach: bool
    moment: str  # the column holding when it fires
    stamp: str  # the column recording that its mail went out
    condition: str  # which tickets it applies to (the partial index's predicate, written the same way)


_RUNNING = sql_in("status", CLOCK_RUNNING_STATUSES)
_ACTIVE = sql_in("status", ACTIVE_STATUSES)
THRESHOLDS = (
    _Threshold(
        SlaTarget.FIRST_RESPONSE,
        False,
        "first_response_warn_at",
        "first_response_warned_at",
        f"first_responded_at IS NULL AND first_response_warned_at IS NULL AND {_ACTIVE}",
    ),
    _Threshold(
        SlaTarget.FIRST_RESPONSE,
        True,
        "first_response_due_at",
        "first_response_breach_mailed_at",
        f"first_responded_at IS NULL AND first_response_breach_mailed_at IS NULL AND {_ACTIVE}",
    ),
    _Threshold(SlaTarget.RESOLUTION, False, "sla_warn_at", "sla_warned_at", f"sla_warned_at IS NULL AND {_RUNNING}"),
    _Threshold(
        SlaTarget.RESOLUTION, True, "due_at", "sla_breach_mailed_at", f"sla_breach_mailed_at IS NULL AND {_RUNNING}"
    ),
)


def _claim_sql(threshold: _Threshold) -> Any:
    """Stamp up to :limit tickets whose threshold has passed and return them. Rows another worker holds are
    skipped, and the stamp's IS NULL is checked again on the locked row, so two workers never both stamp (and
    mail) one ticket. `late`: a warning whose due time has passed too (only the breach is mailed then)."""
    due = "first_response_due_at" if threshold.target == SlaTarget.FIRST_RESPONSE else "due_at"
    return text(
        f"""
        UPDATE tickets t SET {threshold.stamp} = now()
        FROM (
            SELECT id FROM tickets
            WHERE {threshold.moment} <= now() AND {threshold.condition}
            ORDER BY {threshold.moment}
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        ) due
        WHERE t.id = due.id AND t.{threshold.stamp} IS NULL
        RETURNING t.id, t.{due} <= now() AS late
        """
    )


def check(session: Session, *, limit: int = CHECK_BATCH) -> dict[str, int]:
    """Stamp every ticket that crossed a threshold and queue its mails, in the caller's transaction.

    Warnings go to the assignee (none when unassigned), breaches to every active admin. Returns how many
    tickets crossed each threshold.
    """
    counts: dict[str, int] = {}
    drafts: list[notifications.Draft] = []
    admins: list[User] | None = None
    for threshold in THRESHOLDS:
        rows = session.execute(_claim_sql(threshold), {"limit": limit}).all()
        counts[f"{threshold.target}_{'breach' if threshold.breach else 'warning'}"] = len(rows)
        ids = [row.id for row in rows if threshold.breach or not row.late]
        if not ids:
            continue
        tickets = session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)).unique().all()
        if threshold.breach:
            if admins is None:
                admins = list(
                    session.scalars(
                        select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id)
                    )
                )
            for ticket in tickets:
                drafts += [_draft(ticket, threshold, admin) for admin in admins]
        else:
            drafts += [
                _draft(ticket, threshold, ticket.assigned_to)
                for ticket in tickets
                if ticket.assigned_to is not None and ticket.assigned_to.is_active
            ]
    notifications.queue_emails(session, drafts)
    return counts


def _draft(ticket: Ticket, threshold: _Threshold, to: User) -> notifications.Draft:
    due = getattr(ticket, "first_response_due_at" if threshold.target == SlaTarget.FIRST_RESPONSE else "due_at")
    email = sla_messages.sla_email(
        breached=threshold.breach,
        to=to.email,
        recipient_name=to.name,
        target=threshold.target,
        number=ticket.reference,
        title=ticket.title,
        priority=ticket.priority,
        due=format_moment(due),
        assignee_name=ticket.assigned_to.name if ticket.assigned_to else None,
        ticket_url=notifications.ticket_url(ticket),
    )
    return notifications.Draft(email, ticket_id=ticket.id, user_id=to.id)


def format_moment(moment: datetime) -> str:
    """A moment in the business time zone, e.g. "2026-12-03 14:00 Europe/Berlin"."""
    zone = schedule().zone
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def check_deadlines() -> dict[str, int]:
    """The worker's periodic task: `check` in a transaction of its own."""
    with session_scope() as session:
        counts = check(session)
    if any(counts.values()):
        log.info("SLA thresholds crossed: %s", counts)
    return counts


# ----- attainment: the share of targets met -----

_FINISHED = sql_in("status", tuple(s for s in TicketStatus if s not in ACTIVE_STATUSES))
# Where each clock stopped (now while it runs), as first_response_clock / resolution_clock read it.
_FIRST_STOP = (
    f"coalesce(first_responded_at, CASE WHEN {_ACTIVE} THEN now()"
    " ELSE coalesce(sla_paused_at, resolved_at, updated_at) END)"
)
_RESOLUTION_STOP = f"CASE WHEN {_RUNNING} THEN now() ELSE coalesce(sla_paused_at, resolved_at, now()) END"
_ATTAINMENT = text(
    f"""
    SELECT priority,
           count(*) FILTER (WHERE first_responded_at <= first_response_due_at) AS first_met,
           count(*) FILTER (WHERE {_FIRST_STOP} > first_response_due_at) AS first_missed,
           count(*) FILTER (WHERE {_FINISHED} AND {_RESOLUTION_STOP} <= due_at) AS resolution_met,
           count(*) FILTER (WHERE {_RESOLUTION_STOP} > due_at) AS resolution_missed
    FROM tickets
    WHERE created_at >= :since AND priority IS NOT NULL
    GROUP BY priority
    """
)


def policy() -> dict[str, Any]:
    """The SLA settings as the overview shows them: opening hours, zone, holidays, targets per priority."""
    settings = get_settings()
    return {
        "business_hours": settings.business_hours,
        "timezone": schedule().zone.key,
        "holidays": sorted(day.isoformat() for day in schedule().holidays),
        "targets": {str(p): {str(t): target_hours(t, p) for t in SlaTarget} for p in Priority},
    }


def attainment(session: Session, since: datetime) -> list[dict[str, Any]]:
    """Per priority (most urgent first), of the tickets filed since `since`: how many met and missed each
    target, and the share met (None until one is decided). Tickets still inside their targets are left out."""
    found = {row.priority: row for row in session.execute(_ATTAINMENT, {"since": since})}
    out = []
    for priority in Priority:
        row = found.get(str(priority))
        entry: dict[str, Any] = {"priority": str(priority)}
        for target in ("first", "resolution"):
            met = int(getattr(row, f"{target}_met", 0) or 0) if row else 0
            missed = int(getattr(row, f"{target}_missed", 0) or 0) if row else 0
            name = SlaTarget.FIRST_RESPONSE if target == "first" else SlaTarget.RESOLUTION
            entry[str(name)] = {"met": met, "missed": missed, "rate": met / (met + missed) if met + missed else None}
        out.append(entry)
    return out
