"""Account self-service pages: forgot password, reset password (from the mailed link), verify e-mail, profile."""

from __future__ import annotations

from typing import Any

import reflex as rx

from ticketing_app.errors import InvalidInput
from ticketing_app.schemas import PasswordChange, PasswordResetConfirm, PasswordResetRequest, ProfileUpdate
from ticketing_app.services import accounts, self_service
from ticketing_app.states.auth_pages import _form_answer
from ticketing_app.states.base import LOGIN_PAGE, AuthState, a_form, form_text, presents_errors, run_db


def _link_token(state: AuthState) -> str:
    """The `token=` of the link the page was opened with ("" when there is none)."""
    return str(state.router.url.query_parameters.get("token", ""))[:200]


class ForgotPasswordState(AuthState):
    error: str = ""
    notice: str = ""

    @rx.event
    def on_open(self) -> None:
        self.error = self.notice = ""

    @rx.event
    @presents_errors
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = self.notice = ""
        data = PasswordResetRequest(email=form_text(a_form(form), "email"))
        address = self._client_address()
        self.notice = await run_db(lambda s: self_service.request_password_reset(s, data.email, address=address))
        return None


class ResetPasswordState(AuthState):
    error: str = ""
    _signed_out = _form_answer

    @rx.event
    def on_open(self) -> None:
        # Never clears: a submit sent before the page finished loading may already have been answered.
        if not _link_token(self):
            self.error = "This page needs the link from your e-mail. Ask for a new one."

    @rx.event
    @presents_errors
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = ""
        form = a_form(form)
        password = form_text(form, "password")
        if password != form_text(form, "confirm"):
            raise InvalidInput("The two passwords are not the same.", field="confirm")
        data = PasswordResetConfirm(token=_link_token(self), password=password)
        await run_db(lambda s: self_service.confirm_password_reset(s, data))
        self._forget("Your password is changed. Log in with the new one.")  # this browser's session ended too
        return rx.redirect(LOGIN_PAGE)


class VerifyEmailState(AuthState):
    error: str = ""
    notice: str = ""
    busy: bool = True

    @rx.event
    @presents_errors
    async def on_open(self) -> Any:
        self.error = self.notice = ""
        token = _link_token(self)
        self.busy = False
        if not token:
            self.error = "This page needs the link from your e-mail."
            return None
        user = await run_db(lambda s: self_service.verify_email(s, token))
        self.notice = f"Thank you: {user.email} is verified."
        return None

    def _refused(self, exc: Exception, *_args: Any, **_kwargs: Any) -> Any:
        self.busy = False
        return super()._refused(exc)


class ProfileState(AuthState):
    error: str = ""
    notice: str = ""
    name: str = ""
    email: str = ""
    email_verified: bool = True
    loaded: bool = False

    @rx.event
    @presents_errors
    async def load(self) -> Any:
        self.error = self.notice = ""
        me = await self._actor_call(lambda _s, u: accounts.user_out(u))
        self.name, self.email, self.email_verified, self.loaded = me.name, me.email, me.email_verified, True
        return None

    @rx.event
    @presents_errors
    async def save_name(self, form: dict[str, Any]) -> Any:
        self.error = self.notice = ""
        data = ProfileUpdate(name=form_text(a_form(form), "name"))
        me = await self._actor_call(lambda s, u: self_service.update_profile(s, u, data))
        self.name = self.user_name = me.name
        self.notice = "Your name is saved."
        return None

    @rx.event
    @presents_errors
    async def change_password(self, form: dict[str, Any]) -> Any:
        self.error = self.notice = ""
        form = a_form(form)
        new = form_text(form, "new_password")
        if new != form_text(form, "confirm_password"):
            raise InvalidInput("The two new passwords are not the same.", field="confirm_password")
        data = PasswordChange(current_password=form_text(form, "current_password"), new_password=new)
        self.token = await self._actor_call(lambda s, u: accounts.change_password(s, u, data))
        self.notice = "Your password is changed. Your other sessions have ended."
        return [rx.set_value(field, "") for field in ("current_password", "new_password", "confirm_password")]

    @rx.event
    @presents_errors
    async def resend_verification(self) -> Any:
        self.error = self.notice = ""
        self.notice = await self._actor_call(lambda s, u: self_service.resend_verification(s, u))
        return None
