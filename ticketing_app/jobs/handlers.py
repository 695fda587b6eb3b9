"""The background steps after a ticket is saved: triage -> assign -> (e-mails queued for send_email).

Each handler is idempotent: its writes commit in the same transaction that marks its jobs done, and it
checks the ticket's state first, so a retried or re-delivered job never triages or assigns twice.
Each is a batch handler: with a backlog, one call takes several due jobs of its kind and shares their
reads, locks, commit (and SMTP session); alone, a job is a batch of one (bench/README.md has the figures).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ticketing_app.ai.corrections import correction_memory, learn
from ticketing_app.ai.select import run_triage, triage_batch_size
from ticketing_app.ai.types import TriageRequest, TriageResult
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import (
    ACTIVE_STATUSES,
    DELIVERED_EMAIL_STATUSES,
    OVERRIDE_EVENTS,
    EmailStatus,
    EventKind,
    JobKind,
    JobStatus,
    TriageStatus,
)
from ticketing_app.jobs import digest, queue
from ticketing_app.jobs.worker import BatchHandler, JobContext, PermanentJobError, finishing_transaction
from ticketing_app.mail import transport
from ticketing_app.mail.sender import MailDeliveryError, MailSender
from ticketing_app.models import EmailMessage, Ticket, TicketEvent
from ticketing_app.services import corrections, drafts, embeddings, events, inbound, notifications, routing, sla
from ticketing_app.services.accounts import skill_vocabulary

log = logging.getLogger(__name__)

# Jobs per batch when there is a backlog (each slot of the loop takes one batch; see jobs.worker.BatchHandler).
# Routing and e-mail are quick database / SMTP work, so a batch shares one claim, lock, commit and SMTP session.
ROUTING_BATCH = 25
MAIL_BATCH = 25


def _ticket_ids(contexts: list[JobContext]) -> list[int]:
    return [int(ctx.payload["ticket_id"]) for ctx in contexts]


def _locked_tickets(session: Session, ticket_ids: list[int]) -> list[Ticket]:
    """The tickets, locked in id order (two batches never wait for each other's locks in a cycle)."""
    query = select(Ticket).where(Ticket.id.in_(ticket_ids)).order_by(Ticket.id).with_for_update(of=Ticket)
    return list(session.scalars(query).unique())


def _queue_routing(session: Session, tickets: list[Ticket]) -> None:
    # Dated by the ticket's arrival: routing an older ticket goes before triaging newer ones.
    queue.enqueue_many(
        session,
        JobKind.ASSIGN,
        [({"ticket_id": ticket.id}, f"assign:{ticket.id}", ticket.created_at) for ticket in tickets],
    )


def handle_triage(contexts: list[JobContext]) -> None:
    """Ask the AI about each ticket (outside any transaction), then store the results and queue routing."""
    ticket_ids = _ticket_ids(contexts)
    with session_scope() as session:
        pending = session.execute(
            select(Ticket.id, Ticket.title, Ticket.description).where(
                Ticket.id.in_(ticket_ids), Ticket.triage_status != TriageStatus.DONE
            )
        ).all()
        vocabulary = tuple(skill_vocabulary(session)) if pending else ()
        fresh = corrections.load_since(session, correction_memory().last_id) if pending else []
    if fresh:  # staff corrections since the last batch: the offline triage learns them before triaging
        learn((e.id, e.title, e.description, e.field, e.value, e.skills) for e in fresh)
    categories = tuple(get_settings().triage_categories)
    answers = {
        row.id: run_triage(
            TriageRequest(
                title=row.title, description=row.description, categories=categories, skill_vocabulary=vocabulary
            )
        )
        for row in pending
    }
    vectors = _embeddings_of(pending)
    with finishing_transaction(contexts) as session:
        tickets = _locked_tickets(session, ticket_ids)
        overridden = _staff_overrides(session, [t.id for t in tickets if t.id in answers])
        for ticket in tickets:
            if ticket.id in answers and ticket.triage_status != TriageStatus.DONE:
                _store_triage(session, ticket, *answers[ticket.id], keep=overridden.get(ticket.id, set()))
        embeddings.store(session, {t.id: vectors[t.id] for t in tickets if t.id in vectors})
        _queue_routing(session, tickets)


def _embeddings_of(rows: Any) -> dict[int, Any]:
    """The tickets' embeddings for similar tickets (the offline triage's vectors, reused). A failure here
    never holds back a triage: the ticket is embedded later by `embed-tickets` (services/embeddings.backfill)."""
    try:
        return embeddings.embed((row.id, row.title, row.description) for row in rows)
    except Exception:
        log.exception("embedding %s ticket(s) for similar tickets failed", len(rows))
        return {}


def _staff_overrides(session: Session, ticket_ids: list[int]) -> dict[int, set[str]]:
    """Per ticket, the kinds of staff override recorded so far (read under the tickets' row locks, which
    update_ticket takes too, so none can slip in before the triage is stored)."""
    if not ticket_ids:
        return {}
    rows = session.execute(
        select(TicketEvent.ticket_id, TicketEvent.kind)
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind.in_(OVERRIDE_EVENTS))
        .distinct()
    ).all()
    found: dict[int, set[str]] = {}
    for ticket_id, kind in rows:
        found.setdefault(ticket_id, set()).add(kind)
    return found


def _store_triage(
    session: Session, ticket: Ticket, result: TriageResult, primary_error: str | None, *, keep: set[str]
) -> None:
    """Store the AI's findings. A priority or category that staff set while the AI was thinking stays (with
    the due time that priority gave); the event records what the AI would have said instead."""
    kept: dict[str, str | None] = {}
    if EventKind.CATEGORY_OVERRIDDEN in keep:
        kept["category"] = result.category
    else:
        ticket.category = result.category
    if EventKind.PRIORITY_OVERRIDDEN in keep:
        kept["priority"] = result.priority
    else:
        ticket.priority = result.priority
        sla.set_targets(ticket)
    ticket.required_skills = result.required_skills
    ticket.summary = result.summary
    ticket.helpful_notes = result.helpful_notes
    ticket.triage_confidence = result.confidence
    ticket.needs_review = needs_review(result.confidence)
    ticket.triage_provider = result.provider
    ticket.triage_status = TriageStatus.DONE
    ticket.triaged_at = datetime.now(UTC)
    extra = {"kept_from_staff": kept} if kept else {}
    events.record(
        session,
        ticket,
        EventKind.TRIAGED,
        None,
        category=ticket.category,
        priority=ticket.priority,
        skills=result.required_skills,
        provider=result.provider,
        confidence=result.confidence,
        needs_review=ticket.needs_review,
        fallback_reason=primary_error,
        **extra,
    )


def needs_review(confidence: float | None) -> bool:
    """A triage below TRIAGE_REVIEW_THRESHOLD (or without a confidence) needs a person's look."""
    return confidence is None or confidence < get_settings().triage_review_threshold


def review_note(ticket: Ticket) -> str:
    """The start of the routing reason of a ticket whose triage needs review ("" otherwise)."""
    if not ticket.needs_review:
        return ""
    shown = "unknown" if ticket.triage_confidence is None else f"{ticket.triage_confidence:.2f}"
    return (
        f"needs review (triage confidence {shown} < {get_settings().triage_review_threshold:.2f}), "
        "routed to the best available person; "
    )


def triage_gave_up(ticket_id: int, error: str) -> bool:
    """A triage job died: mark the ticket and route it anyway, so it is never stranded.

    Idempotent (the dead-letter hook and `reconcile` may both call it): True only for the call that did it.
    """
    with session_scope() as session:
        tickets = _locked_tickets(session, [ticket_id])
        if not tickets or tickets[0].triage_status != TriageStatus.PENDING:
            return False
        tickets[0].triage_status = TriageStatus.FAILED
        events.record(session, tickets[0], EventKind.TRIAGE_FAILED, None, error=error[:300])
        _queue_routing(session, tickets)
        return True


def handle_assign(contexts: list[JobContext]) -> None:
    """Route each ticket once and queue the e-mails to the assignee and the requester.

    The tickets of a batch are routed one after the other in one transaction, so each choice counts the
    assignments made just before it (load balancing holds inside a batch).
    """
    drafts: list[notifications.Draft] = []
    with finishing_transaction(contexts) as session:
        # The routing lock before the tickets' row locks, as everyone who takes both does (accounts.update_user
        # re-routes a person's tickets under it): no lock cycle with a concurrent role change.
        routing.lock(session)
        routed: list[tuple[Ticket, routing.RoutingDecision]] = []
        for ticket in _locked_tickets(session, _ticket_ids(contexts)):
            if ticket.assigned_at is not None or ticket.assigned_to_id is not None:
                continue  # already routed (or assigned by hand): never a second assignment
            # The choice's query flushes the assignments made before it, so it counts them.
            decision = routing.choose_assignee(
                session, list(ticket.required_skills or []), requester_id=ticket.created_by_id
            )
            now = datetime.now(UTC)
            decision = dataclasses.replace(decision, reason=review_note(ticket) + decision.reason)
            ticket.assignment_reason = decision.reason
            ticket.assigned_at = now
            if decision.assignee is not None:
                ticket.assigned_to_id = decision.assignee.id
                ticket.assigned_to = decision.assignee
                decision.assignee.last_assigned_at = now
                drafts.append(notifications.assignment_draft(ticket, decision.assignee))
            drafts.append(notifications.received_draft(ticket, ticket.created_by, decision.assignee))
            routed.append((ticket, decision))
        for ticket, decision in routed:  # added after the loop: one INSERT for the batch's events
            events.record(
                session,
                ticket,
                EventKind.ASSIGNED,
                None,
                to=events.user_brief(decision.assignee),
                reason=decision.reason,
            )
        notifications.queue_emails(session, drafts)


def handle_send_email(contexts: list[JobContext]) -> None:
    """Deliver stored e-mails in one SMTP session; a failed one stays pending for its own job's retry.

    What the server accepted is recorded as delivered in its own short transaction at once, before the
    batch's job bookkeeping: if that finishing commit then fails (or the worker dies), the jobs run again
    and find their mails delivered, so nothing is sent twice. Only a crash between the server's accept and
    that short commit can still repeat a mail (at-least-once; SMTP offers nothing better).
    Never re-runs the AI: the mail was composed and stored when the ticket was routed.
    """
    email_ids = [int(ctx.payload["email_id"]) for ctx in contexts]
    with session_scope() as session:
        rows = session.scalars(
            select(EmailMessage).where(
                EmailMessage.id.in_(email_ids), EmailMessage.status.not_in(DELIVERED_EMAIL_STATUSES)
            )
        ).all()
        outgoing = {row.id: (transport.outgoing(row), row.message_id) for row in rows}
    sending = [(ctx, email_id) for ctx, email_id in zip(contexts, email_ids, strict=True) if email_id in outgoing]
    sender = transport.default_sender()
    outcomes = dict(
        zip(
            [email_id for _, email_id in sending],
            sender.send_many([outgoing[email_id] for _, email_id in sending]),
            strict=True,
        )
    )
    accepted = {email_id: outcome for email_id, outcome in outcomes.items() if isinstance(outcome, str)}
    if accepted:
        _record_delivered(accepted, sender)
    for ctx, email_id in sending:
        error = outcomes[email_id]
        if isinstance(error, MailDeliveryError):
            ctx.fail(PermanentJobError(str(error)) if error.permanent else error)
    failed = [(ctx, email_id) for ctx, email_id in sending if email_id not in accepted]
    with finishing_transaction(contexts) as session:
        if failed:
            ids = [email_id for _, email_id in failed]
            by_id = {row.id: row for row in session.scalars(select(EmailMessage).where(EmailMessage.id.in_(ids)))}
            for ctx, email_id in failed:
                row = by_id.get(email_id)
                if row is None:
                    continue
                error = outcomes[email_id]
                assert isinstance(error, MailDeliveryError)
                row.attempts += 1
                row.last_error = str(error)[:1000]
                row.status = EmailStatus.FAILED if error.permanent or ctx.is_last_attempt else EmailStatus.PENDING


def _record_delivered(accepted: dict[int, str], sender: MailSender, tries: int = 5) -> None:
    """Mark the mails the server accepted as delivered, committed at once (retried briefly if the database
    blips: until this commits, a re-run of their jobs would send them again)."""
    for attempt in range(1, tries + 1):
        try:
            with session_scope() as session:
                rows = session.scalars(
                    select(EmailMessage)
                    .where(EmailMessage.id.in_(accepted), EmailMessage.status.not_in(DELIVERED_EMAIL_STATUSES))
                    .order_by(EmailMessage.id)
                    .with_for_update()
                )
                for row in rows:
                    row.attempts += 1
                    transport.mark_delivered(row, sender, accepted[row.id])
            return
        except OperationalError:
            if attempt == tries:
                raise
            log.warning("recording %s delivered mail(s) failed; retrying", len(accepted))
            time.sleep(0.2 * 2**attempt)


# ----- reconciling: a ticket whose next step has no live job gets it back -----

RECONCILE_BATCH = 200

# Tickets still waiting for triage whose triage job is not queued or running (it died and the dead-letter
# hook failed, or it is missing), with that job's state (NULL: no job at all).
_STRANDED_TRIAGE = text(
    f"""
    SELECT t.id, j.status AS job_status, j.last_error
    FROM tickets t
    LEFT JOIN jobs j ON j.dedupe_key = '{JobKind.TRIAGE}:' || t.id
    WHERE t.triage_status = '{TriageStatus.PENDING}'
      AND (j.id IS NULL OR j.status NOT IN ('{JobStatus.QUEUED}', '{JobStatus.RUNNING}'))
    ORDER BY t.id
    LIMIT :limit
    """
)
# Triaged (or given up) active tickets never routed, whose routing job is missing or finished without routing.
# A dead routing job is left for an admin (retry button): requeuing it here would loop on a poison ticket.
_STRANDED_ROUTING = text(
    f"""
    SELECT t.id, t.created_at, j.id AS job_id
    FROM tickets t
    LEFT JOIN jobs j ON j.dedupe_key = '{JobKind.ASSIGN}:' || t.id
    WHERE t.triage_status <> '{TriageStatus.PENDING}' AND t.assigned_at IS NULL AND t.assigned_to_id IS NULL
      AND t.status IN ({", ".join(f"'{s}'" for s in ACTIVE_STATUSES)})
      AND (j.id IS NULL OR j.status = '{JobStatus.DONE}')
    ORDER BY t.id
    LIMIT :limit
    """
)
# Revive a finished job for its dedupe key, or insert it; a live one (queued/running) is left alone, so two
# workers reconciling at once queue it once.
_REQUEUE = text(
    f"""
    INSERT INTO jobs (kind, payload, dedupe_key, max_attempts, run_after)
    VALUES (:kind, CAST(:payload AS jsonb), :dedupe_key, :max_attempts, coalesce(CAST(:due AS timestamptz), now()))
    ON CONFLICT (dedupe_key) DO UPDATE
        SET status = '{JobStatus.QUEUED}', attempts = 0, run_after = EXCLUDED.run_after, locked_by = NULL,
            locked_until = NULL, finished_at = NULL, updated_at = now()
        WHERE jobs.status = '{JobStatus.DONE}'
    RETURNING id, pg_notify(:channel, :kind)
    """
)


def _requeue(session: Session, kind: str, ticket_id: int, due: datetime | None = None) -> bool:
    row = session.execute(
        _REQUEUE,
        {
            "kind": kind,
            "payload": json.dumps({"ticket_id": ticket_id}),
            "dedupe_key": f"{kind}:{ticket_id}",
            "max_attempts": get_settings().job_max_attempts,
            "due": due,
            "channel": queue.NOTIFY_CHANNEL,
        },
    ).first()
    return row is not None


def reconcile() -> dict[str, int]:
    """Give every stranded ticket its missing step again; idempotent, safe in any number of workers at once.

    - waiting for triage, its triage job dead (the dead-letter hook failed): what the hook does, now
      (marked triage-failed and queued for routing);
    - waiting for triage without a triage job (or with a finished one): triage queued again;
    - triaged but never routed, without a live or dead routing job: routing queued again.
    Returns how many tickets got each repair.
    """
    repaired = {"gave_up": 0, "triage": 0, "assign": 0}
    with session_scope() as session:
        stranded = session.execute(_STRANDED_TRIAGE, {"limit": RECONCILE_BATCH}).all()
        unrouted = session.execute(_STRANDED_ROUTING, {"limit": RECONCILE_BATCH}).all()
    for row in stranded:
        if row.job_status == JobStatus.DEAD:
            if triage_gave_up(row.id, row.last_error or "triage job dead"):
                repaired["gave_up"] += 1
        else:
            with session_scope() as session:
                locked = _locked_tickets(session, [row.id])
                if locked and locked[0].triage_status == TriageStatus.PENDING:
                    repaired["triage"] += _requeue(session, JobKind.TRIAGE, row.id, locked[0].created_at)
    for row in unrouted:
        with session_scope() as session:
            locked = _locked_tickets(session, [row.id])
            if locked and locked[0].assigned_at is None and locked[0].assigned_to_id is None:
                repaired["assign"] += _requeue(session, JobKind.ASSIGN, row.id, row.created_at)
    if any(repaired.values()):
        log.warning("reconciled stranded tickets: %s", repaired)
    return repaired


def handle_process_inbound(ctx: JobContext) -> None:
    """Turn one stored inbound mail into a comment or a ticket (or mark why not), committed with the job."""
    with finishing_transaction([ctx]) as session:
        inbound.process(session, int(ctx.payload["inbound_id"]))


def handle_draft_reply(ctx: JobContext) -> None:
    """Write a staff member's Gemini reply draft (outside the request): read, ask (no transaction open), store."""
    with session_scope() as session:
        ask = drafts.gemini_ask(session, int(ctx.payload["ticket_id"]), int(ctx.payload["user_id"]))
    answer = drafts.ask_gemini(ask) if ask is not None else None
    with finishing_transaction([ctx]) as session:
        if ask is not None and answer is not None:
            drafts.store_gemini_draft(session, ask, *answer)


def on_dead(kind: str, payload: dict[str, Any], error: str) -> None:
    """Called once when a job has used all its attempts."""
    if kind == JobKind.TRIAGE:
        triage_gave_up(int(payload["ticket_id"]), error)
    elif kind == JobKind.PROCESS_INBOUND:
        with session_scope() as session:
            inbound.mark_failed(session, int(payload["inbound_id"]), error)
    log.error("job %s dead-lettered: %s", kind, error[:300])


HANDLERS = {
    JobKind.TRIAGE: BatchHandler(handle_triage, size=triage_batch_size),
    JobKind.ASSIGN: BatchHandler(handle_assign, size=ROUTING_BATCH),
    JobKind.SEND_EMAIL: BatchHandler(handle_send_email, size=MAIL_BATCH),
    JobKind.ADMIN_DIGEST: digest.handle_admin_digest,
    JobKind.PROCESS_INBOUND: handle_process_inbound,
    JobKind.DRAFT_REPLY: handle_draft_reply,
}
