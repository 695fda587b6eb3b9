"""The UI's event handlers, driven in-process as the browser would trigger them, by every role.

A client can send any public event of any state with any arguments (a ticket id, a user id, a status), so
each handler that acts on a ticket or a user is called here with another person's ids: the service it
calls must refuse, nothing may change in the database, and no foreign data may land in the state that is
sent back to the browser. The handlers are enumerated from the state classes, so a new one that is not
classified here fails `test_every_event_handler_is_classified`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import json
import pkgutil
from typing import Any

import pytest
import reflex as rx
from sqlalchemy import select, update

import ticketing_app.states as states_pkg
from tests.security.conftest import ROLES, World, build_world, reset_database
from tests.security.test_api_access_matrix import snapshot
from ticketing_app.db import session_scope
from ticketing_app.jobs import queue
from ticketing_app.models import Job, Ticket, User
from ticketing_app.schemas import UserUpdate
from ticketing_app.states.formatting import TicketRow

# Framework events every state has: setvar only reaches explicit set_* handlers (auto setters are off).
FRAMEWORK = {"setvar", "hydrate", "hydrate_and_load", "set_is_hydrated"}

# Handlers that change a ticket or a user, or read one by an id the client chooses: tried by every role below.
ACTING = {
    "TicketState.load",
    "TicketState.follow",
    "TicketState.set_status",
    "TicketState.override",
    "TicketState.reassign",
    "TicketState.reply",
    "TicketState.insert_canned",
    "TicketState.suggest_reply",
    "TicketState.rate",
    "TicketState.typing",
    "CannedRepliesState.load",
    "CannedRepliesState.save",
    "CannedRepliesState.edit",
    "CannedRepliesState.delete",
    "TicketState.download_file",
    "TicketState.find_merge_target",
    "TicketState.confirm_merge",
    "TicketState.merge_into_similar",
    "QueueState.quick_status",
    "QueueState.apply_bulk",
    "QueueState.load",
    "QueueState.follow",
    "QueueState.set_scope",
    "AdminUsersState.load",
    "AdminUsersState.change_role",
    "AdminUsersState.set_active",
    "AdminUsersState.save_skills",
    "AdminUsersState.send_reset",
    "AdminOverviewState.load",
    "AdminOverviewState.refresh",
    "AdminOverviewState.retry",
    "AdminOverviewState.follow",
}
# Handlers that only read the actor's own data through the same checked services, edit local drafts, or
# act on the actor's own account (log in, sign up, log out, a new ticket of their own).
OWN_OR_LOCAL = {
    "MyTicketsState.load",
    "MyTicketsState.follow",
    "MyTicketsState.apply_search",
    "MyTicketsState.next_page",
    "MyTicketsState.previous_page",
    "MyTicketsState.set_status_filter",
    "NewTicketState.submit",
    "NewTicketState.count_title",
    "NewTicketState.count_description",
    "NewTicketState.files_rejected",
    "TicketState.set_internal_note",
    "TicketState.clear_reply_status",
    "TicketState.cancel_merge",
    "CannedRepliesState.cancel_edit",
    "TicketState.files_rejected",
    "QueueState.next_page",
    "QueueState.toggle_selected",
    "QueueState.select_page",
    "QueueState.apply_saved",
    "QueueState.save_current",
    "QueueState.delete_saved",
    "QueueState.previous_page",
    "QueueState.set_status_filter",
    "QueueState.set_priority_filter",
    "QueueState.set_category_filter",
    "QueueState.set_review_only",
    "AdminUsersState.apply_search",
    "AdminUsersState.set_role_filter",
    "AdminUsersState.next_page",
    "AdminUsersState.previous_page",
    "AdminUsersState.add_skill",
    "AdminUsersState.remove_skill",
    "AdminUsersState.reset_skills",
    "AdminOverviewState.set_auto_refresh",
    "LoginState.submit",
    "LoginState.on_open",
    "SignupState.submit",
    "AuthState.go_home",
    "AuthState.require_login",
    "AuthState.logout",
    "NotificationSettingsState.load",
    "NotificationSettingsState.toggle",
    "QueueState.apply_search",
    "ForgotPasswordState.on_open",
    "ForgotPasswordState.submit",
    "ResetPasswordState.on_open",
    "ResetPasswordState.submit",
    "VerifyEmailState.on_open",
    "ProfileState.load",
    "ProfileState.save_name",
    "ProfileState.change_password",
    "ProfileState.resend_verification",
}


def state_classes() -> list[type[rx.State]]:
    found = []
    for info in pkgutil.iter_modules(states_pkg.__path__):
        module = importlib.import_module(f"{states_pkg.__name__}.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, rx.State) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_event_handler_is_classified():
    handlers = set()
    for cls in state_classes():
        inherited = set().union(*(getattr(b, "event_handlers", {}).keys() for b in cls.__mro__[1:]))
        for name in cls.event_handlers:
            if name in FRAMEWORK or (name in inherited and cls.__name__ != "AuthState"):
                continue
            handlers.add(f"{cls.__name__}.{name}")
    unknown = handlers - ACTING - OWN_OR_LOCAL
    assert not unknown, f"event handlers nobody checked for access rules: {sorted(unknown)}"
    assert not (ACTING | OWN_OR_LOCAL) - handlers, "classified handlers that no longer exist"


# ----- driving handlers -----


@pytest.fixture(scope="module", autouse=True)
def _route_args():
    """Install the /tickets/[ticket_id] route argument, as compiling the app does."""
    from reflex.state import State
    from reflex_base import constants

    State.setup_dynamic_args({"ticket_id": constants.RouteArgType.SINGLE})


def make_state(cls, world: World, role: str, **params: str):
    from reflex.istate.data import PageData

    state = cls(_reflex_internal_init=True)
    state.token = "" if role == "anonymous" else world.factory.token(world.user(role))
    if params:
        state.rx_router_page = PageData(params=params)
    return state


def fire(state, handler: str, *args: Any) -> Any:
    return asyncio.run(getattr(type(state), handler).fn(state, *args))


def state_text(state) -> str:
    """What the browser would receive of this state (all its vars, computed ones included)."""
    return json.dumps(state.dict(), default=str)


def _redirects_to_login(result: Any) -> bool:
    return "/login" in str(result)


FOREIGN = ("Two charges on my card", "Charged twice", "STAFF-ONLY")
MANAGERS = {"assigned_moderator", "admin"}
CAN_SEE = {"user", "assigned_moderator", "admin"}


@pytest.fixture()
def marked_world(world: World) -> World:
    with session_scope() as s:
        t = s.get(Ticket, world.ticket_id)
        t.helpful_notes, t.assignment_reason = "STAFF-ONLY-NOTE", "STAFF-ONLY-REASON"
    return world


@pytest.mark.parametrize("role", ROLES)
def test_ticket_page_load(marked_world: World, role: str):
    from ticketing_app.states.tickets import TicketState

    state = make_state(TicketState, marked_world, role, ticket_id=str(marked_world.ticket_id))
    result = fire(state, "load")
    if role == "anonymous":
        assert _redirects_to_login(result) and state.ticket == TicketRow()
        return
    if role in CAN_SEE:
        assert state.ticket.id == marked_world.ticket_id and not state.not_found
        assert ("STAFF-ONLY-NOTE" in state_text(state)) == (role in MANAGERS)
        assert bool(state.staff_options) == (role in MANAGERS)
    else:
        assert state.not_found and state.ticket == TicketRow() and state.comments == [] and state.timeline == []
        assert state.staff_options == [] and not state.can_manage
        text = state_text(state)
        assert not [f for f in FOREIGN if f in text]


TICKET_ACTIONS = {
    "set_status": ("in_progress",),
    "override": ({"priority": "high", "category": "bug", "reason": "because"},),
    "reassign": ({"assignee_id": "{moderator}", "reason": "hand over"},),
    "reply": ({"body": "a note from {role}"},),
}


def _fresh_marked_world(factory) -> World:
    reset_database()
    world = build_world(factory)
    with session_scope() as s:
        t = s.get(Ticket, world.ticket_id)
        t.helpful_notes, t.assignment_reason = "STAFF-ONLY-NOTE", "STAFF-ONLY-REASON"
    return world


@pytest.mark.parametrize("action", TICKET_ACTIONS)
def test_ticket_page_actions_on_the_requesters_ticket(factory, action: str):
    """Each action as sent from /tickets/<id>, by every role (each meets a fresh world): only the assigned
    moderator and admins may manage."""
    from ticketing_app.states.tickets import TicketState

    for role in ROLES:
        w = _fresh_marked_world(factory)
        state = make_state(TicketState, w, role, ticket_id=str(w.ticket_id))
        state.internal_note = True  # a reply is tried as an internal note: staff only
        args = [
            json.loads(json.dumps(a).replace("{moderator}", str(w.user("moderator").id)).replace("{role}", role))
            for a in TICKET_ACTIONS[action]
        ]
        before = snapshot()
        result = fire(state, action, *args)
        after = snapshot()
        if role == "anonymous":
            assert _redirects_to_login(result) and after == before, role
            continue
        if role in MANAGERS:
            assert state.error == "" and after != before, (role, state.error)
            continue
        assert after == before, f"{action} by {role} changed data"
        assert state.error, f"{action} by {role} gave no message"
        if role not in CAN_SEE:
            assert state.error == "Ticket not found." and state.ticket == TicketRow(), role
            assert not [f for f in FOREIGN if f in state_text(state)], role


def test_replies_sent_from_the_ticket_page_are_via_web_in_rest(world: World, api):
    """Comment JSON's `via` says how a reply came: the ticket page's reply handler stores "web" (e-mail and REST
    replies, "email" and "api", are checked in tests/integration)."""
    from ticketing_app.states.tickets import TicketState

    for role, body in (("user", "Still broken from the browser."), ("assigned_moderator", "Looking at it now.")):
        state = make_state(TicketState, world, role, ticket_id=str(world.ticket_id))
        fire(state, "load")
        fire(state, "reply", {"body": body})
        assert state.error == "" and state.notice == "Reply sent.", state.error
    answer = api.get(f"/api/tickets/{world.ticket_id}", headers=world.headers("user"))
    assert answer.status_code == 200, answer.text
    comments = {c["body"]: c for c in answer.json()["comments"]}
    assert comments["Still broken from the browser."]["via"] == "web"
    assert comments["Looking at it now."]["via"] == "web"
    assert comments["Still broken from the browser."]["attachments"] == []


def _world_with_merge_target(factory) -> tuple[World, Ticket, str]:
    """A fresh world plus a second ticket of its requester, assigned to the assigned moderator: a merge target."""
    from ticketing_app.schemas import TicketCreate
    from ticketing_app.services import tickets as tickets_service

    w = _fresh_marked_world(factory)
    with session_scope() as s:
        requester = s.get(User, w.user("user").id)
        target = tickets_service.create_ticket(
            s, requester, TicketCreate(title="Charged twice, again", description="x")
        )
        s.get(Ticket, target.id).assigned_to_id = w.user("assigned_moderator").id
        return w, target, s.get(Ticket, target.id).reference


def test_merge_from_the_ticket_page_by_every_role(factory):
    """ "Merge into…" on /tickets/<id>: find the target by number, confirm. Only the assigned moderator and
    admins merge; a forged target (another person's ticket, set on the server-side var) is still refused."""
    from ticketing_app.states.tickets import TicketState

    for role in ROLES:
        w, target, number = _world_with_merge_target(factory)
        state = make_state(TicketState, w, role, ticket_id=str(w.ticket_id))
        before = snapshot()
        result = fire(state, "find_merge_target", {"into": number})
        if role == "anonymous":
            assert _redirects_to_login(result) and snapshot() == before
            continue
        if role not in MANAGERS:
            assert state.error and state.merge_target_number == "" and state._merge_target_id == 0, role
            state._merge_target_id = target.id  # as if the confirm step had been reached
            fire(state, "confirm_merge", {"note": ""})
            assert snapshot() == before and state.error, role
            assert not [f for f in FOREIGN if f in state_text(state)], role
            continue
        assert (state.merge_target_number, state.merge_target_title) == (number, "Charged twice, again")
        state._merge_target_id = w.other_ticket_id  # forged: a ticket the moderator does not see
        fire(state, "confirm_merge", {"note": ""})
        if role == "assigned_moderator":
            assert state.error == "No ticket with that number that you can see." and snapshot() == before
            assert "Only Otto may read this" not in state_text(state)
        state._merge_target_id = target.id
        fire(state, "confirm_merge", {"note": "Same issue"})
        if role == "assigned_moderator":
            assert state.error == "" and state.notice == f"Merged into {number}.", state.error
            assert state.ticket.merged_into_number == number and state.ticket.status == "closed"
        with session_scope() as s:
            assert s.get(Ticket, w.ticket_id).merged_into_id is not None


def test_merge_into_a_similar_ticket_by_every_role(factory):
    """ "Merge into this" on the similar-tickets panel starts the same confirm step as "Merge into…", with that
    ticket as the target: only for managers, only for a ticket the panel lists (the page sends its id; the
    number is read from the server's copy of the panel), and find_target's checks still apply to it."""
    from ticketing_app.states.formatting import SimilarRow
    from ticketing_app.states.tickets import TicketState

    not_understood = "This request was not understood. Please reload the page and try again."
    for role in ROLES:
        w, target, number = _world_with_merge_target(factory)
        with session_scope() as s:
            hidden_number = s.get(Ticket, w.other_ticket_id).reference
        state = make_state(TicketState, w, role, ticket_id=str(w.ticket_id))
        state.similar_rows = [SimilarRow(id=target.id, number=number, title="Charged twice, again")]
        before = snapshot()
        result = fire(state, "merge_into_similar", target.id)
        if role == "anonymous":
            assert _redirects_to_login(result) and snapshot() == before
            continue
        if role not in MANAGERS:
            assert state.error and state.merge_target_number == "" and state._merge_target_id == 0, role
            assert snapshot() == before, role
            continue
        assert state.error == "", (role, state.error)
        assert (state.merge_target_number, state.merge_target_title) == (number, "Charged twice, again")
        assert state._merge_target_id == target.id and snapshot() == before  # nothing merged before confirming
        fire(state, "merge_into_similar", w.other_ticket_id)  # not on the panel: refused, the target forgotten
        assert state.error == not_understood and state._merge_target_id == 0 and state.merge_target_number == ""
        if role == "assigned_moderator":  # a panel row the moderator may not see (as if stale): find_target refuses
            state.similar_rows = [SimilarRow(id=w.other_ticket_id, number=hidden_number)]
            fire(state, "merge_into_similar", w.other_ticket_id)
            assert state.error == "No ticket with that number that you can see." and state._merge_target_id == 0
            state.similar_rows = [SimilarRow(id=target.id, number=number, title="Charged twice, again")]
        fire(state, "merge_into_similar", target.id)
        fire(state, "confirm_merge", {"note": "Same issue"})
        assert state.error == "" and state.notice == f"Merged into {number}.", (role, state.error)
        with session_scope() as s:
            assert s.get(Ticket, w.ticket_id).merged_into_id == target.id


@pytest.mark.parametrize("role", ROLES)
def test_typing_reports_presence_only_for_staff_working_the_ticket(world: World, role: str):
    """A key press in the reply box reports "typing" on the ticket of the page's URL, which the client chooses:
    only staff working that ticket are recorded, whatever the state says, and nobody learns who else is on it."""
    from ticketing_app.models import TicketViewer
    from ticketing_app.services import presence
    from ticketing_app.states.tickets import TicketState

    with session_scope() as s:  # an admin has both tickets open: a leak would show "Ada Admin" in the state
        admin = s.get(User, world.user("admin").id)
        for ticket_id in (world.ticket_id, world.other_ticket_id):
            presence.heartbeat(s, admin, s.get(Ticket, ticket_id))
    for ticket_id in (world.ticket_id, world.other_ticket_id):
        state = make_state(TicketState, world, role, ticket_id=str(ticket_id))
        state.staff_view = True  # as if the page had said so: the services still decide
        before = snapshot()
        result = fire(state, "typing")
        assert snapshot() == before and result is None
        with session_scope() as s:
            typing = set(s.scalars(select(TicketViewer.user_id).where(TicketViewer.ticket_id == ticket_id)))
        works_it = role == "admin" or (role == "assigned_moderator" and ticket_id == world.ticket_id)
        assert typing == ({world.user("admin").id} | ({world.user(role).id} if works_it else set())), ticket_id
        assert ("Ada Admin" in state_text(state)) == (works_it and role != "admin"), ticket_id


@pytest.mark.parametrize("role", ["user", "moderator", "assigned_moderator"])
def test_ticket_page_on_another_users_ticket_id(world: World, role: str):
    """A person opens /tickets/<someone else's id> and fires every action there (other_user owns it)."""
    from ticketing_app.states.tickets import TicketState

    state = make_state(TicketState, world, role, ticket_id=str(world.other_ticket_id))
    before = snapshot()
    fire(state, "load")
    assert state.not_found
    for action in ("set_status", "override", "reassign", "reply"):
        args = {
            "set_status": ("closed",),
            "override": ({"priority": "high", "reason": "x"},),
            "reassign": ({"assignee_id": str(world.user(role).id), "reason": "mine"},),
            "reply": ({"body": "let me in"},),
        }[action]
        fire(state, action, *args)
        assert state.error == "Ticket not found.", (action, state.error)
    assert snapshot() == before
    text = state_text(state)
    assert "Only Otto may read this" not in text and "Otto's private issue" not in text


@pytest.mark.parametrize("role", ROLES)
def test_queue_quick_status_with_any_ticket_id(world: World, role: str):
    from ticketing_app.states.queue import QueueState

    state = make_state(QueueState, world, role)
    before = snapshot()
    for ticket_id in (world.ticket_id, world.other_ticket_id):
        result = fire(state, "quick_status", ticket_id, "resolved")
        if role == "anonymous":
            assert _redirects_to_login(result)
    with session_scope() as s:
        statuses = {t.id: t.status for t in s.scalars(select(Ticket))}
    expected = {
        "anonymous": {},
        "user": {},
        "other_user": {},
        "moderator": {},
        "assigned_moderator": {world.ticket_id: "resolved"},
        "admin": {world.ticket_id: "resolved", world.other_ticket_id: "resolved"},
    }[role]
    assert {k: v for k, v in statuses.items() if v != "open"} == expected
    if not expected:
        assert snapshot() == before
    if role in ("user", "other_user", "moderator"):
        assert state.error in (
            "Ticket not found.",
            "Only the assigned moderator or an admin can change this ticket.",
            "You can reopen or close your ticket once it is resolved.",
        )
        assert not [f for f in FOREIGN if f in state_text(state)]


@pytest.mark.parametrize("role", ROLES)
def test_queue_load_and_scope(world: World, role: str):
    from ticketing_app.states.queue import QueueState

    state = make_state(QueueState, world, role)
    result = fire(state, "load")
    if role == "anonymous":
        assert _redirects_to_login(result)
        return
    fire(state, "set_scope", "any")  # a moderator asking for everything still gets only their own
    ids = {r.id for r in state.rows}
    expected = {
        "user": None,
        "other_user": None,
        "moderator": set(),
        "assigned_moderator": {world.ticket_id},
        "admin": {world.ticket_id, world.other_ticket_id},
    }[role]
    if expected is None:
        assert not state.allowed and state.rows == []
        assert not [f for f in (*FOREIGN, "Only Otto") if f in state_text(state)]
    else:
        assert state.allowed and ids == expected


def test_queue_delete_saved_deletes_only_the_actors_own_filter(world: World):
    """The delete button sends one of the page's saved filter ids; a crafted id (someone else's filter), even
    slipped into the page's own list, deletes nothing."""
    from ticketing_app.models import SavedFilter
    from ticketing_app.states.formatting import StaffOption
    from ticketing_app.states.queue import QueueState

    with session_scope() as s:
        mine = SavedFilter(user_id=world.user("moderator").id, name="Mine", filters={"active": True})
        theirs = SavedFilter(user_id=world.user("assigned_moderator").id, name="Theirs", filters={"active": True})
        s.add_all([mine, theirs])
        s.flush()
        mine_id, theirs_id = mine.id, theirs.id
    state = make_state(QueueState, world, "moderator")
    fire(state, "load")
    assert [f.label for f in state.saved_filters] == ["Mine"]
    for crafted in (str(theirs_id), theirs_id, "Mine", "", None, "1 OR 1=1"):
        state.error = ""
        fire(state, "delete_saved", crafted)
        assert state.error, crafted
    state.saved_filters = [*state.saved_filters, StaffOption(id=str(theirs_id), label="Theirs")]
    state.error = ""
    fire(state, "delete_saved", str(theirs_id))
    assert state.error
    with session_scope() as s:
        assert set(s.scalars(select(SavedFilter.id))) == {mine_id, theirs_id}
    state.error = ""
    fire(state, "delete_saved", str(mine_id))
    assert state.error == "" and state.saved_filters == []
    with session_scope() as s:
        assert set(s.scalars(select(SavedFilter.id))) == {theirs_id}


# ----- admin states -----


@pytest.mark.parametrize("role", ROLES)
def test_admin_users_page_by_role(world: World, role: str):
    from ticketing_app.states.admin import AdminUsersState

    state = make_state(AdminUsersState, world, role)
    result = fire(state, "load")
    if role == "anonymous":
        assert _redirects_to_login(result)
    elif role == "admin":
        assert not state.forbidden and len(state.rows) == 5
    else:
        assert state.forbidden and state.rows == [] and state.vocabulary == []
        text = state_text(state)
        assert not [p.email for p in world.people.values() if p.email in text and p.id != world.user(role).id]


@pytest.mark.parametrize("attempt", ["change_role", "set_active", "save_skills"])
def test_admin_user_edits_with_rows_in_state_are_refused(factory, attempt: str):
    """Rows in the state (left from when this person was an admin, or however they got there) give no power:
    every edit goes through accounts.update_user, which checks the actor's current role."""
    from ticketing_app.services import accounts
    from ticketing_app.states.admin import AdminUsersState, user_row

    for role in ("user", "moderator", "assigned_moderator", "demoted_admin"):
        reset_database()
        world = build_world(factory)
        if role == "demoted_admin":
            actor = factory.user("admin", name="Soon Demoted")
            state = AdminUsersState(_reflex_internal_init=True)
            state.token = factory.token(actor)
            fire(state, "load")
            assert not state.forbidden and state.rows
            with session_scope() as s:
                accounts.update_user(s, s.get(User, world.user("admin").id), UserUpdate(email=actor.email, role="user"))
        else:
            actor = world.user(role)
            state = make_state(AdminUsersState, world, role)
            with session_scope() as s:
                state.rows = [user_row(accounts.user_out(s.get(User, actor.id)), actor.id)]
        state.rows = [
            dataclasses.replace(r, draft=["billing", "security"], dirty=True) if r.id == actor.id else r
            for r in state.rows
        ]
        other = world.user("other_user").id
        args = {
            "change_role": (other if role == "demoted_admin" else actor.id, "admin"),  # a stale row: "admin"
            "set_active": (other, False),
            "save_skills": (actor.id,),
        }[attempt]
        if not any(r.id == args[0] for r in state.rows):
            with session_scope() as s:
                state.rows = [*state.rows, user_row(accounts.user_out(s.get(User, args[0])), actor.id)]
        before = snapshot()
        result = fire(state, attempt, *args)
        assert snapshot() == before, f"{attempt} by {role} changed data"
        if role == "demoted_admin":  # the demotion ended the session (it used to go on as a user's)
            assert _redirects_to_login(result) and state.token == "", role
        else:
            assert state.forbidden and state.rows == [], role


@pytest.mark.parametrize("role", ROLES)
def test_admin_send_reset_by_role(world: World, role: str):
    """Only an admin's click mails a reset link; a row in anyone else's state gives no power."""
    from sqlalchemy import func

    from ticketing_app.models import EmailMessage
    from ticketing_app.services import accounts
    from ticketing_app.states.admin import AdminUsersState, user_row

    target = world.user("other_user")
    state = make_state(AdminUsersState, world, role)
    with session_scope() as s:
        state.rows = [user_row(accounts.user_out(s.get(User, target.id)), 0)]
    result = fire(state, "send_reset", target.id)
    with session_scope() as s:
        sent = s.scalar(
            select(func.count()).where(EmailMessage.kind == "password_reset", EmailMessage.to_address == target.email)
        )
    if role == "admin":
        assert sent == 1 and "on its way" in state.rows[0].notice
    else:
        assert sent == 0
        assert _redirects_to_login(result) if role == "anonymous" else state.forbidden and state.rows == []


@pytest.fixture()
def dead_job(world: World) -> int:
    with session_scope() as s:
        job_id = queue.enqueue(s, "send_email", {"email_id": 424242})
        s.execute(update(Job).where(Job.id == job_id).values(status="dead", last_error="boom"))
    return int(job_id)


@pytest.mark.parametrize("role", ROLES)
def test_admin_overview_and_job_retry_by_role(world: World, dead_job: int, role: str):
    from ticketing_app.states.admin import AdminOverviewState

    state = make_state(AdminOverviewState, world, role)
    result = fire(state, "load")
    fire(state, "retry", dead_job)
    with session_scope() as s:
        status = s.get(Job, dead_job).status
    if role == "anonymous":
        assert _redirects_to_login(result) and status == "dead"
    elif role == "admin":
        assert status != "dead" and not state.forbidden  # queued again (a job loop may already have run it)
    else:
        assert status == "dead" and state.forbidden
        assert state.total == 0 and state.dead_jobs == [] and state.emails == []
        assert "boom" not in state_text(state) and "424242" not in state_text(state)


def test_actor_call_is_not_an_event_a_client_can_send(world: World):
    """AuthState._actor_call runs a service as the logged-in user: private, so no client event can name it."""
    from ticketing_app.states.base import AuthState

    assert "_actor_call" not in AuthState.event_handlers
    assert all("actor_call" not in name for cls in AuthState.get_substates() for name in cls.event_handlers)


# ----- crafted arguments: any JSON for any parameter -----

# What a crafted websocket message can put where the page sends an id, a flag, a free text or a choice.
WRONG_IDS = [None, {"a": 1}, [], [1], 10**30, 2**31, -1, 0, 1.5, True, "5"]
WRONG_FLAGS = [None, {"a": 1}, [], [True], 1, 0, "true", 10**30]
WRONG_TEXTS = [None, {"a": 1}, [], ["a"], 10**30, 1.5, True, "x" * 100_001]
WRONG_CHOICES = [None, {"a": 1}, [], ["me", "any"], 10**30, 1.5, True, "", "x" * 300, "<script>", "ME"]
FLAGS = {
    "QueueState.toggle_selected.checked",
    "QueueState.select_page.checked",
    "active",
    "AdminOverviewState.set_auto_refresh.value",
    "TicketState.set_internal_note.value",
    "NotificationSettingsState.toggle.enabled",
    "QueueState.set_review_only.value",
}
TEXTS = {"skill", "NewTicketState.count_title.value", "NewTicketState.count_description.value"}


# What a crafted upload can put where the upload endpoint puts the files, and where the file picker sends the
# files it refused.
WRONG_UPLOADS = [None, {"a": 1}, "x", 7, [1], ["file.txt"], [{"name": "a.txt", "size": 1}]]
WRONG_REJECTED = [*WRONG_CHOICES, [{"name": "x"}], [{"name": 7, "codes": []}], [{"name": "a", "codes": [1]}], [1]]


def wrong_values(cls: type, handler: str, param: str) -> list[Any]:
    qualified = f"{cls.__name__}.{handler}.{param}"
    if param == "form":
        return WRONG_FORMS
    if param == "uploads":
        return WRONG_UPLOADS
    if param == "rejected":
        return WRONG_REJECTED
    if param.endswith("_id"):
        return WRONG_IDS
    if param in FLAGS or qualified in FLAGS:
        return WRONG_FLAGS
    if param in TEXTS or qualified in TEXTS:
        return WRONG_TEXTS
    return WRONG_CHOICES


# Every field name a form of the app has, each given a value no form sends.
FORM_FIELDS = (
    "q",
    "email",
    "password",
    "name",
    "title",
    "description",
    "body",
    "priority",
    "category",
    "reason",
    "assignee_id",
    "user_id",
    "skill",
    "confirm",
    "current_password",
    "new_password",
    "confirm_password",
    "into",
    "note",
)
WRONG_FORMS = [
    None,
    "q=x",
    7,
    [],
    [["q", "x"]],
    *({name: bad for name in FORM_FIELDS} for bad in ([1], {"x": 1}, 10**30)),
]
# Values the page does send, for the other parameters while one is wrong.
VALID = {
    "user_id": "{other_user}",
    "role": "moderator",
    "active": False,
    "checked": True,
    "skill": "billing",
    "ticket_id": "{ticket}",
    "status": "resolved",
    "job_id": 1,
    "kind": "ticket_reply",
    "enabled": False,
    "uploads": [],
    "form": {"title": "A valid title", "description": "Valid text.", "body": "A valid reply."},
}


def handlers_with_parameters() -> list[tuple[type, str, list[str]]]:
    found = []
    for cls in state_classes():
        for name, handler in cls.event_handlers.items():
            if name in FRAMEWORK or (name not in vars(cls) and cls.__name__ != "AuthState"):
                continue
            params = list(inspect.signature(handler.fn).parameters)[1:]
            if params:
                found.append((cls, name, params))
    return found


def test_crafted_argument_cases_cover_the_handlers():
    names = {f"{cls.__name__}.{name}" for cls, name, _ in handlers_with_parameters()}
    assert {
        "QueueState.quick_status",
        "QueueState.set_scope",
        "TicketState.reassign",
        "LoginState.submit",
        "AdminUsersState.change_role",
        "AdminOverviewState.retry",
        "NewTicketState.count_title",
    } <= names
    assert len(names) >= 25, sorted(names)


def _valid(param: str, world: World) -> Any:
    value = VALID[param]
    if value == "{other_user}":
        return world.user("other_user").id
    if value == "{ticket}":
        return world.ticket_id
    return value


@pytest.mark.parametrize(
    ("cls", "handler", "params"),
    handlers_with_parameters(),
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v) if isinstance(v, str) else "",
)
def test_wrong_argument_types_give_the_pages_message_not_a_server_error(world: World, cls, handler, params, caplog):
    """Each parameter in turn gets each wrong value (the others valid ones), as an admin on a ticket page:
    the handler must not raise, must log no error, must change nothing, and the page must say so."""
    before = snapshot()
    for position, param in enumerate(params):
        for wrong in wrong_values(cls, handler, param):
            args = [_valid(p, world) if i != position else wrong for i, p in enumerate(params)]
            state = make_state(cls, world, "admin", ticket_id=str(world.ticket_id))
            caplog.clear()
            try:
                result = fire(state, handler, *args)
            except Exception as exc:  # pragma: no cover - the failure being tested for
                pytest.fail(f"{cls.__name__}.{handler}({args!r:.200}) raised {type(exc).__name__}: {exc}")
            shown = f"{getattr(state, 'error', '')} {result}"
            assert "not understood" in shown or "Choose who should work" in shown, (handler, param, wrong, shown)
            assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], (handler, wrong)
    assert snapshot() == before, f"{cls.__name__}.{handler} changed data"


# ----- canned replies -----


@pytest.mark.parametrize("role", ROLES)
def test_canned_replies_page_by_role(world: World, role: str):
    """Staff see and use the shared replies; a user gets the not-allowed view and nothing of them; nobody but
    the author or an admin deletes or changes one, whatever the rows in the state say."""
    from ticketing_app.schemas import CannedReplyIn
    from ticketing_app.services import canned_replies
    from ticketing_app.states.canned import CannedRepliesState, CannedRow

    with session_scope() as s:
        admin = s.get(User, world.user("admin").id)
        reply_id = canned_replies.create(s, admin, CannedReplyIn(title="Admin's reply", body="SECRET-CANNED")).id
    state = make_state(CannedRepliesState, world, role)
    result = fire(state, "load")
    if role == "anonymous":
        assert _redirects_to_login(result)
        return
    if role in ("user", "other_user"):
        assert not state.allowed and state.rows == [] and "SECRET-CANNED" not in state_text(state)
    else:
        assert state.allowed and [r.id for r in state.rows] == [reply_id]
        assert state.rows[0].can_edit == (role == "admin")
    state.rows = [CannedRow(id=reply_id, title="forged", body="x", can_edit=True)]  # a forged row in the state
    fire(state, "edit", reply_id)
    state.editing_id = reply_id
    fire(state, "save", {"title": "Taken over", "body": "mine", "status": "none"})
    fire(state, "delete", reply_id)
    with session_scope() as s:
        kept = s.get(canned_replies.CannedReply, reply_id)
        if role == "admin":
            assert kept is None
        else:
            assert kept is not None and kept.title == "Admin's reply" and kept.body == "SECRET-CANNED"
            assert state.error and "SECRET-CANNED" not in state_text(state)
