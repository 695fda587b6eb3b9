"""The base state every page state extends: who is logged in, re-validated by the services on each event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx
from sqlalchemy.orm import Session

from ticketing_app.db import session_scope
from ticketing_app.errors import DomainError, NotAuthenticated
from ticketing_app.models import User
from ticketing_app.services import accounts

T = TypeVar("T")
LANDING = {"user": "/tickets", "moderator": "/queue", "admin": "/admin"}


def _in_transaction(fn: Callable[[Session], T]) -> T:
    with session_scope() as session:
        return fn(session)


async def run_db(fn: Callable[[Session], T]) -> T:
    """Run a service call in its own transaction on a worker thread (never block the event loop)."""
    return await asyncio.to_thread(_in_transaction, fn)


class AuthState(rx.State):
    """The session token lives in the browser; the user is re-read from the database on every use."""

    token: str = rx.LocalStorage("", name="helpdesk_token", sync=True)
    user_id: int = 0
    user_name: str = ""
    user_role: str = ""
    flash: str = ""

    @rx.var
    def logged_in(self) -> bool:
        return self.user_id > 0

    @rx.var
    def is_staff(self) -> bool:
        return self.user_role in ("moderator", "admin")

    @rx.var
    def is_admin(self) -> bool:
        return self.user_role == "admin"

    def _remember(self, user: User) -> None:
        self.user_id, self.user_name, self.user_role = user.id, user.name, user.role

    def _forget(self, message: str = "") -> None:
        self.token = ""
        self.user_id, self.user_name, self.user_role = 0, "", ""
        self.flash = message

    async def _actor_call(self, fn: Callable[[Session, User], T]) -> T:
        """Call a service as the logged-in user; raises NotAuthenticated when the session is gone."""
        token = self.token

        def call(session: Session) -> tuple[T, User]:
            actor = accounts.user_from_token(session, token)
            return fn(session, actor), actor

        try:
            result, actor = await run_db(call)
        except NotAuthenticated:
            self._forget("Your session has expired. Please log in again.")
            raise
        self._remember(actor)
        return result

    @rx.event
    async def require_login(self) -> Any:
        """on_load guard: back to the log-in page when the token is missing, expired or revoked."""
        try:
            await self._actor_call(lambda _s, _u: None)
        except NotAuthenticated:
            return rx.redirect("/login")
        return None

    @rx.event
    async def go_home(self) -> Any:
        """Landing page by role; log-in when signed out."""
        try:
            await self._actor_call(lambda _s, _u: None)
        except NotAuthenticated:
            return rx.redirect("/login")
        return rx.redirect(LANDING.get(self.user_role, "/tickets"))

    @rx.event
    def logout(self) -> Any:
        self._forget("You are logged out.")
        return rx.redirect("/login")


def error_message(exc: Exception) -> str:
    """A message a person can act on, for domain errors and validation errors alike."""
    from pydantic import ValidationError

    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            field = ".".join(str(p) for p in err["loc"])
            parts.append(f"{field.replace('_', ' ').capitalize()}: {err['msg'].removeprefix('Value error, ')}")
        return " ".join(parts)
    return "Something went wrong. Please try again."
