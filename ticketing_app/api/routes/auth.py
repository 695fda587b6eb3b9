"""/api/auth: sign-up, log-in, the current user, and admin user management (seed-compatible paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from ticketing_app.api.deps import Token, acting
from ticketing_app.db import session_scope
from ticketing_app.schemas import AuthOut, LoginIn, Page, SignupIn, UserFilters, UserOut, UserUpdate
from ticketing_app.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=AuthOut)
def signup(data: SignupIn) -> AuthOut:
    with session_scope() as session:
        user, token = accounts.signup(session, data)
        return AuthOut(user=accounts.user_out(user), access_token=token)


@router.post("/login", response_model=AuthOut)
def login(data: LoginIn) -> AuthOut:
    with session_scope() as session:
        user, token = accounts.login(session, data)
        return AuthOut(user=accounts.user_out(user), access_token=token)


@router.get("/me", response_model=UserOut)
def me(token: Token) -> UserOut:
    with acting(token) as (_, user):
        return accounts.user_out(user)


@router.get("/users", response_model=Page[UserOut])
def list_users(token: Token, filters: Annotated[UserFilters, Depends()]) -> Page[UserOut]:
    with acting(token) as (session, user):
        return accounts.list_users(session, user, filters)


@router.post("/update-user", response_model=UserOut)
def update_user(data: UserUpdate, token: Token) -> UserOut:
    with acting(token) as (session, user):
        return accounts.update_user(session, user, data)
