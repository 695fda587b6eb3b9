"""/api/me/filters: each person's saved filters for the queue and ticket lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import TypeAdapter

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.responses import model_response
from ticketing_app.schemas import MAX_ID, SavedFilterIn, SavedFilterOut
from ticketing_app.services import bulk

router = APIRouter(prefix="/me/filters", tags=["saved filters"])
_FILTERS = TypeAdapter(list[SavedFilterOut])


@router.get("", response_model=list[SavedFilterOut])
def list_filters(token: Token) -> Response:
    with acting(token) as (session, user):
        body = _FILTERS.dump_json([SavedFilterOut.model_validate(f) for f in bulk.list_filters(session, user)])
        return Response(content=body, media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SavedFilterOut)
def save_filter(data: SavedFilterIn, token: Token) -> Response:
    """Save a filter under a name (the same name again replaces it)."""
    with acting(token) as (session, user):
        saved = SavedFilterOut.model_validate(bulk.save_filter(session, user, data))
        return model_response(saved, status.HTTP_201_CREATED)


@router.delete("/{filter_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_filter(filter_id: Annotated[int, Path(ge=1, le=MAX_ID)], token: Token) -> Response:
    with acting(token) as (session, user):
        bulk.delete_filter(session, user, filter_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
