"""/api/tickets: submit, list, read, update and comment."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from ticketing_app.api.deps import Token, acting, acting_as_claims, request_address
from ticketing_app.api.responses import model_response
from ticketing_app.domain import CommentVia
from ticketing_app.schemas import (
    BulkResult,
    BulkTicketUpdate,
    CommentCreate,
    CommentOut,
    MergeIn,
    Page,
    ReplyDraftOut,
    SimilarTicketsOut,
    TicketCreate,
    TicketDetail,
    TicketFilters,
    TicketOut,
    TicketUpdate,
)
from ticketing_app.services import bulk, drafts, merge, similar, tickets

router = APIRouter(prefix="/tickets", tags=["tickets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TicketOut)
async def create_ticket(data: TicketCreate, token: Token, request: Request) -> Response:
    # async: the busiest endpoint runs on the event loop, one statement on one connection (bench/README.md);
    # that statement also checks the token's revocation and the rate limits
    pool, claims = acting_as_claims(token)
    created = await tickets.create_ticket_async(pool, claims, data, address=request_address(request))
    return model_response(created, status.HTTP_201_CREATED)


@router.post("/bulk", response_model=BulkResult)
def bulk_update(data: BulkTicketUpdate, token: Token) -> Response:
    """The same change (status, priority, assignee) for up to 100 tickets: each with the rules of one update;
    `failed` says which were refused and why."""
    with acting(token) as (session, user):
        return model_response(bulk.bulk_update(session, user, data))


@router.get("", response_model=Page[TicketOut])
def list_tickets(
    token: Token,
    filters: Annotated[TicketFilters, Depends()],
    order: Annotated[Literal["newest", "queue"], Query()] = "newest",
) -> Response:
    with acting(token) as (session, user):
        return model_response(tickets.list_tickets(session, user, filters, order=order))


@router.get("/{ticket_id}", response_model=TicketDetail)
def get_ticket(ticket_id: int, token: Token) -> Response:
    with acting(token) as (session, user):
        return model_response(tickets.get_ticket_detail(session, user, ticket_id))


@router.patch("/{ticket_id}", response_model=TicketOut)
def update_ticket(ticket_id: int, data: TicketUpdate, token: Token) -> Response:
    with acting(token) as (session, user):
        updated = tickets.update_ticket(session, user, ticket_id, data)
        return model_response(tickets.full_ticket_out(session, updated, user))


@router.post("/{ticket_id}/comments", status_code=status.HTTP_201_CREATED, response_model=CommentOut)
def add_comment(ticket_id: int, data: CommentCreate, token: Token, request: Request) -> Response:
    with acting(token) as (session, user):
        added = tickets.add_comment(
            session, user, ticket_id, data, address=request_address(request), via=CommentVia.API
        )
        comment = CommentOut.model_validate(added)
        return model_response(comment, status.HTTP_201_CREATED)


@router.post("/{ticket_id}/merge", response_model=TicketOut)
def merge_ticket(ticket_id: int, data: MergeIn, token: Token) -> Response:
    """Merge this ticket (a duplicate) into the one named by `into_ticket_id` or `into_ticket_number`; answers
    with the original. 400 into itself, 403 not staff or not managing it, 404 either ticket not visible, 409
    already merged, merged target or closed target."""
    with acting(token) as (session, user):
        original = merge.merge_from_input(session, user, ticket_id, data)
        return model_response(tickets.full_ticket_out(session, original, user))


@router.get("/{ticket_id}/similar", response_model=SimilarTicketsOut)
def similar_tickets(ticket_id: int, token: Token) -> Response:
    """Up to 5 earlier tickets like this one that the caller may see, with their resolutions (staff only)."""
    with acting(token) as (session, user):
        return model_response(similar.similar_tickets(session, user, ticket_id))


@router.get("/{ticket_id}/reply-draft", response_model=ReplyDraftOut)
def reply_draft(ticket_id: int, token: Token) -> Response:
    """A suggested reply for staff working the ticket; never sent by itself. With Gemini configured the first
    answer is the offline draft (`ai_status: "pending"`) while Gemini writes one in the background: ask again."""
    with acting(token) as (session, user):
        return model_response(drafts.reply_draft(session, user, ticket_id))
