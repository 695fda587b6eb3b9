"""The e-mail outbox and who is told what: every mail is stored with its delivery state and sent by a job,
never in a request.

Who is mailed (never about their own action; internal notes never reach anyone by mail):
- the requester and the ticket's followers (the requester's side, services/visibility.py): on every public
  reply by someone else, when the ticket goes in progress, resolved, closed or is reopened, and when their
  ticket is merged into another (services/merge.py);
- the assignee: on every reply of the requester, on a reopen, and when the ticket is (re)assigned to them;
- admins: a periodic digest (jobs/digest.py).
Each person may turn off any notification kind (settings page, REST, one-click unsubscribe); a muted kind is
not queued at all. Account mails (welcome) are always sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import make_msgid, parseaddr
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import (
    ADMIN_EMAIL_KINDS,
    NOTIFICATION_EMAIL_KINDS,
    REQUESTER_EMAIL_KINDS,
    STAFF_EMAIL_KINDS,
    EmailKind,
    EmailStatus,
    JobKind,
    Role,
    TicketStatus,
)
from ticketing_app.errors import InvalidInput, InvalidLink
from ticketing_app.jobs import queue
from ticketing_app.mail import messages, tokens
from ticketing_app.models import TICKET_IS_ACTIVE, Attachment, Comment, EmailMessage, Ticket, User

UNSUBSCRIBE_PATH = "/api/unsubscribe"
RATE_PATH = "/api/rate"
SETTINGS_PAGE = "/settings/notifications"

# What each kind is called on the settings page and in the unsubscribe confirmation.
KIND_LABELS: dict[str, str] = {
    EmailKind.TICKET_RECEIVED: "My ticket was received and routed",
    EmailKind.TICKET_REPLY: "Staff replied on my ticket",
    EmailKind.TICKET_STATUS: "My ticket's status changed (in progress, closed, reopened)",
    EmailKind.TICKET_RESOLVED: "My ticket was resolved",
    EmailKind.TICKET_MERGED: "My ticket was merged into another ticket",
    EmailKind.TICKET_ASSIGNED: "A ticket was assigned to me",
    EmailKind.REQUESTER_REPLY: "A requester replied on a ticket assigned to me",
    EmailKind.TICKET_REOPENED: "A ticket assigned to me was reopened",
    EmailKind.ADMIN_DIGEST: "Admin digest: unassigned tickets and dead-lettered jobs",
    EmailKind.SLA_WARNING: "A ticket assigned to me is close to its service-level target",
    EmailKind.SLA_BREACHED: "A ticket missed its service-level target",
}


def _mail_domain() -> str:
    return parseaddr(get_settings().mail_from)[1].rpartition("@")[2] or "localhost"


def ticket_url(ticket: Ticket) -> str:
    return f"{get_settings().app_base_url.rstrip('/')}/tickets/{ticket.id}"


def thread_root_id(ticket_id: int) -> str:
    """The stable Message-ID every mail about a ticket refers to (In-Reply-To / References), so mail clients
    thread them and an inbound reply can be matched to its ticket: <ticket-42@domain>."""
    return f"<ticket-{ticket_id}@{_mail_domain()}>"


def unsubscribe_url(user_id: int, kind: str) -> str:
    """The one-click unsubscribe link for one person and kind (RFC 8058): GET shows a confirm page, POST mutes."""
    token = tokens.unsubscribe_token(user_id, kind)
    return f"{get_settings().app_base_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={quote(token)}"


def rating_urls(ticket_id: int, requester_id: int) -> tuple[str, str]:
    """The resolved mail's "good" and "bad" links: each opens the rating page (services/satisfaction.py) with
    that choice made; only the page's button records it."""
    token = quote(tokens.rating_token(ticket_id, requester_id))
    base = f"{get_settings().app_base_url.rstrip('/')}{RATE_PATH}?token={token}"
    return f"{base}&rating=good", f"{base}&rating=bad"


def mail_headers(kind: str, *, user_id: int | None, ticket_id: int | None) -> dict[str, str]:
    """The extra headers of one outbox mail: reply address and threading for a ticket's mail; one-click
    unsubscribe for a notification."""
    headers: dict[str, str] = {}
    if ticket_id is not None and user_id is not None:
        root = thread_root_id(ticket_id)
        headers["Reply-To"] = tokens.reply_address(ticket_id, user_id)
        headers["X-Helpdesk-Token"] = tokens.reply_token(ticket_id, user_id)
        headers["In-Reply-To"] = root
        headers["References"] = root
    if kind in NOTIFICATION_EMAIL_KINDS and user_id is not None:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url(user_id, kind)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


@dataclass(frozen=True)
class Draft:
    """A composed e-mail not stored yet, with what the outbox row links it to."""

    email: messages.OutgoingEmail
    ticket_id: int | None = None
    user_id: int | None = None
    due_since: datetime | None = None


def _unmuted(session: Session, drafts: list[Draft]) -> list[Draft]:
    """The drafts whose recipient has not turned their kind off (one query, only when a notification is
    among them)."""
    ids = {d.user_id for d in drafts if d.user_id is not None and d.email.kind in NOTIFICATION_EMAIL_KINDS}
    if not ids:
        return drafts
    rows = session.execute(select(User.id, User.muted_email_kinds).where(User.id.in_(ids)))
    muted = {row.id: row.muted_email_kinds for row in rows}
    return [d for d in drafts if d.user_id is None or d.email.kind not in (muted.get(d.user_id) or ())]


def queue_emails(session: Session, drafts: list[Draft]) -> list[EmailMessage]:
    """Store the mails and queue their delivery in the caller's transaction (one INSERT each for all).

    Mails of a kind their recipient turned off are dropped here, whoever composed them. The Message-ID is
    fixed now, so a retried delivery reuses it and receivers can drop a duplicate. `due_since` dates the
    delivery job (see jobs.queue.enqueue): a ticket's mails go out before newer tickets are triaged.
    """
    drafts = _unmuted(session, drafts)
    if not drafts:
        return []
    domain = _mail_domain()
    rows = [
        EmailMessage(
            kind=draft.email.kind,
            to_address=draft.email.to,
            subject=draft.email.subject,
            body_text=draft.email.text,
            body_html=draft.email.html,
            headers={
                **mail_headers(draft.email.kind, user_id=draft.user_id, ticket_id=draft.ticket_id),
                **dict(draft.email.headers),
            },
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


def queue_email(session: Session, draft: Draft) -> EmailMessage | None:
    """One mail; None when its recipient turned its kind off."""
    rows = queue_emails(session, [draft])
    return rows[0] if rows else None


def welcome(session: Session, user: User, *, verify_url: str | None = None) -> EmailMessage | None:
    email = messages.welcome_email(
        to=user.email, name=user.name, app_url=get_settings().app_base_url, verify_url=verify_url
    )
    return queue_email(session, Draft(email, user_id=user.id))


def password_reset(session: Session, user: User, reset_url: str, *, by_admin: bool = False) -> EmailMessage | None:
    email = messages.password_reset_email(
        to=user.email,
        name=user.name,
        reset_url=reset_url,
        minutes=get_settings().password_reset_minutes,
        by_admin=by_admin,
    )
    return queue_email(session, Draft(email, user_id=user.id))


def verification(session: Session, user: User, verify_url: str) -> EmailMessage | None:
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
        unsubscribe_url=unsubscribe_url(assignee.id, EmailKind.TICKET_ASSIGNED),
    )
    return Draft(email, ticket_id=ticket.id, user_id=assignee.id, due_since=ticket.created_at)


def assignment(session: Session, ticket: Ticket, assignee: User, *, reassigned: bool = False) -> EmailMessage | None:
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
        unsubscribe_url=unsubscribe_url(requester.id, EmailKind.TICKET_RECEIVED),
    )
    return Draft(email, ticket_id=ticket.id, user_id=requester.id, due_since=ticket.created_at)


def _resolved_email(ticket: Ticket, requester: User) -> messages.OutgoingEmail:
    """The "resolved" mail, asking for a rating."""
    return messages.ticket_resolved_email(
        to=requester.email,
        requester_name=requester.name,
        number=ticket.reference,
        title=ticket.title,
        ticket_url=ticket_url(ticket),
        unsubscribe_url=unsubscribe_url(requester.id, EmailKind.TICKET_RESOLVED),
        rating_urls=rating_urls(ticket.id, requester.id),
    )


def resolved(session: Session, ticket: Ticket, requester: User) -> EmailMessage | None:
    return queue_email(session, Draft(_resolved_email(ticket, requester), ticket_id=ticket.id, user_id=requester.id))


# ----- the conversation: replies and status changes -----


def _files(session: Session, ticket: Ticket, comment: Comment) -> list[messages.FileLink]:
    """The comment's attachments as links to the ticket page (which needs a log-in): nothing public by URL."""
    rows = session.execute(
        select(Attachment.id, Attachment.filename).where(Attachment.comment_id == comment.id).order_by(Attachment.id)
    ).all()
    base = ticket_url(ticket)
    return [messages.FileLink(name=name, url=f"{base}#attachment-{attachment_id}") for attachment_id, name in rows]


def requester_side(ticket: Ticket) -> list[User]:
    """The requester and the ticket's followers (services/visibility.py): everyone who gets the requester's mails."""
    people = [ticket.created_by, *(follower.user for follower in ticket.followers)]
    return list({person.id: person for person in people}.values())


def comment_added(session: Session, actor: User, ticket: Ticket, comment: Comment) -> list[EmailMessage]:
    """Tell the other side of the conversation about a reply, in the caller's transaction.

    An internal note is never mailed. A reply from the requester's side (the requester or a follower) goes to
    the assignee; every public reply goes to the requester and the followers. Nobody is mailed about their own
    reply. Call it once the comment's attachments are stored (services.tickets.add_comment does, unless told
    `notify=False`).
    """
    if comment.internal:
        return []
    side = requester_side(ticket)
    from_requester = any(person.id == comment.author_id for person in side)
    recipients = [ticket.assigned_to] if from_requester else []
    recipients += side
    files = _files(session, ticket, comment)
    drafts: list[Draft] = []
    seen: set[int] = set()
    for recipient in recipients:
        if recipient is None or recipient.id in seen | {actor.id} or not recipient.is_active:
            continue
        seen.add(recipient.id)
        to_staff = from_requester and recipient.id == ticket.assigned_to_id
        kind = EmailKind.REQUESTER_REPLY if to_staff else EmailKind.TICKET_REPLY
        email = messages.ticket_reply_email(
            to=recipient.email,
            recipient_name=recipient.name,
            author_name=actor.name,
            number=ticket.reference,
            title=ticket.title,
            body=comment.body,
            ticket_url=ticket_url(ticket),
            from_requester=to_staff,
            files=files,
            unsubscribe_url=unsubscribe_url(recipient.id, kind),
        )
        drafts.append(Draft(email, ticket_id=ticket.id, user_id=recipient.id))
    return queue_emails(session, drafts)


_REQUESTER_TOLD = (TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED)


def status_changed(session: Session, actor: User, ticket: Ticket, old: str, new: str) -> list[EmailMessage]:
    """Tell the requester (and the followers) about in progress, resolved, closed and reopened; the assignee
    about a reopen. Nobody is mailed about their own change. Only the requester is asked for a rating."""
    reopened = new == TicketStatus.OPEN and old in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
    drafts: list[Draft] = []
    requester = ticket.created_by
    url = ticket_url(ticket)
    side = requester_side(ticket)
    for person in side if new in _REQUESTER_TOLD or reopened else []:
        if person.id == actor.id or (person.id != requester.id and not person.is_active):
            continue
        if new == TicketStatus.RESOLVED and person.id == requester.id:
            email = _resolved_email(ticket, requester)
        else:
            email = messages.ticket_status_email(
                to=person.email,
                recipient_name=person.name,
                actor_name=actor.name,
                number=ticket.reference,
                title=ticket.title,
                new_status=new,
                ticket_url=url,
                unsubscribe_url=unsubscribe_url(person.id, _status_kind(new)),
            )
            email = replace(email, kind=_status_kind(new))
        drafts.append(Draft(email, ticket_id=ticket.id, user_id=person.id))
    assignee = ticket.assigned_to
    side_ids = {person.id for person in side}
    if reopened and assignee is not None and assignee.id not in side_ids | {actor.id} and assignee.is_active:
        email = messages.ticket_reopened_email(
            to=assignee.email,
            recipient_name=assignee.name,
            actor_name=actor.name,
            number=ticket.reference,
            title=ticket.title,
            ticket_url=url,
            unsubscribe_url=unsubscribe_url(assignee.id, EmailKind.TICKET_REOPENED),
        )
        drafts.append(Draft(email, ticket_id=ticket.id, user_id=assignee.id))
    return queue_emails(session, drafts)


def _status_kind(new: str) -> EmailKind:
    """A follower's "resolved" mail is a status mail without the rating links, but muted with "resolved"."""
    return EmailKind.TICKET_RESOLVED if new == TicketStatus.RESOLVED else EmailKind.TICKET_STATUS


def merged(
    session: Session, actor: User, duplicate: Ticket, original: Ticket, people: list[User], note: str | None
) -> list[EmailMessage]:
    """Tell each person on the duplicate's requester side that it was merged into `original` (not the actor)."""
    drafts = [
        Draft(
            messages.ticket_merged_email(
                to=person.email,
                recipient_name=person.name,
                number=duplicate.reference,
                title=duplicate.title,
                into_number=original.reference,
                into_title=original.title,
                note=note,
                ticket_url=ticket_url(original),
                unsubscribe_url=unsubscribe_url(person.id, EmailKind.TICKET_MERGED),
            ),
            ticket_id=original.id,  # a reply to the mail lands on the original, where they now follow
            user_id=person.id,
        )
        for person in people
        if person.id != actor.id and person.is_active
    ]
    return queue_emails(session, drafts)


# ----- preferences -----


def offered_kinds(user: User) -> tuple[EmailKind, ...]:
    """The notification kinds `user` may receive, and so may turn off, by role."""
    if user.role == Role.ADMIN:
        return REQUESTER_EMAIL_KINDS + STAFF_EMAIL_KINDS + ADMIN_EMAIL_KINDS
    if user.role == Role.MODERATOR:
        return REQUESTER_EMAIL_KINDS + STAFF_EMAIL_KINDS
    return REQUESTER_EMAIL_KINDS


def preferences(user: User) -> dict[str, bool]:
    """{kind: on?} for every kind offered to `user`."""
    muted = set(user.muted_email_kinds or ())
    return {str(kind): kind not in muted for kind in offered_kinds(user)}


def set_preferences(session: Session, actor: User, changes: dict[str, bool]) -> dict[str, bool]:
    """Turn kinds of notification mail on or off for `actor` (only the kinds named); returns all of them."""
    offered = {str(kind) for kind in offered_kinds(actor)}
    unknown = sorted(set(changes) - offered)
    if unknown:
        raise InvalidInput(
            f"Unknown notification kind: {', '.join(unknown)[:200]}. Choose from: {', '.join(sorted(offered))}.",
            field=unknown[0][:40],
        )
    if any(not isinstance(value, bool) for value in changes.values()):
        raise InvalidInput("Each notification kind takes true (send) or false (do not send).")
    session.refresh(actor, with_for_update=True)  # two tabs saving at once must not undo each other's change
    muted = set(actor.muted_email_kinds or ())
    muted |= {kind for kind, on in changes.items() if not on}
    muted -= {kind for kind, on in changes.items() if on}
    actor.muted_email_kinds = sorted(muted)
    session.flush()
    return preferences(actor)


INVALID_UNSUBSCRIBE = (
    "This unsubscribe link is not valid (it may have been cut or altered). Use the link from the e-mail as it is,"
    " or change your notification settings after logging in."
)


@dataclass(frozen=True)
class Unsubscribe:
    """Whom an unsubscribe link is for, and which kind of mail it turns off."""

    user_id: int
    email: str
    kind: str

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


def read_unsubscribe(session: Session, token: str) -> Unsubscribe:
    """Check an unsubscribe link without changing anything (the GET confirm page); InvalidLink otherwise."""
    found = tokens.read_unsubscribe_token(token or "")
    if found is None or found[1] not in NOTIFICATION_EMAIL_KINDS:
        raise InvalidLink(INVALID_UNSUBSCRIBE)
    user = session.get(User, found[0])
    if user is None:
        raise InvalidLink(INVALID_UNSUBSCRIBE)
    return Unsubscribe(user_id=user.id, email=user.email, kind=found[1])


def unsubscribe(session: Session, token: str) -> Unsubscribe:
    """Turn off the one kind of mail an unsubscribe link names, for its person; no log-in needed (the
    link's signature is the proof). Idempotent."""
    target = read_unsubscribe(session, token)
    user = session.get(User, target.user_id, with_for_update=True)
    assert user is not None
    if target.kind not in (user.muted_email_kinds or ()):
        user.muted_email_kinds = sorted({*(user.muted_email_kinds or ()), target.kind})
    return target


# ----- the admins' digest -----

DIGEST_MAX_LINES = 50


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def admin_digest(session: Session, start: datetime, end: datetime) -> list[EmailMessage]:
    """Queue the digest of [start, end) for every active admin: tickets still open and unassigned that
    arrived before `end`, and jobs dead-lettered in the period. Nothing when both lists are empty."""
    waiting = TICKET_IS_ACTIVE & Ticket.assigned_to_id.is_(None) & (Ticket.created_at < end)
    unassigned_total = session.scalar(select(func.count()).select_from(Ticket).where(waiting)) or 0
    tickets = session.scalars(
        select(Ticket).where(waiting).order_by(Ticket.created_at, Ticket.id).limit(DIGEST_MAX_LINES)
    ).all()
    dead, dead_total = queue.dead_jobs_between(session, start, end, limit=DIGEST_MAX_LINES)
    if not unassigned_total and not dead_total:
        return []
    ticket_lines = [
        messages.TicketLine(number=t.reference, title=t.title, url=ticket_url(t), waiting_since=_when(t.created_at))
        for t in tickets
    ]
    job_lines = [
        messages.DeadJobLine(job_id=j.id, kind=j.kind, error=j.last_error, died_at=_when(j.finished_at)) for j in dead
    ]
    admins = session.scalars(
        select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id)
    ).all()
    period = f"{_when(start)} to {_when(end)}"
    drafts = [
        Draft(
            messages.admin_digest_email(
                to=admin.email,
                recipient_name=admin.name,
                period=period,
                unassigned=ticket_lines,
                unassigned_total=unassigned_total,
                dead_jobs=job_lines,
                dead_total=dead_total,
                admin_url=f"{get_settings().app_base_url.rstrip('/')}/admin",
                unsubscribe_url=unsubscribe_url(admin.id, EmailKind.ADMIN_DIGEST),
            ),
            user_id=admin.id,
        )
        for admin in admins
    ]
    return queue_emails(session, drafts)
