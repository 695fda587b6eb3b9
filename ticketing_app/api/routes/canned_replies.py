"""/api/canned-replies: staff share replies and fill them in for a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import TypeAdapter

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.responses import model_response
from ticketing_app.schemas import MAX_ID, CannedReplyIn, CannedReplyOut, CannedReplyRendered, CannedReplyUpdate
from ticketing_app.services import canned_replies

router = APIRouter(prefix="/canned-replies", tags=["canned replies"])
ReplyId = Annotated[int, Path(ge=1, le=MAX_ID)]
_REPLIES = TypeAdapter(list[CannedReplyOut])


@router.get("", response_model=list[CannedReplyOut])
def list_replies(token: Token, q: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    with acting(token) as (session, user):
        replies = canned_replies.list_replies(session, user, q=q)
        body = _REPLIES.dump_json([CannedReplyOut.model_validate(r) for r in replies])
        return Response(content=body, media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CannedReplyOut)
def create_reply(data: CannedReplyIn, token: Token) -> Response:
    with acting(token) as (session, user):
        reply = canned_replies.create(session, user, data)
        return model_response(CannedReplyOut.model_validate(reply), status.HTTP_201_CREATED)


@router.get("/{reply_id}", response_model=CannedReplyOut)
def get_reply(reply_id: ReplyId, token: Token) -> Response:
    with acting(token) as (session, user):
        return model_response(CannedReplyOut.model_validate(canned_replies.get(session, user, reply_id)))


@router.get("/{reply_id}/render", response_model=CannedReplyRendered)
def render_reply(reply_id: ReplyId, token: Token, ticket_id: Annotated[int, Query(ge=1, le=MAX_ID)]) -> Response:
    with acting(token) as (session, user):
        return model_response(canned_replies.render(session, user, reply_id, ticket_id))


@router.patch("/{reply_id}", response_model=CannedReplyOut)
def update_reply(reply_id: ReplyId, data: CannedReplyUpdate, token: Token) -> Response:
    with acting(token) as (session, user):
        return model_response(CannedReplyOut.model_validate(canned_replies.update(session, user, reply_id, data)))


@router.delete("/{reply_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_reply(reply_id: ReplyId, token: Token) -> Response:
    with acting(token) as (session, user):
        canned_replies.delete(session, user, reply_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
