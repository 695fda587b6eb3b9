"""/api/auth: sign-up, log-in, the current user, and admin user management (seed-compatible paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.responses import model_response
from ticketing_app.db import session_scope
from ticketing_app.schemas import AuthOut, LoginIn, Page, SignupIn, UserFilters, UserOut, UserUpdate
from ticketing_app.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=AuthOut)
def signup(data: SignupIn) -> Response:
    with session_scope() as session:
        user, token = accounts.signup(session, data)
        return model_response(AuthOut(user=accounts.user_out(user), access_token=token), status.HTTP_201_CREATED)


@router.post("/login", response_model=AuthOut)
def login(data: LoginIn) -> Response:
    with session_scope() as session:
        user, token = accounts.login(session, data)
        return model_response(AuthOut(user=accounts.user_out(user), access_token=token))


@router.get("/me", response_model=UserOut)
def me(token: Token) -> Response:
    with acting(token) as (_, user):
        return model_response(accounts.user_out(user))


@router.get("/users", response_model=Page[UserOut])
def list_users(token: Token, filters: Annotated[UserFilters, Depends()]) -> Response:
    with acting(token) as (session, user):
        return model_response(accounts.list_users(session, user, filters))


@router.post("/update-user", response_model=UserOut)
def update_user(data: UserUpdate, token: Token) -> Response:
    with acting(token) as (session, user):
        return model_response(accounts.update_user(session, user, data))
