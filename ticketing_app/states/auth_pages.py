"""Log-in and sign-up forms."""

from __future__ import annotations

from typing import Any

import reflex as rx
from pydantic import ValidationError

from ticketing_app.errors import DomainError
from ticketing_app.schemas import LoginIn, SignupIn
from ticketing_app.services import accounts
from ticketing_app.states.base import LANDING, AuthState, error_message, run_db


class LoginState(AuthState):
    error: str = ""
    busy: bool = False

    @rx.event
    def on_open(self) -> None:
        self.error = self.flash
        self.flash = ""

    @rx.event
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = ""
        try:
            data = LoginIn(email=str(form.get("email", "")), password=str(form.get("password", "")))
            user, token = await run_db(lambda s: accounts.login(s, data))
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        self.token = token
        self._remember(user)
        return rx.redirect(LANDING.get(user.role, "/tickets"))


class SignupState(AuthState):
    error: str = ""

    @rx.event
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = ""
        try:
            data = SignupIn(
                name=str(form.get("name", "")),
                email=str(form.get("email", "")),
                password=str(form.get("password", "")),
            )
            user, token = await run_db(lambda s: accounts.signup(s, data))
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        self.token = token
        self._remember(user)
        return rx.redirect("/tickets")
