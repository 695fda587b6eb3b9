"""Merging a duplicate ticket into the original, as Zendesk and Zammad do.

The duplicate's conversation is copied onto the original (its description as the first comment, "Merged from
TCK-…", then every comment, public and internal, with its author, channel, time and files); the duplicate keeps
its own history, gets a public "Merged into TCK-…" comment and is closed. Its requester (and followers) follow the
original from then on (services/visibility.py) and are mailed once. Rules:
- staff only; the actor manages the duplicate (visibility.can_manage) and sees the original (admins: any);
- never into itself, never a ticket already merged, never into a merged ticket (the message names the ticket it
  went into: merge there), never into a closed ticket (reopen it first); a resolved original stays resolved;
- both rows are locked lower id first, so two merges of the same tickets (either way round) wait for each other
  instead of deadlocking, and the second sees the first's result and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Integer, column, func, insert, literal, select, values
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ticketing_app.domain import STAFF_ROLES, EventKind, TicketStatus, parse_ticket_reference
from ticketing_app.errors import BadRequest, Conflict, InvalidInput, NotFound, PermissionDenied
from ticketing_app.models import Attachment, Comment, Ticket, TicketFollower, User
from ticketing_app.schemas import MAX_ID, MergeIn
from ticketing_app.services import events, notifications, sla
from ticketing_app.services.visibility import can_manage, can_see

__all__ = [
    "MAX_NOTE",
    "MergeTarget",
    "final_ticket_id",
    "find_target",
    "merge_from_input",
    "merge_ticket",
    "ticket_id_for_number",
]

MAX_NOTE = 2000
NOT_FOUND = "Ticket not found."
TARGET_NOT_FOUND = "No ticket with that number that you can see."


@dataclass(frozen=True)
class MergeTarget:
    """The ticket a merge would go into, as the confirm step shows it."""

    id: int
    number: str
    title: str
    status: str


def find_target(session: Session, actor: User, duplicate_id: int, reference: str | int) -> MergeTarget:
    """The ticket named by `reference` ("TCK-1042", "1042" or an id as int) checked as a merge target for
    `duplicate_id`, without changing anything: the same refusals as `merge_ticket`."""
    if actor.role not in STAFF_ROLES:  # before the number is looked up: nobody else learns which exist
        raise PermissionDenied("Only staff can merge tickets.")
    number = reference if isinstance(reference, int) else parse_ticket_reference(reference)
    if number is None or not 0 < number <= MAX_ID:
        raise NotFound(TARGET_NOT_FOUND)
    original = session.scalar(select(Ticket).where(Ticket.number == number))
    if original is None:
        raise NotFound(TARGET_NOT_FOUND)
    duplicate = _visible(session, actor, duplicate_id)
    _check(actor, duplicate, original)
    return MergeTarget(id=original.id, number=original.reference, title=original.title, status=original.status)


def ticket_id_for_number(session: Session, reference: str | int) -> int:
    """The id of the ticket numbered `reference` (NotFound when there is none)."""
    number = reference if isinstance(reference, int) else parse_ticket_reference(reference)
    found = None
    if number is not None and 0 < number <= MAX_ID:
        found = session.scalar(select(Ticket.id).where(Ticket.number == number))
    if found is None:
        raise NotFound(TARGET_NOT_FOUND)
    return found


MAX_HOPS = 20


def final_ticket_id(session: Session, ticket_id: int) -> int:
    """The ticket that `ticket_id` was merged into, following merges (itself when never merged): where a reply
    to an older mail of a merged ticket belongs."""
    for _ in range(MAX_HOPS):
        into = session.scalar(select(Ticket.merged_into_id).where(Ticket.id == ticket_id))
        if into is None:
            return ticket_id
        ticket_id = into
    return ticket_id


def merge_from_input(session: Session, actor: User, duplicate_id: int, data: MergeIn) -> Ticket:
    """`merge_ticket` with the target named by id or by number (REST and UI input)."""
    if actor.role not in STAFF_ROLES:  # before looking the number up: nothing is learnt about it
        raise PermissionDenied("Only staff can merge tickets.")
    target = data.into_ticket_id
    if target is None:
        assert data.into_ticket_number is not None  # MergeIn wants exactly one
        target = ticket_id_for_number(session, data.into_ticket_number)
    return merge_ticket(session, actor, duplicate_id, target, data.note)


def merge_ticket(session: Session, actor: User, duplicate_id: int, original_id: int, note: str | None = None) -> Ticket:
    """Merge the duplicate into the original in the caller's transaction; returns the original."""
    if actor.role not in STAFF_ROLES:
        raise PermissionDenied("Only staff can merge tickets.")
    if duplicate_id == original_id:
        raise BadRequest("A ticket cannot be merged into itself.")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.", field="note")
    duplicate, original = _lock_pair(session, duplicate_id, original_id)
    if duplicate is None or not can_see(actor, duplicate):
        raise NotFound(NOT_FOUND)
    if original is None:
        raise NotFound(TARGET_NOT_FOUND)
    _check(actor, duplicate, original)

    copied = _copy_conversation(session, duplicate, original)
    joined = _add_followers(session, actor, duplicate, original)
    _close_duplicate(session, actor, duplicate, original, note, copied)
    events.record(
        session, original, EventKind.MERGED_FROM, actor, **{"from": _ref(duplicate)}, comments=copied, note=note
    )
    original.updated_at = duplicate.updated_at = datetime.now(UTC)
    session.flush()
    notifications.merged(session, actor, duplicate, original, joined, note)
    session.refresh(original)
    return original


def _visible(session: Session, actor: User, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id) if 0 < ticket_id <= MAX_ID else None
    if ticket is None or not can_see(actor, ticket):
        raise NotFound(NOT_FOUND)
    return ticket


def _check(actor: User, duplicate: Ticket, original: Ticket) -> None:
    """The refusals, in the order people can act on them."""
    if actor.role not in STAFF_ROLES:
        raise PermissionDenied("Only staff can merge tickets.")
    if not can_manage(actor, duplicate):
        raise PermissionDenied("Only the assigned moderator or an admin can merge this ticket.")
    if not can_see(actor, original):
        raise NotFound(TARGET_NOT_FOUND)
    if duplicate.id == original.id:
        raise BadRequest("A ticket cannot be merged into itself.")
    if duplicate.merged_into is not None:
        raise Conflict(f"{duplicate.reference} was already merged into {duplicate.merged_into.reference}.")
    if original.merged_into is not None:
        raise Conflict(
            f"{original.reference} was itself merged into {original.merged_into.reference}: "
            f"merge into {original.merged_into.reference} instead."
        )
    if original.status == TicketStatus.CLOSED:
        raise Conflict(f"{original.reference} is closed. Reopen it first, or merge it into this ticket instead.")


def _lock_pair(session: Session, first_id: int, second_id: int) -> tuple[Ticket | None, Ticket | None]:
    """Both tickets, row-locked lower id first, read afresh (a merge that committed meanwhile is seen)."""
    ids = [i for i in (first_id, second_id) if 0 < i <= MAX_ID]
    rows = session.scalars(
        select(Ticket)
        .where(Ticket.id.in_(ids))
        .order_by(Ticket.id)
        .with_for_update(of=Ticket)
        .execution_options(populate_existing=True)
    ).all()
    by_id = {ticket.id: ticket for ticket in rows}
    for ticket in rows:  # the merge links as they are now, not as an earlier read of this session saw them
        session.refresh(ticket, ["merged_into", "merged_from", "followers"])
    return by_id.get(first_id), by_id.get(second_id)


def _copy_conversation(session: Session, duplicate: Ticket, original: Ticket) -> int:
    """Copy the duplicate's description and comments, with their files, onto the original; returns how many
    comments the original got. Inserted comments feed the original's search columns (the comment trigger)."""
    opening = Comment(
        ticket_id=original.id,
        author_id=duplicate.created_by_id,
        body=f"Merged from {duplicate.reference}: {duplicate.title}\n\n{duplicate.description}",
        internal=False,
        created_at=duplicate.created_at,
    )
    session.add(opening)
    comments = session.scalars(
        select(Comment).where(Comment.ticket_id == duplicate.id).order_by(Comment.created_at, Comment.id)
    ).all()
    copies = [
        Comment(
            ticket_id=original.id,
            author_id=c.author_id,
            body=c.body,
            internal=c.internal,
            via=c.via,
            created_at=c.created_at,
        )
        for c in comments
    ]
    session.add_all(copies)
    session.flush()
    # Files on the duplicate itself go with its description; each comment's with its copy. Two statements in all.
    _copy_files(session, duplicate, original, [(None, opening.id)])
    _copy_files(session, duplicate, original, [(old.id, new.id) for old, new in zip(comments, copies, strict=True)])
    return len(copies) + 1


def _copy_files(session: Session, duplicate: Ticket, original: Ticket, moves: list[tuple[int | None, int]]) -> None:
    """Copy the files of comments (old comment id -> new; None: the files on the duplicate itself), bytes and
    previews, inside the database: nothing is read into this process."""
    if not moves:
        return
    pairs = values(column("old_id", Integer), column("new_id", Integer), name="moves").data(
        [(old or 0, new) for old, new in moves]
    )
    same_comment = func.coalesce(Attachment.comment_id, 0) == pairs.c.old_id  # 0 stands for "on the ticket"
    rows = (
        select(literal(original.id), pairs.c.new_id, *(getattr(Attachment, name) for name in _FILE_COLUMNS))
        .select_from(Attachment)
        .join(pairs, same_comment)
        .where(Attachment.ticket_id == duplicate.id)
        .order_by(Attachment.id)
    )
    session.execute(insert(Attachment).from_select(["ticket_id", "comment_id", *_FILE_COLUMNS], rows))


_FILE_COLUMNS = ("uploaded_by_id", "filename", "content_type", "size", "sha256", "data", "preview", "created_at")


def _add_followers(session: Session, actor: User, duplicate: Ticket, original: Ticket) -> list[User]:
    """The duplicate's requester and followers follow the original (unless they are its requester already);
    returns the people of the duplicate's requester side."""
    side = notifications.requester_side(duplicate)
    already = {original.created_by_id, *(f.user_id for f in original.followers)}
    for person in side:
        if person.id in already:
            continue
        session.execute(
            pg_insert(TicketFollower)
            .values(ticket_id=original.id, user_id=person.id, added_by_id=actor.id)
            .on_conflict_do_nothing()
        )
        events.record(session, original, EventKind.FOLLOWER_ADDED, actor, user=events.user_brief(person))
    return side


def _close_duplicate(
    session: Session, actor: User, duplicate: Ticket, original: Ticket, note: str | None, copied: int
) -> None:
    body = f"Merged into {original.reference}: {original.title}\n{notifications.ticket_url(original)}"
    if note:
        body += f"\n\n{note}"
    comment = Comment(ticket_id=duplicate.id, author_id=actor.id, body=body, internal=False)
    session.add(comment)
    session.flush()
    events.record(session, duplicate, EventKind.COMMENTED, actor, comment_id=comment.id, internal=False)
    if duplicate.status != TicketStatus.CLOSED:
        reason = f"merged into {original.reference}"
        events.record(
            session,
            duplicate,
            EventKind.STATUS_CHANGED,
            actor,
            old=duplicate.status,
            new=TicketStatus.CLOSED,
            reason=reason,
        )
        duplicate.status = TicketStatus.CLOSED
        sla.on_status_change(duplicate, TicketStatus.CLOSED)
    duplicate.merged_into_id = original.id
    events.record(session, duplicate, EventKind.MERGED_INTO, actor, into=_ref(original), comments=copied, note=note)


def _ref(ticket: Ticket) -> dict[str, object]:
    return {"id": ticket.id, "number": ticket.reference, "title": ticket.title}
