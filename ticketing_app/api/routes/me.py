"""/api/me: the logged-in person's own profile."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.responses import model_response
from ticketing_app.schemas import ProfileUpdate, UserOut
from ticketing_app.services import accounts, self_service

router = APIRouter(prefix="/me", tags=["me"])


@router.get("", response_model=UserOut)
def read_profile(token: Token) -> Response:
    with acting(token) as (_, user):
        return model_response(accounts.user_out(user))


@router.patch("", response_model=UserOut)
def update_profile(data: ProfileUpdate, token: Token) -> Response:
    """Change your name (your password: POST /api/auth/change-password)."""
    with acting(token) as (session, user):
        return model_response(self_service.update_profile(session, user, data))
