"""Mail that comes in: stored raw first (`receive`), then turned into a comment or a ticket by a job (`process`).

Who a mail is from, and what it may do (README "Mail comes in"):
- The sender is the From address, matched to an account by e-mail. From is easy to forge, so a reply is
  trusted by what only the recipient of our mail knows: the signed reply token (in the plus-address we
  set as Reply-To, or the X-Helpdesk-Token header).
- A token names a ticket and a user; the From address must belong to that same user, else the mail is
  refused (a forwarded mail, or a forged From). Staff replies need a token: threading headers alone
  (In-Reply-To / References naming one of our mails or the ticket's root Message-ID) are accepted only from
  a non-staff sender, whose service rules keep them to their own tickets.
- Either way the comment goes through `tickets.add_comment` as that user, so the web's rules apply.
- Any other mail to SUPPORT_ADDRESS opens a ticket for its sender (an unknown sender gets an account, or is
  refused: INBOUND_UNKNOWN_SENDERS).
- Auto-replies, bounces and our own mails coming back are ignored: never a ticket, never an answer.
Every mail ends in one status with a reason (`inbound_emails.outcome`) and a log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr

from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.orm import Session, undefer

from ticketing_app.config import get_settings
from ticketing_app.domain import CommentVia, InboundSource, InboundStatus, JobKind, Role
from ticketing_app.errors import DomainError, InvalidInput, TooLarge
from ticketing_app.jobs import queue
from ticketing_app.mail import inbound as mail_in
from ticketing_app.mail import tokens
from ticketing_app.models import EmailMessage, InboundEmail, Ticket, User
from ticketing_app.schemas import CommentCreate, TicketCreate, clean_email
from ticketing_app.services import accounts, attachments, merge, tickets

__all__ = ["mark_failed", "process", "receive"]

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 10_000
MAX_ATTACHMENTS = 20
_ROOT_ID = re.compile(r"^<ticket-(\d{1,10})@([^<>@\s]+)>$")


# ----- receiving: one statement stores the raw mail and its job -----

_RECEIVE = text(
    f"""
    WITH mail AS (
        INSERT INTO inbound_emails (message_id, source, raw, size, envelope_from, envelope_to, status)
        VALUES (:message_id, :source, :raw, :size, :envelope_from, CAST(:envelope_to AS text[]),
                '{InboundStatus.RECEIVED}')
        ON CONFLICT (message_id) DO NOTHING
        RETURNING id
    ), job AS ({
        queue.insert_job_sql(
            kind=f"'{JobKind.PROCESS_INBOUND}'",
            payload="jsonb_build_object('inbound_id', mail.id)",
            dedupe_key=f"'{JobKind.PROCESS_INBOUND}:' || mail.id",
            run_after="now()",
            source="mail",
        )
    })
    SELECT mail.id, pg_notify(:channel, '{JobKind.PROCESS_INBOUND}') FROM mail
    """
)


def receive(
    session: Session,
    raw: bytes,
    *,
    source: InboundSource,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
) -> int | None:
    """Store a mail as it came, with the job that will process it, in the caller's transaction.

    Returns the new row's id, or None when a mail with this Message-ID was stored before (a duplicate
    delivery stores and queues nothing). Raises TooLarge above INBOUND_MAX_MB.
    """
    settings = get_settings()
    if len(raw) > settings.inbound_max_bytes():
        raise TooLarge(f"The mail is larger than {settings.inbound_max_bytes() // (1024 * 1024)} MB.")
    row = session.execute(
        _RECEIVE,
        {
            "message_id": mail_in.message_id_of(raw),
            "source": str(source),
            "raw": raw,
            "size": len(raw),
            "envelope_from": (envelope_from or "")[:998] if envelope_from is not None else None,
            "envelope_to": [address[:998] for address in envelope_to][:100],
            "max_attempts": settings.job_max_attempts,
            "channel": queue.NOTIFY_CHANNEL,
        },
    ).first()
    return int(row.id) if row is not None else None


# ----- processing -----


@dataclass(frozen=True)
class Outcome:
    status: InboundStatus
    reason: str
    ticket_id: int | None = None
    comment_id: int | None = None
    user_id: int | None = None


class _Refused(Exception):
    """A rule said no: the mail is marked refused with this reason (safe to log)."""


def process(session: Session, inbound_id: int) -> InboundEmail | None:
    """Turn a stored mail into a comment or a ticket, once, in the caller's transaction (the job's).

    Idempotent: a mail already processed (or ignored or refused) is left as it is. The row is locked,
    so two workers never process one mail; the ticket or comment and the mail's new status commit together.
    """
    row = session.scalar(
        select(InboundEmail)
        .where(InboundEmail.id == inbound_id)
        .options(undefer(InboundEmail.raw))  # in the same round trip
        .with_for_update()
    )
    # A failed mail has no ticket or comment: it may run again (an admin's retry of its dead job).
    if row is None or row.status not in (InboundStatus.RECEIVED, InboundStatus.FAILED):
        return row
    try:
        parsed = mail_in.parse_mail(row.raw, envelope_from=row.envelope_from, message_id=row.message_id)
    except mail_in.MailUnreadable as exc:
        return _settle(row, Outcome(InboundStatus.FAILED, f"unreadable mail: {exc}"))
    except Exception as exc:  # noqa: BLE001 - a mail nobody can read is failed, never retried forever
        return _settle(row, Outcome(InboundStatus.FAILED, f"unreadable mail: {type(exc).__name__}: {exc}"[:300]))
    for note in parsed.notes:
        log.info("inbound mail %s (%s): %s", row.id, _safe(row.message_id), note)
    for warning in parsed.warnings:  # our own words: never the mail's text
        log.warning(
            "inbound mail %s %s from %s: %s", row.id, _safe(row.message_id), _safe(parsed.from_address) or "?", warning
        )
    savepoint = session.begin_nested()
    try:
        outcome = _decide(session, row, parsed)
        savepoint.commit()
    except (_Refused, DomainError, ValidationError) as exc:
        savepoint.rollback()
        reason = exc.message if isinstance(exc, DomainError) else _validation_message(exc)
        outcome = Outcome(InboundStatus.REFUSED, reason)
    return _settle(row, outcome, sender=parsed.from_address)


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
    return str(exc)


def mark_failed(session: Session, inbound_id: int, error: str) -> None:
    """Its job died (e.g. the database kept failing): the mail says so; retrying the dead job processes it."""
    row = session.scalar(select(InboundEmail).where(InboundEmail.id == inbound_id).with_for_update())
    if row is not None and row.status == InboundStatus.RECEIVED:
        _settle(row, Outcome(InboundStatus.FAILED, f"processing failed: {error}"[:300]))


def _settle(row: InboundEmail, outcome: Outcome, *, sender: str = "") -> InboundEmail:
    row.status = outcome.status
    row.outcome = outcome.reason[:1000]
    row.ticket_id = outcome.ticket_id
    row.comment_id = outcome.comment_id
    row.user_id = outcome.user_id
    row.processed_at = datetime.now(UTC)
    # Refusals and failures are worth an operator's look; auto-replies and our own mails are routine.
    level = logging.WARNING if outcome.status in (InboundStatus.REFUSED, InboundStatus.FAILED) else logging.INFO
    log.log(
        level,
        "inbound mail %s %s from %s %s: %s",
        row.id,
        _safe(row.message_id),
        _safe(sender) or "?",
        outcome.status,
        _safe(outcome.reason),
    )
    return row


def _safe(value: str) -> str:
    """For a log line: one line, bounded (a mail's header must not forge log lines)."""
    return mail_in.one_line(value)[:200]


def _decide(session: Session, row: InboundEmail, parsed: mail_in.ParsedMail) -> Outcome:
    settings = get_settings()
    if parsed.auto_reply:
        return Outcome(InboundStatus.IGNORED, f"auto-reply or bounce ({parsed.auto_reply}): not answered")
    ours = {settings.support_address, parseaddr(settings.mail_from)[1].strip().lower()}
    sent = _our_messages(session, [parsed.message_id, *parsed.references])
    if parsed.from_address in ours or parsed.message_id in sent:
        return Outcome(InboundStatus.IGNORED, "one of our own mails came back")
    if not parsed.from_address:
        raise _Refused("no usable sender address (From)")
    recipients = [*row.envelope_to, *parsed.recipients]
    token, token_given = _reply_token(recipients, parsed.helpdesk_token)
    if token_given and token is None:
        raise _Refused("the reply token is not valid (forged, cut or from another installation)")
    ticket_id = token.ticket_id if token else _threaded_ticket(sent, parsed.references)
    sender = accounts.find_user_by_email(session, parsed.from_address)
    if ticket_id is not None:
        return _reply(session, parsed, sender, ticket_id, token)
    if row.source == InboundSource.SMTP and not _to_support(recipients):
        return Outcome(InboundStatus.IGNORED, "not addressed to SUPPORT_ADDRESS")
    return _new_ticket(session, parsed, sender)


def _our_messages(session: Session, message_ids: Sequence[str]) -> dict[str, int | None]:
    """Which of these Message-IDs are mails we sent, with the ticket each was about (one query)."""
    rows = session.execute(
        select(EmailMessage.message_id, EmailMessage.ticket_id).where(EmailMessage.message_id.in_(message_ids))
    ).all()
    return {message_id: ticket_id for message_id, ticket_id in rows if message_id}


def _reply_token(recipients: Sequence[str], header: str | None) -> tuple[tokens.ReplyTarget | None, bool]:
    """(the target of a genuine token, whether any token was given at all)."""
    support_local, _, support_domain = get_settings().support_address.partition("@")
    given = False
    for address in recipients:
        local, _, domain = address.strip().lower().rpartition("@")
        if domain == support_domain and local.startswith(f"{support_local}+"):
            given = True
            target = tokens.parse_reply_address(address)
            if target is not None:
                return target, True
    if header:
        given = True
        target = tokens.read_reply_token(header)
        if target is not None:
            return target, True
    return None, given


def _to_support(recipients: Sequence[str]) -> bool:
    support = get_settings().support_address
    local, _, domain = support.partition("@")
    for address in recipients:
        their_local, _, their_domain = address.strip().lower().rpartition("@")
        if their_domain == domain and their_local.partition("+")[0] == local:
            return True
    return False


def _threaded_ticket(sent: dict[str, int | None], references: Sequence[str]) -> int | None:
    """The ticket an In-Reply-To / References chain names: one of our sent mails, or a ticket's root id."""
    settings = get_settings()
    # Our Message-IDs are made in MAIL_FROM's domain; SUPPORT_ADDRESS's is accepted too.
    domains = {settings.support_address.partition("@")[2], parseaddr(settings.mail_from)[1].rpartition("@")[2].lower()}
    for reference in references:  # newest first
        ticket_id = sent.get(reference)
        if ticket_id is not None:
            return ticket_id
        root = _ROOT_ID.match(reference)
        if root and root.group(2).lower() in domains and int(root.group(1)) > 0:
            return int(root.group(1))
    return None


def _reply(
    session: Session,
    parsed: mail_in.ParsedMail,
    sender: User | None,
    ticket_id: int,
    token: tokens.ReplyTarget | None,
) -> Outcome:
    if sender is None:
        raise _Refused(f"a reply from {parsed.from_address}, who has no account")
    if not sender.is_active:
        raise _Refused(f"a reply from {parsed.from_address}, whose account is deactivated")
    if token is not None and token.user_id != sender.id:
        raise _Refused(
            f"From {parsed.from_address} does not match the reply token (issued to user {token.user_id}):"
            " forwarded or forged"
        )
    if token is None and sender.role != Role.USER:
        raise _Refused(
            f"a staff reply from {parsed.from_address} without the signed reply address: From alone is not trusted"
        )
    files, notes = _acceptable_files(parsed)
    body = _body(parsed.text, notes, empty="(empty reply)")
    ticket_id = merge.final_ticket_id(session, ticket_id)  # a reply to a merged ticket's mail joins the original
    comment = tickets.add_comment(session, sender, ticket_id, CommentCreate(body=body), via=CommentVia.EMAIL)
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None  # add_comment found it
    for attachment in files:
        attachments.store(session, sender, ticket, filename=attachment.filename, data=attachment.data, comment=comment)
    return Outcome(
        InboundStatus.PROCESSED,
        f"comment {comment.id} on {ticket.reference}" + (f" ({len(files)} attachment(s))" if files else ""),
        ticket_id=ticket_id,
        comment_id=comment.id,
        user_id=sender.id,
    )


def _new_ticket(session: Session, parsed: mail_in.ParsedMail, sender: User | None) -> Outcome:
    created_account = False
    if sender is None:
        if get_settings().inbound_unknown_senders == "refuse":
            raise _Refused(f"unknown sender {parsed.from_address} (INBOUND_UNKNOWN_SENDERS=refuse)")
        try:
            address = clean_email(parsed.from_address)
        except ValueError:
            raise _Refused(f"the sender address {parsed.from_address!r} is not a valid e-mail address") from None
        sender = accounts.create_mail_user(session, address, parsed.from_name)
        created_account = True
    if not sender.is_active:
        raise _Refused(f"a mail from {parsed.from_address}, whose account is deactivated")
    files, notes = _acceptable_files(parsed)
    data = TicketCreate(title=_title(parsed.subject), description=_body(parsed.text, notes, empty="(no text)"))
    created = tickets.create_ticket(session, sender, data, via=CommentVia.EMAIL)
    ticket = session.get(Ticket, created.id)
    assert ticket is not None
    for attachment in files:
        attachments.store(session, sender, ticket, filename=attachment.filename, data=attachment.data)
    return Outcome(
        InboundStatus.PROCESSED,
        f"opened {created.number}"
        + (" for a new account" if created_account else "")
        + (f" ({len(files)} attachment(s))" if files else ""),
        ticket_id=created.id,
        user_id=sender.id,
    )


def _acceptable_files(parsed: mail_in.ParsedMail) -> tuple[list[mail_in.InboundAttachment], list[str]]:
    """The attachments we keep, and a note for each one skipped (said in the comment or description)."""
    limit = attachments.max_bytes()
    kept: list[mail_in.InboundAttachment] = []
    notes: list[str] = []
    for attachment in parsed.attachments:
        name = attachments.safe_filename(attachment.filename)
        if len(attachment.data) > limit:
            notes.append(
                f"[Attachment {name} ({len(attachment.data) / 1024 / 1024:.1f} MB) was not stored: larger than"
                f" {get_settings().max_attachment_mb:g} MB.]"
            )
        elif len(kept) >= MAX_ATTACHMENTS:
            notes.append(f"[Attachment {name} was not stored: at most {MAX_ATTACHMENTS} files per mail.]")
        else:
            kept.append(attachment)
    return kept, notes


def _title(subject: str) -> str:
    title = mail_in.one_line(subject)
    if len(title) < 3:
        title = f"(no subject) {title}".strip()
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1].rstrip() + "\u2026"


def _body(text_: str, notes: list[str], *, empty: str) -> str:
    """The text as stored: within the length limit (cut with a note), with the notes after it."""
    tail = "\n\n".join(notes)
    room = MAX_BODY_CHARS - len(tail) - 4
    body = mail_in.clean_text(text_) or empty
    if len(body) > room:
        body = body[: max(0, room - 40)].rstrip() + "\n[... cut: the mail was longer.]"
    result = f"{body}\n\n{tail}" if tail else body
    if not result.strip():
        raise InvalidInput("empty mail")
    return result
