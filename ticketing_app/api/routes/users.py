"""/api/users: what admins do to one person's account (listing and changes: /api/auth/users, update-user)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.responses import model_response
from ticketing_app.schemas import MessageOut
from ticketing_app.services import self_service

router = APIRouter(prefix="/users", tags=["users"])


@router.post("/{user_id}/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut)
def send_password_reset(user_id: int, token: Token) -> Response:
    """Admins mail someone a single-use link to choose a new password."""
    with acting(token) as (session, actor):
        answer = self_service.send_password_reset(session, actor, user_id)
        return model_response(MessageOut(detail=answer), status.HTTP_202_ACCEPTED)
