"""Log-in and sign-up forms."""

from __future__ import annotations

from typing import Any

import reflex as rx

from ticketing_app.domain import Role
from ticketing_app.errors import NotAuthenticated
from ticketing_app.schemas import LoginIn, SignupIn
from ticketing_app.services import accounts
from ticketing_app.states.base import LANDING, AuthState, a_form, form_text, landing_page, presents_errors, run_db


def _form_answer(state: AuthState, exc: NotAuthenticated) -> Any:
    """On the forms that start a session, NotAuthenticated is the form's answer ("Wrong e-mail or password."):
    shown on the form, not a trip to the log-in page the person is already on."""
    return state._refused(exc)


class LoginState(AuthState):
    error: str = ""
    busy: bool = False
    _signed_out = _form_answer

    @rx.event
    def on_open(self) -> None:
        self.error = self.flash
        self.flash = ""

    @rx.event
    @presents_errors
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = ""
        form = a_form(form)
        data = LoginIn(email=form_text(form, "email"), password=form_text(form, "password"))
        address = self._client_address()
        user, token = await run_db(lambda s: accounts.login(s, data, address=address))
        self.token = token
        self._remember(user)
        return rx.redirect(landing_page(user.role))


class SignupState(AuthState):
    error: str = ""
    _signed_out = _form_answer

    @rx.event
    @presents_errors
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = ""
        form = a_form(form)
        data = SignupIn(
            name=form_text(form, "name"), email=form_text(form, "email"), password=form_text(form, "password")
        )
        address = self._client_address()
        user, token = await run_db(lambda s: accounts.signup(s, data, address=address))
        self.token = token
        self._remember(user)
        return rx.redirect(LANDING[Role.USER])  # sign-up makes a plain user
