"""The background steps after a ticket is saved: triage -> assign -> (e-mails queued for send_email).

Each handler is idempotent: its writes commit in the same transaction that marks its job done, and it
checks the ticket's state first, so a retried or re-delivered job never triages or assigns twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ticketing_app.ai.select import run_triage
from ticketing_app.ai.types import TriageRequest
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.jobs import queue
from ticketing_app.jobs.worker import JobContext, PermanentJobError
from ticketing_app.mail.sender import MailDeliveryError
from ticketing_app.models import EmailMessage, Ticket, User
from ticketing_app.services import events, notifications, routing
from ticketing_app.services.accounts import skill_vocabulary
from ticketing_app.services.tickets import due_time

log = logging.getLogger(__name__)


def _locked_ticket(session: Session, ticket_id: int) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update(of=Ticket))


def handle_triage(ctx: JobContext) -> None:
    """Ask the AI about the ticket (outside any transaction), then store the result and queue routing."""
    ticket_id = int(ctx.payload["ticket_id"])
    with session_scope() as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return  # deleted meanwhile: nothing to do
        if ticket.triage_status == "done":
            request = None
        else:
            request = TriageRequest(
                title=ticket.title,
                description=ticket.description,
                categories=tuple(get_settings().triage_categories),
                skill_vocabulary=tuple(skill_vocabulary(session)),
            )
    result, primary_error = run_triage(request) if request is not None else (None, None)
    with ctx.finishing_transaction() as session:
        ticket = _locked_ticket(session, ticket_id)
        if ticket is None:
            return
        if result is not None and ticket.triage_status != "done":
            ticket.category = result.category
            ticket.priority = result.priority
            ticket.required_skills = result.required_skills
            ticket.summary = result.summary
            ticket.helpful_notes = result.helpful_notes
            ticket.triage_confidence = result.confidence
            ticket.triage_provider = result.provider
            ticket.triage_status = "done"
            ticket.triaged_at = datetime.now(UTC)
            ticket.due_at = due_time(result.priority, ticket.created_at)
            events.record(
                session, ticket, "triaged", None, category=result.category, priority=result.priority,
                skills=result.required_skills, provider=result.provider, fallback_reason=primary_error,
            )
        # Dated by the ticket's arrival: routing an older ticket goes before triaging newer ones.
        queue.enqueue(session, "assign", {"ticket_id": ticket.id}, dedupe_key=f"assign:{ticket.id}",
                      due_since=ticket.created_at)


def triage_gave_up(ticket_id: int, error: str) -> None:
    """A triage job died: mark the ticket and route it anyway, so it is never stranded."""
    with session_scope() as session:
        ticket = _locked_ticket(session, ticket_id)
        if ticket is None or ticket.triage_status == "done":
            return
        ticket.triage_status = "failed"
        events.record(session, ticket, "triage_failed", None, error=error[:300])
        # Dated by the ticket's arrival: routing an older ticket goes before triaging newer ones.
        queue.enqueue(session, "assign", {"ticket_id": ticket.id}, dedupe_key=f"assign:{ticket.id}",
                      due_since=ticket.created_at)


def handle_assign(ctx: JobContext) -> None:
    """Route the ticket once and queue the e-mails to the assignee and the requester."""
    ticket_id = int(ctx.payload["ticket_id"])
    with ctx.finishing_transaction() as session:
        ticket = _locked_ticket(session, ticket_id)
        if ticket is None or ticket.assigned_at is not None or ticket.assigned_to_id is not None:
            return  # already routed (or assigned by hand): never a second assignment
        decision = routing.choose_assignee(session, list(ticket.required_skills or []))
        now = datetime.now(UTC)
        ticket.assignment_reason = decision.reason
        ticket.assigned_at = now
        if decision.assignee is not None:
            ticket.assigned_to_id = decision.assignee.id
            ticket.assigned_to = decision.assignee
            decision.assignee.last_assigned_at = now
        events.record(session, ticket, "assigned", None, to=events.user_brief(decision.assignee),
                      reason=decision.reason)
        session.flush()
        requester = session.get(User, ticket.created_by_id)
        assert requester is not None
        if decision.assignee is not None:
            notifications.assignment(session, ticket, decision.assignee)
        notifications.received(session, ticket, requester, decision.assignee)


def handle_send_email(ctx: JobContext) -> None:
    """Deliver one stored e-mail; a failure leaves it pending for the job's retry, never re-running AI."""
    email_id = int(ctx.payload["email_id"])
    with session_scope() as session:
        row = session.get(EmailMessage, email_id)
        if row is None or row.status in ("sent", "recorded"):
            return
        email, message_id = notifications.outgoing(row), row.message_id
    sender = notifications.default_sender()
    try:
        used_id = sender.send(email, message_id=message_id)
    except MailDeliveryError as exc:
        with session_scope() as session:
            row = session.get(EmailMessage, email_id)
            if row is not None:
                row.attempts += 1
                row.last_error = str(exc)[:1000]
                row.status = "failed" if exc.permanent or ctx.is_last_attempt else "pending"
        if exc.permanent:
            raise PermanentJobError(str(exc)) from exc
        raise
    with ctx.finishing_transaction() as session:
        row = session.get(EmailMessage, email_id)
        if row is not None:
            row.attempts += 1
            notifications.mark_delivered(row, sender, used_id)


def on_dead(kind: str, payload: dict, error: str) -> None:
    """Called once when a job has used all its attempts."""
    if kind == "triage":
        triage_gave_up(int(payload["ticket_id"]), error)
    log.error("job %s dead-lettered: %s", kind, error[:300])


HANDLERS = {"triage": handle_triage, "assign": handle_assign, "send_email": handle_send_email}
