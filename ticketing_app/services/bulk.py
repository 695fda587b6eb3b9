"""Queue work in bulk: the same change for several tickets, and each person's saved filters."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ticketing_app.domain import STAFF_ROLES
from ticketing_app.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from ticketing_app.models import SavedFilter, User
from ticketing_app.schemas import BulkFailure, BulkResult, BulkTicketUpdate, SavedFilterIn, TicketUpdate
from ticketing_app.services import tickets

__all__ = ["MAX_SAVED_FILTERS", "bulk_update", "delete_filter", "list_filters", "save_filter"]

MAX_SAVED_FILTERS = 30


def bulk_update(session: Session, actor: User, data: BulkTicketUpdate) -> BulkResult:
    """Apply one change to each ticket through `tickets.update_ticket`: the same permission checks, audit events,
    mails and SLA effects as one by one. Each ticket in its own savepoint, so a ticket the actor may not change
    (or one already in that state) is reported and the others still change, all in one transaction."""
    if actor.role not in STAFF_ROLES:
        raise PermissionDenied("Only staff can change tickets in bulk.")
    change = TicketUpdate.model_validate(data.model_dump(include=data.model_fields_set - {"ticket_ids"}))
    if not change.model_fields_set - {"reason"}:
        raise InvalidInput("Choose a status, priority or assignee to set.")
    updated: list[int] = []
    failed: list[BulkFailure] = []
    for ticket_id in dict.fromkeys(data.ticket_ids):  # each once, in the order given
        try:
            with session.begin_nested():
                tickets.update_ticket(session, actor, ticket_id, change)
        except DomainError as exc:
            failed.append(BulkFailure(id=ticket_id, detail=exc.message))
        else:
            updated.append(ticket_id)
    return BulkResult(updated=updated, failed=failed)


def list_filters(session: Session, actor: User) -> list[SavedFilter]:
    """The actor's own saved filters, by name."""
    query = select(SavedFilter).where(SavedFilter.user_id == actor.id)
    return list(session.scalars(query.order_by(func.lower(SavedFilter.name), SavedFilter.id)))


def save_filter(session: Session, actor: User, data: SavedFilterIn) -> SavedFilter:
    """Save (or replace, by name) one of the actor's filters; paging is not part of a filter."""
    filters = data.filters.model_dump(exclude={"limit", "offset"}, exclude_defaults=True, mode="json")
    existing = session.scalar(
        select(SavedFilter).where(SavedFilter.user_id == actor.id, func.lower(SavedFilter.name) == data.name.lower())
    )
    if existing is not None:
        existing.filters, existing.name = filters, data.name
        session.flush()
        return existing
    count = session.scalar(select(func.count()).where(SavedFilter.user_id == actor.id)) or 0
    if count >= MAX_SAVED_FILTERS:
        raise InvalidInput(f"You can keep at most {MAX_SAVED_FILTERS} saved filters; delete one first.")
    saved = SavedFilter(user_id=actor.id, name=data.name, filters=filters)
    session.add(saved)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # the same name saved at the same moment in another tab
        raise Conflict("A filter with this name was just saved; try again.") from None
    session.refresh(saved)
    return saved


def delete_filter(session: Session, actor: User, filter_id: int) -> None:
    saved = session.get(SavedFilter, filter_id)
    if saved is None or saved.user_id != actor.id:  # someone else's is as good as missing
        raise NotFound("No saved filter with this id.")
    session.delete(saved)
    session.flush()
