"""The e-mail outbox: every mail is stored with its delivery state and sent by a job, never in a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid, parseaddr

from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import EmailStatus, JobKind
from ticketing_app.jobs import queue
from ticketing_app.mail import messages
from ticketing_app.models import EmailMessage, Ticket, User


def ticket_url(ticket: Ticket) -> str:
    return f"{get_settings().app_base_url.rstrip('/')}/tickets/{ticket.id}"


@dataclass(frozen=True)
class Draft:
    """A composed e-mail not stored yet, with what the outbox row links it to."""

    email: messages.OutgoingEmail
    ticket_id: int | None = None
    user_id: int | None = None
    due_since: datetime | None = None


def queue_emails(session: Session, drafts: list[Draft]) -> list[EmailMessage]:
    """Store the mails and queue their delivery in the caller's transaction (one INSERT each for all).

    The Message-ID is fixed now, so a retried delivery reuses it and receivers can drop a duplicate.
    `due_since` dates the delivery job (see jobs.queue.enqueue): a ticket's mails go out before newer
    tickets are triaged.
    """
    if not drafts:
        return []
    domain = parseaddr(get_settings().mail_from)[1].rpartition("@")[2] or "localhost"
    rows = [
        EmailMessage(
            kind=draft.email.kind,
            to_address=draft.email.to,
            subject=draft.email.subject,
            body_text=draft.email.text,
            body_html=draft.email.html,
            status=EmailStatus.PENDING,
            message_id=make_msgid(domain=domain),
            ticket_id=draft.ticket_id,
            user_id=draft.user_id,
        )
        for draft in drafts
    ]
    session.add_all(rows)
    session.flush()
    queue.enqueue_many(
        session,
        JobKind.SEND_EMAIL,
        [({"email_id": row.id}, f"email:{row.id}", draft.due_since) for row, draft in zip(rows, drafts, strict=True)],
    )
    return rows


def queue_email(session: Session, draft: Draft) -> EmailMessage:
    return queue_emails(session, [draft])[0]


def welcome(session: Session, user: User, *, verify_url: str | None = None) -> EmailMessage:
    email = messages.welcome_email(
        to=user.email, name=user.name, app_url=get_settings().app_base_url, verify_url=verify_url
    )
    return queue_email(session, Draft(email, user_id=user.id))


def password_reset(session: Session, user: User, reset_url: str, *, by_admin: bool = False) -> EmailMessage:
    email = messages.password_reset_email(
        to=user.email,
        name=user.name,
        reset_url=reset_url,
        minutes=get_settings().password_reset_minutes,
        by_admin=by_admin,
    )
    return queue_email(session, Draft(email, user_id=user.id))


def verification(session: Session, user: User, verify_url: str) -> EmailMessage:
    email = messages.verify_email_email(to=user.email, name=user.name, verify_url=verify_url)
    return queue_email(session, Draft(email, user_id=user.id))


def assignment_draft(ticket: Ticket, assignee: User, *, reassigned: bool = False) -> Draft:
    email = messages.assignment_email(
        to=assignee.email,
        assignee_name=assignee.name,
        number=ticket.reference,
        title=ticket.title,
        priority=ticket.priority,
        category=ticket.category,
        summary=ticket.summary,
        helpful_notes=ticket.helpful_notes,
        ticket_url=ticket_url(ticket),
        reason=ticket.assignment_reason,
        reassigned=reassigned,
    )
    return Draft(email, ticket_id=ticket.id, user_id=assignee.id, due_since=ticket.created_at)


def assignment(session: Session, ticket: Ticket, assignee: User, *, reassigned: bool = False) -> EmailMessage:
    return queue_email(session, assignment_draft(ticket, assignee, reassigned=reassigned))


def received_draft(ticket: Ticket, requester: User, assignee: User | None) -> Draft:
    email = messages.ticket_received_email(
        to=requester.email,
        requester_name=requester.name,
        number=ticket.reference,
        title=ticket.title,
        priority=ticket.priority,
        category=ticket.category,
        summary=ticket.summary,
        ticket_url=ticket_url(ticket),
        assignee_name=assignee.name if assignee else None,
    )
    return Draft(email, ticket_id=ticket.id, user_id=requester.id, due_since=ticket.created_at)


def resolved(session: Session, ticket: Ticket, requester: User) -> EmailMessage:
    email = messages.ticket_resolved_email(
        to=requester.email,
        requester_name=requester.name,
        number=ticket.reference,
        title=ticket.title,
        ticket_url=ticket_url(ticket),
    )
    return queue_email(session, Draft(email, ticket_id=ticket.id, user_id=requester.id))
