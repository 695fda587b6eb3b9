"""presents_errors: the one place a service's refusal becomes what a page shows (no database needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ticketing_app.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from ticketing_app.states.admin import AdminUsersState
from ticketing_app.states.auth_pages import LoginState
from ticketing_app.states.base import presents_errors
from ticketing_app.states.formatting import TicketRow
from ticketing_app.states.queue import QueueState
from ticketing_app.states.tickets import TicketState


@presents_errors
async def _raise(state: Any, exc: Exception) -> Any:
    raise exc


def _run(state: Any, exc: Exception) -> Any:
    return asyncio.run(_raise(state, exc))


def _validation_error() -> ValidationError:
    class Form(BaseModel):
        title: int

    try:
        Form(title="x")  # type: ignore[arg-type]
    except ValidationError as exc:
        return exc
    raise AssertionError("no validation error")


def test_signed_out_goes_to_the_log_in_page():
    result = _run(QueueState(_reflex_internal_init=True), NotAuthenticated("Your session has expired."))
    assert "/login" in str(result)


def test_refusals_and_invalid_input_become_the_page_message():
    state = QueueState(_reflex_internal_init=True)
    assert _run(state, InvalidInput("Title is too short.")) is None
    assert state.error == "Title is too short."
    _run(state, _validation_error())
    assert state.error.startswith("Title: ")


def test_a_wrong_password_is_the_log_in_forms_answer_not_a_redirect():
    state = LoginState(_reflex_internal_init=True)
    assert _run(state, NotAuthenticated("Wrong e-mail or password.")) is None
    assert state.error == "Wrong e-mail or password."


def test_permission_denied_shows_each_pages_not_allowed_view():
    queue = QueueState(_reflex_internal_init=True)
    queue.rows, queue.total = [TicketRow(id=7, title="secret")], 1
    _run(queue, PermissionDenied("Only staff can see the queue."))
    assert not queue.allowed and queue.rows == [] and queue.total == 0

    users = AdminUsersState(_reflex_internal_init=True)
    users.vocabulary = ["billing"]
    _run(users, PermissionDenied("Only admins can do this."))
    assert users.forbidden and users.rows == [] and users.vocabulary == []


def _services_raise(monkeypatch, cls: type, exc: Exception) -> None:
    async def refused(self: Any, fn: Any) -> Any:
        raise exc

    monkeypatch.setattr(cls, "_actor_call", refused)


def test_the_ticket_page_turns_any_refusal_of_its_read_into_not_found(monkeypatch):
    _services_raise(monkeypatch, TicketState, NotFound("Ticket not found."))
    monkeypatch.setattr(TicketState, "_ticket_id", lambda self: 3)  # /tickets/3 (no router in a unit test)
    state = TicketState(_reflex_internal_init=True)
    state.ticket = TicketRow(id=3, title="someone else's")
    assert asyncio.run(state._refresh()) is None
    assert state.not_found and state.ticket == TicketRow() and state.error == ""


def test_an_unexpected_error_propagates_unless_the_method_names_its_action(monkeypatch):
    _services_raise(monkeypatch, AdminUsersState, ConnectionError("database is down"))
    state = AdminUsersState(_reflex_internal_init=True)
    assert asyncio.run(AdminUsersState.load.fn(state)) is None  # load names its action: shown, not raised
    assert state.error == "Something went wrong. Please try again." and not state.loading
    with pytest.raises(ConnectionError):
        _run(state, ConnectionError("database is down"))
