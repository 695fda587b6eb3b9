"""The base state every page state extends: who is logged in, re-validated by the services on each event.

`presents_errors` is the one place where a service's refusal becomes what the page shows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar, cast, overload

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ticketing_app.db import session_scope
from ticketing_app.domain import STAFF_ROLES, Role
from ticketing_app.errors import DomainError, InvalidInput, NotAuthenticated, PermissionDenied
from ticketing_app.models import User
from ticketing_app.security import client_address
from ticketing_app.services import accounts

log = logging.getLogger(__name__)

T = TypeVar("T")
LANDING: dict[Role, str] = {Role.USER: "/tickets", Role.MODERATOR: "/queue", Role.ADMIN: "/admin"}
LOGIN_PAGE = "/login"


def landing_page(role: str) -> str:
    """Where a person starts, by role (roles are StrEnums: the stored string finds its member)."""
    return str(LANDING.get(role, LANDING[Role.USER]))  # type: ignore[call-overload]


# ----- what an event may carry: a browser can send any handler any JSON, so each argument is checked -----

MAX_ID = 2**31 - 1  # the tables' integer keys (larger values would fail in PostgreSQL, not in the services)
MAX_FORM_FIELD = 100_000  # a form field longer than any schema allows is refused before it is copied around


class UnexpectedEventArgument(InvalidInput):
    """An event argument the page never sends (a crafted websocket message or a stale page): the page says so
    through `presents_errors`, like any refusal, instead of the handler failing with a server exception."""

    def __init__(self) -> None:
        super().__init__("This request was not understood. Please reload the page and try again.")


def an_id(value: Any) -> int:
    """A row id as the page sends it: a JSON integer within the tables' key range (never a bool)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    raise UnexpectedEventArgument()


def one_of(value: Any, allowed: Collection[str]) -> str:
    """A string the page offers (a select's option, a status button)."""
    if isinstance(value, str) and value in allowed:
        return str(value)
    raise UnexpectedEventArgument()


def a_flag(value: Any) -> bool:
    """A switch's or a checkbox's value."""
    if isinstance(value, bool):
        return value
    raise UnexpectedEventArgument()


def a_text(value: Any, limit: int = MAX_FORM_FIELD) -> str:
    if isinstance(value, str) and len(value) <= limit:
        return value
    raise UnexpectedEventArgument()


def a_form(value: Any) -> dict[str, Any]:
    """A submitted form: field names to values."""
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise UnexpectedEventArgument()


def form_text(form: Mapping[str, Any], name: str, limit: int = MAX_FORM_FIELD) -> str:
    """One text field of a checked form; "" when absent. A non-string value (crafted) is refused, not
    turned into text such as "{'a': 1}"."""
    value = form.get(name, "")
    return "" if value is None else a_text(value, limit)


# (state, exception, *the method's arguments) -> the events to send back, or None
ErrorHook = Callable[..., Any]


def _in_transaction(fn: Callable[[Session], T]) -> T:
    with session_scope() as session:
        return fn(session)


async def run_db(fn: Callable[[Session], T]) -> T:
    """Run a service call in its own transaction on a worker thread (never block the event loop)."""
    return await asyncio.to_thread(_in_transaction, fn)


def error_message(exc: Exception) -> str:
    """A message a person can act on, for domain errors and validation errors alike."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors()[:3]:
            field = ".".join(str(p) for p in err["loc"])
            parts.append(f"{field.replace('_', ' ').capitalize()}: {err['msg'].removeprefix('Value error, ')}")
        return " ".join(parts)
    return "Something went wrong. Please try again."


_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])


@overload
def presents_errors(method: _Method) -> _Method: ...
@overload
def presents_errors(
    method: None = None, *, refused: ErrorHook | None = None, denied: ErrorHook | None = None, unexpected: str = ""
) -> Callable[[_Method], _Method]: ...
def presents_errors(
    method: Callable[..., Awaitable[Any]] | None = None,
    *,
    refused: ErrorHook | None = None,
    denied: ErrorHook | None = None,
    unexpected: str = "",
) -> Any:
    """Decorate a state method that calls services: their errors become what the page shows.

    - NotAuthenticated -> `state._signed_out(exc)`: the log-in page (the log-in form shows the message);
    - PermissionDenied -> `denied`, else `state._denied(exc)`: like any refusal unless the page has a
      not-allowed view;
    - DomainError or pydantic ValidationError -> `refused`, else `state._refused(exc)`:
      `state.error = error_message(exc)`;
    - any other exception, only when `unexpected` names the action: logged, and shown as "Something went
      wrong" (a page that would otherwise spin forever when the database is down).

    Hooks get (state, exc, *the method's arguments) and return the events to send back, or None.
    """

    def decorate(fn: _Method) -> _Method:
        @functools.wraps(fn)
        async def guarded(self: AuthState, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except NotAuthenticated as exc:
                return self._signed_out(exc)
            except PermissionDenied as exc:
                return (denied or type(self)._denied)(self, exc, *args, **kwargs)
            except (DomainError, ValidationError) as exc:
                return (refused or type(self)._refused)(self, exc, *args, **kwargs)
            except Exception as exc:
                if not unexpected:
                    raise
                log.exception("%s failed", unexpected)
                return (refused or type(self)._refused)(self, exc, *args, **kwargs)

        return cast(_Method, guarded)

    return decorate(method) if method is not None else decorate


class AuthState(rx.State):
    """The session token lives in the browser; the user is re-read from the database on every use.

    It is in localStorage, where the page's scripts can read it, not in an HttpOnly cookie: Reflex hands the
    backend only what the page sends over its websocket (README "Sessions"). What limits the damage of a
    stolen token: it expires (JWT_EXPIRES_MINUTES), log-out revokes it on the server, a password change, a
    role change or deactivation revokes all of the user's tokens, and the content security policy.
    """

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
        return self.user_role in STAFF_ROLES

    @rx.var
    def is_admin(self) -> bool:
        return self.user_role == Role.ADMIN

    def _client_address(self) -> str:
        """The client's address for throttling: the websocket's peer (X-Forwarded-For only from TRUSTED_PROXIES)."""
        router = self.router
        return client_address(router.session.client_ip, router.headers.raw_headers.get("x-forwarded-for"))

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

    # ----- how a page shows a service's refusal (see presents_errors) -----

    def _signed_out(self, exc: NotAuthenticated) -> Any:
        return rx.redirect(LOGIN_PAGE)

    def _refused(self, exc: Exception, *_args: Any, **_kwargs: Any) -> Any:
        self.error = error_message(exc)  # every state that shows refusals declares `error: str`
        return None

    def _denied(self, exc: PermissionDenied, *args: Any, **kwargs: Any) -> Any:
        return self._refused(exc, *args, **kwargs)

    # ----- events -----

    @rx.event
    @presents_errors
    async def require_login(self) -> Any:
        """on_load guard: back to the log-in page when the token is missing, expired or revoked."""
        await self._actor_call(lambda _s, _u: None)
        return None

    @rx.event
    @presents_errors
    async def go_home(self) -> Any:
        """Landing page by role; log-in when signed out."""
        await self._actor_call(lambda _s, _u: None)
        return rx.redirect(landing_page(self.user_role))

    @rx.event
    async def logout(self) -> Any:
        """Log out here and on the server: the token is revoked, so a copy of it is no use either."""
        token = self.token
        self._forget("You are logged out.")
        if token:
            try:
                await run_db(lambda s: accounts.logout(s, token))
            except Exception:  # the browser forgets it anyway; the token still expires
                log.exception("revoking a token at log-out failed")
                self.flash = "You are logged out here, but the server could not end the session; it expires by itself."
        return rx.redirect(LOGIN_PAGE)
