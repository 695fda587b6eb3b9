"""/api/auth: sign-up, log-in, log-out, password change, the current user, and admin user management
(seed-compatible paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from ticketing_app.api.deps import Token, acting, request_address
from ticketing_app.api.responses import model_response
from ticketing_app.db import session_scope
from ticketing_app.schemas import (
    AuthOut,
    LoginIn,
    MessageOut,
    Page,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    SignupIn,
    UserFilters,
    UserOut,
    UserUpdate,
    VerifyEmailIn,
)
from ticketing_app.services import accounts, self_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=AuthOut)
def signup(data: SignupIn, request: Request) -> Response:
    with session_scope() as session:
        user, token = accounts.signup(session, data, address=request_address(request))
        return model_response(AuthOut(user=accounts.user_out(user), access_token=token), status.HTTP_201_CREATED)


@router.post("/login", response_model=AuthOut)
def login(data: LoginIn, request: Request) -> Response:
    with session_scope() as session:
        user, token = accounts.login(session, data, address=request_address(request))
        return model_response(AuthOut(user=accounts.user_out(user), access_token=token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(token: Token) -> Response:
    """End this session: the presented token is refused from now on, by every process."""
    with session_scope() as session:
        accounts.logout(session, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/change-password", response_model=AuthOut)
def change_password(data: PasswordChange, token: Token) -> Response:
    """Change your password; every other session of yours ends, and this one gets a fresh token."""
    with acting(token) as (session, user):
        new_token = accounts.change_password(session, user, data)
        return model_response(AuthOut(user=accounts.user_out(user), access_token=new_token))


@router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut)
def request_password_reset(data: PasswordResetRequest, request: Request) -> Response:
    """Mail a single-use link to choose a new password; the same answer whether or not the address has an
    account."""
    with session_scope() as session:
        answer = self_service.request_password_reset(session, data.email, address=request_address(request))
        return model_response(MessageOut(detail=answer), status.HTTP_202_ACCEPTED)


@router.post("/password-reset/confirm", response_model=MessageOut)
def confirm_password_reset(data: PasswordResetConfirm) -> Response:
    """Set the password through a reset link; every earlier session of the account ends."""
    with session_scope() as session:
        self_service.confirm_password_reset(session, data)
        return model_response(MessageOut(detail="Your password is changed. Log in with the new one."))


@router.post("/verify-email", response_model=MessageOut)
def verify_email(data: VerifyEmailIn) -> Response:
    """Confirm the account's address through the link mailed to it."""
    with session_scope() as session:
        user = self_service.verify_email(session, data.token)
        return model_response(MessageOut(detail=f"Thank you: {user.email} is verified."))


@router.post("/verify-email/resend", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut)
def resend_verification(token: Token) -> Response:
    """Mail yourself a new verify link."""
    with acting(token) as (session, user):
        answer = self_service.resend_verification(session, user)
        return model_response(MessageOut(detail=answer), status.HTTP_202_ACCEPTED)


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
