"""Every API endpoint x every role: the status each role gets, and that a refused call changes nothing.

The endpoints are enumerated from the FastAPI app itself, so a new endpoint without rows here fails
`test_every_endpoint_is_in_the_matrix`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select

from tests.factories import PASSWORD
from tests.security.conftest import ROLES, World, build_world, reset_database
from ticketing_app.api.app import create_api
from ticketing_app.db import session_scope
from ticketing_app.models import Attachment, Comment, Ticket, TicketEvent, User
from ticketing_app.schemas import TicketCreate
from ticketing_app.services import attachments, tickets

_emails = itertools.count(1)


def app_endpoints() -> set[tuple[str, str]]:
    """(METHOD, path) of everything the API app serves; a static mount appears as ("MOUNT", path)."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(create_api().routes):
        methods = context.methods
        if methods is None:
            found.add(("MOUNT", str(context.path)))
            continue
        found.update((m, str(context.path)) for m in methods)
    return found


def by_role(
    anonymous: int, user: int, other_user: int, moderator: int, assigned_moderator: int, admin: int
) -> dict[str, int]:
    return dict(zip(ROLES, (anonymous, user, other_user, moderator, assigned_moderator, admin), strict=True))


EVERYONE_200 = by_role(200, 200, 200, 200, 200, 200)
STAFF_ONLY_ADMIN = by_role(401, 403, 403, 403, 403, 200)  # admin-only endpoints
TICKET_READ = by_role(401, 200, 404, 404, 200, 200)  # the requester's ticket, assigned to assigned_moderator
TICKET_MANAGE = by_role(401, 403, 404, 404, 200, 200)


@dataclass
class Case:
    endpoint: tuple[str, str]
    name: str
    request: Callable[[World, str], tuple[str, Any]]  # (url, json body or None)
    expected: dict[str, int]
    check: Callable[[World, str, Any], None] | None = None
    files: dict[str, Any] | None = None  # a multipart upload instead of a JSON body


def _own_email(world: World, role: str) -> str:
    return world.user("user" if role == "anonymous" else role).email


def _ids(response) -> set[int]:
    return {t["id"] for t in response.json()["items"]}


def _check_me(world: World, role: str, r) -> None:
    assert r.json()["id"] == world.user(role).id and "password" not in r.text


def _check_list(world: World, role: str, r) -> None:
    t, o = world.ticket_id, world.other_ticket_id
    expected = {"user": {t}, "other_user": {o}, "moderator": set(), "assigned_moderator": {t}, "admin": {t, o}}[role]
    assert _ids(r) == expected and r.json()["total"] == len(expected)


def _check_search_words(world: World, role: str, r) -> None:
    """ "charged" is only in the requester's ticket; Otto searches his own words."""
    t, o = world.ticket_id, world.other_ticket_id
    expected = {"user": {t}, "other_user": {o}, "moderator": set(), "assigned_moderator": {t}, "admin": {t}}[role]
    assert _ids(r) == expected, (role, _ids(r))
    assert all(item["search"]["title"] for item in r.json()["items"])


def _check_created(world: World, role: str, r) -> None:
    body = r.json()
    assert body["created_by"]["id"] == world.user(role).id and body["priority"] is None
    assert body["assigned_to"] is None and body["status"] == "open"


def _check_signed_up_as_user(r) -> None:
    assert r.json()["user"]["role"] == "user" and r.json()["user"]["skills"] == [], "sign-up made a non-user"


def _check_requester_view(world: World, role: str, r) -> None:
    # staff-only fields never reach a requester (they are set on this ticket by the test below)
    if role == "user":
        assert r.json()["helpful_notes"] is None and r.json()["assignment_reason"] is None


def _canned(world: World) -> int:
    """A canned reply written by the admin (a new one per call: the world is rebuilt after changes)."""
    from ticketing_app.schemas import CannedReplyIn
    from ticketing_app.services import canned_replies

    with session_scope() as s:
        admin = s.get(User, world.user("admin").id)
        data = CannedReplyIn(title=f"Canned {next(_emails)}", body="Hi {{requester.name}}")
        return canned_replies.create(s, admin, data).id


def _unsubscribe_link(world: World, role: str, kind: str = "ticket_reply") -> str:
    from ticketing_app.mail import tokens

    return f"/api/unsubscribe?token={tokens.unsubscribe_token(_own_user(world, role).id, kind)}"


def _own_user(world: World, role: str) -> User:
    return world.user("user" if role == "anonymous" else role)


FORGED_UNSUBSCRIBE = "/api/unsubscribe?token=aaaaaaaaaaaag5djmnvwk5c7ojsxa3dzd4dzhl3qialrsqnp"
T = "/api/tickets/{ticket_id}"
C = "/api/canned-replies"
STAFF_ONLY = by_role(401, 403, 403, 200, 200, 200)


def _file_on(world: World, ticket_id: int, *, internal_note: bool = False) -> int:
    """A file on `ticket_id` (by its requester), or on an internal note of the assigned moderator."""
    with session_scope() as s:
        ticket = s.get(Ticket, ticket_id)
        uploader = s.get(User, world.user("assigned_moderator" if internal_note else "user").id)
        if ticket_id == world.other_ticket_id:
            uploader = s.get(User, world.user("other_user").id)
        comment = None
        if internal_note:
            comment = Comment(ticket_id=ticket_id, author_id=uploader.id, body="STAFF-ONLY note", internal=True)
            s.add(comment)
            s.flush()
        return attachments.store(
            s, uploader, ticket, filename="f.txt", data=b"Only Otto may read this", comment=comment
        ).id


A = T + "/attachments"
FILE = {"file": ("notes.txt", b"a file", "text/plain")}
CASES = [
    Case(("GET", "/api/health"), "health", lambda w, r: ("/api/health", None), EVERYONE_200),
    Case(("GET", "/api/openapi.json"), "openapi", lambda w, r: ("/api/openapi.json", None), EVERYONE_200),
    Case(("HEAD", "/api/openapi.json"), "openapi head", lambda w, r: ("/api/openapi.json", None), EVERYONE_200),
    Case(("GET", "/api/docs"), "docs", lambda w, r: ("/api/docs", None), EVERYONE_200),
    Case(
        ("GET", "/docs/oauth2-redirect"),
        "swagger oauth2 page",
        lambda w, r: ("/docs/oauth2-redirect", None),
        EVERYONE_200,
    ),
    Case(
        ("MOUNT", "/api/docs-static"),
        "docs assets",
        lambda w, r: ("/api/docs-static/swagger-ui.css", None),
        EVERYONE_200,
    ),
    Case(
        ("MOUNT", "/api/docs-static"),
        "docs assets path traversal",
        lambda w, r: ("/api/docs-static/..%2f..%2f..%2fconfig.py", None),
        by_role(404, 404, 404, 404, 404, 404),
    ),
    Case(
        ("POST", "/api/auth/signup"),
        "sign up",
        lambda w, r: (
            "/api/auth/signup",
            {"name": "New", "email": f"new{next(_emails)}@example.com", "password": PASSWORD},
        ),
        by_role(201, 201, 201, 201, 201, 201),
        lambda w, r, resp: _check_signed_up_as_user(resp),
    ),
    Case(
        ("POST", "/api/auth/signup"),
        "sign up as admin",
        lambda w, r: (
            "/api/auth/signup",
            {"name": "Evil", "email": f"evil{next(_emails)}@example.com", "password": PASSWORD, "role": "admin"},
        ),
        by_role(422, 422, 422, 422, 422, 422),
    ),
    Case(
        ("POST", "/api/auth/signup"),
        "sign up with skills and active flag",
        lambda w, r: (
            "/api/auth/signup",
            {
                "name": "Evil",
                "email": f"evil{next(_emails)}@example.com",
                "password": PASSWORD,
                "skills": ["billing"],
                "is_active": True,
            },
        ),
        by_role(422, 422, 422, 422, 422, 422),
    ),
    Case(
        ("POST", "/api/auth/login"),
        "log in",
        lambda w, r: ("/api/auth/login", {"email": _own_email(w, r), "password": PASSWORD}),
        EVERYONE_200,
    ),
    Case(
        ("POST", "/api/auth/logout"),
        "log out",
        lambda w, r: ("/api/auth/logout", None),
        by_role(401, 204, 204, 204, 204, 204),
    ),
    Case(
        ("POST", "/api/auth/change-password"),
        "change my password",
        lambda w, r: (
            "/api/auth/change-password",
            {"current_password": PASSWORD, "new_password": "a brand new password"},
        ),
        by_role(401, 200, 200, 200, 200, 200),
    ),
    Case(
        ("POST", "/api/auth/change-password"),
        "change my password without knowing it",
        lambda w, r: (
            "/api/auth/change-password",
            {"current_password": "a guess", "new_password": "a brand new password"},
        ),
        by_role(401, 422, 422, 422, 422, 422),
    ),
    Case(
        ("GET", "/api/auth/me"),
        "me",
        lambda w, r: ("/api/auth/me", None),
        by_role(401, 200, 200, 200, 200, 200),
        _check_me,
    ),
    Case(
        ("GET", "/api/me/notifications"),
        "my notification settings",
        lambda w, r: ("/api/me/notifications", None),
        by_role(401, 200, 200, 200, 200, 200),
    ),
    Case(
        ("PUT", "/api/me/notifications"),
        "turn a notification off",
        lambda w, r: ("/api/me/notifications", {"ticket_reply": False}),
        by_role(401, 200, 200, 200, 200, 200),
    ),
    Case(
        ("PUT", "/api/me/notifications"),
        "turn the admin digest off",
        lambda w, r: ("/api/me/notifications", {"admin_digest": False}),
        by_role(401, 422, 422, 422, 422, 200),
    ),
    # The link's signature is the proof: whoever holds it (logged in or not, anyone) may use it.
    Case(
        ("GET", "/api/unsubscribe"),
        "unsubscribe confirm page",
        lambda w, r: (_unsubscribe_link(w, r), None),
        EVERYONE_200,
    ),
    Case(
        ("GET", "/api/unsubscribe"),
        "unsubscribe confirm page, forged link",
        lambda w, r: (FORGED_UNSUBSCRIBE, None),
        by_role(400, 400, 400, 400, 400, 400),
    ),
    Case(
        ("POST", "/api/unsubscribe"),
        "one-click unsubscribe",
        lambda w, r: (_unsubscribe_link(w, r), None),
        EVERYONE_200,
    ),
    Case(
        ("POST", "/api/unsubscribe"),
        "one-click unsubscribe, forged link",
        lambda w, r: (FORGED_UNSUBSCRIBE, None),
        by_role(400, 400, 400, 400, 400, 400),
    ),
    Case(
        ("POST", "/api/auth/password-reset"),
        "ask for a password reset",
        lambda w, r: ("/api/auth/password-reset", {"email": _own_email(w, r)}),
        by_role(202, 202, 202, 202, 202, 202),
    ),
    Case(
        ("POST", "/api/auth/password-reset/confirm"),
        "reset a password with a made-up link",
        lambda w, r: ("/api/auth/password-reset/confirm", {"token": "A" * 43, "password": "a brand new password"}),
        by_role(422, 422, 422, 422, 422, 422),
    ),
    Case(
        ("POST", "/api/auth/verify-email"),
        "verify with a made-up link",
        lambda w, r: ("/api/auth/verify-email", {"token": "A" * 43}),
        by_role(422, 422, 422, 422, 422, 422),
    ),
    Case(
        ("POST", "/api/auth/verify-email/resend"),
        "mail me a verify link",
        lambda w, r: ("/api/auth/verify-email/resend", None),
        by_role(401, 202, 202, 202, 202, 202),
    ),
    Case(
        ("GET", "/api/me"),
        "my profile",
        lambda w, r: ("/api/me", None),
        by_role(401, 200, 200, 200, 200, 200),
        _check_me,
    ),
    Case(
        ("PATCH", "/api/me"),
        "rename myself",
        lambda w, r: ("/api/me", {"name": "Renamed"}),
        by_role(401, 200, 200, 200, 200, 200),
    ),
    Case(
        ("PATCH", "/api/me"),
        "make myself an admin through my profile",
        lambda w, r: ("/api/me", {"name": "Renamed", "role": "admin"}),
        by_role(401, 422, 422, 422, 422, 422),
    ),
    Case(
        ("POST", "/api/users/{user_id}/password-reset"),
        "send someone a password reset",
        lambda w, r: (f"/api/users/{w.user('other_user').id}/password-reset", None),
        by_role(401, 403, 403, 403, 403, 202),
    ),
    Case(("GET", "/api/auth/users"), "list users", lambda w, r: ("/api/auth/users", None), STAFF_ONLY_ADMIN),
    Case(
        ("POST", "/api/auth/update-user"),
        "promote myself to admin",
        lambda w, r: ("/api/auth/update-user", {"email": _own_email(w, r), "role": "admin"}),
        STAFF_ONLY_ADMIN,
    ),
    Case(
        ("POST", "/api/auth/update-user"),
        "give myself skills",
        lambda w, r: ("/api/auth/update-user", {"email": _own_email(w, r), "skills": ["billing", "everything"]}),
        STAFF_ONLY_ADMIN,
    ),
    Case(
        ("POST", "/api/auth/update-user"),
        "deactivate someone else",
        lambda w, r: ("/api/auth/update-user", {"email": w.user("other_user").email, "active": False}),
        STAFF_ONLY_ADMIN,
    ),
    Case(
        ("GET", "/api/tickets"),
        "list tickets",
        lambda w, r: ("/api/tickets", None),
        by_role(401, 200, 200, 200, 200, 200),
        _check_list,
    ),
    Case(
        ("GET", "/api/tickets"),
        "list tickets, everything filter",
        lambda w, r: ("/api/tickets?assigned=any&limit=100", None),
        by_role(401, 200, 200, 200, 200, 200),
        _check_list,
    ),
    Case(
        ("GET", "/api/tickets"),
        "search for each ticket's own words",
        lambda w, r: (f"/api/tickets?q={'otto private' if r in ('other_user',) else 'charged'}", None),
        by_role(401, 200, 200, 200, 200, 200),
        lambda w, r, resp: _check_search_words(w, r, resp),
    ),
    Case(
        ("POST", "/api/tickets"),
        "create a ticket",
        lambda w, r: ("/api/tickets", {"title": "My new ticket", "description": "details"}),
        by_role(401, 201, 201, 201, 201, 201),
        _check_created,
    ),
    Case(
        ("POST", "/api/tickets"),
        "create a ticket for someone else, pre-triaged",
        lambda w, r: (
            "/api/tickets",
            {"title": "My new ticket", "description": "d", "created_by_id": 1, "priority": "high", "assigned_to_id": 1},
        ),
        by_role(401, 422, 422, 422, 422, 422),
    ),
    Case(
        ("GET", T),
        "read the requester's ticket",
        lambda w, r: (f"/api/tickets/{w.ticket_id}", None),
        TICKET_READ,
        _check_requester_view,
    ),
    Case(
        ("GET", T),
        "read another user's ticket",
        lambda w, r: (f"/api/tickets/{w.other_ticket_id}", None),
        by_role(401, 404, 200, 404, 404, 200),
    ),
    Case(
        ("GET", T),
        "read a ticket that does not exist",
        lambda w, r: ("/api/tickets/999999", None),
        by_role(401, 404, 404, 404, 404, 404),
    ),
    Case(
        ("PATCH", T),
        "start work",
        lambda w, r: (f"/api/tickets/{w.ticket_id}", {"status": "in_progress"}),
        TICKET_MANAGE,
    ),
    Case(("PATCH", T), "close", lambda w, r: (f"/api/tickets/{w.ticket_id}", {"status": "closed"}), TICKET_MANAGE),
    Case(
        ("PATCH", T),
        "override priority",
        lambda w, r: (f"/api/tickets/{w.ticket_id}", {"priority": "high", "reason": "VIP"}),
        TICKET_MANAGE,
    ),
    Case(
        ("PATCH", T),
        "reassign to the bystander moderator",
        lambda w, r: (f"/api/tickets/{w.ticket_id}", {"assignee_id": w.user("moderator").id, "reason": "x"}),
        TICKET_MANAGE,
    ),
    Case(
        ("PATCH", T),
        "change another user's ticket",
        lambda w, r: (f"/api/tickets/{w.other_ticket_id}", {"status": "closed"}),
        by_role(401, 404, 403, 404, 404, 200),
    ),
    Case(
        ("POST", T + "/comments"),
        "public reply",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/comments", {"body": "hello"}),
        by_role(401, 201, 404, 404, 201, 201),
    ),
    Case(
        ("POST", T + "/comments"),
        "internal note",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/comments", {"body": "note", "internal": True}),
        by_role(401, 403, 404, 404, 201, 201),
    ),
    Case(
        ("POST", T + "/comments"),
        "comment on another user's ticket",
        lambda w, r: (f"/api/tickets/{w.other_ticket_id}/comments", {"body": "hi"}),
        by_role(401, 404, 201, 404, 404, 201),
    ),
    Case(
        ("POST", A),
        "attach a file",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/attachments", None),
        by_role(401, 201, 404, 404, 201, 201),
        files=FILE,
    ),
    Case(
        ("POST", A),
        "attach a file to another user's ticket",
        lambda w, r: (f"/api/tickets/{w.other_ticket_id}/attachments", None),
        by_role(401, 404, 201, 404, 404, 201),
        files=FILE,
    ),
    Case(
        ("GET", A + "/{attachment_id}"),
        "download a file of the requester's ticket",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/attachments/{_file_on(w, w.ticket_id)}", None),
        TICKET_READ,
    ),
    Case(
        ("GET", A + "/{attachment_id}"),
        "download a file of an internal note",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/attachments/{_file_on(w, w.ticket_id, internal_note=True)}", None),
        by_role(401, 404, 404, 404, 200, 200),
    ),
    Case(
        ("GET", A + "/{attachment_id}"),
        "download another ticket's file through a ticket I see",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/attachments/{_file_on(w, w.other_ticket_id)}", None),
        by_role(401, 404, 404, 404, 404, 404),
    ),
]


def _resolved(world: World) -> int:
    with session_scope() as s:
        s.get(Ticket, world.ticket_id).status = "resolved"
    return world.ticket_id


def _rating_page(world: World) -> str:
    from ticketing_app.services import notifications

    good = notifications.rating_urls(world.ticket_id, world.user("user").id)[0]
    return good[good.index("/api/rate") :]


def _admins_filter(world: World) -> int:
    from ticketing_app.schemas import SavedFilterIn, TicketFilters
    from ticketing_app.services import bulk

    with session_scope() as s:
        admin = s.get(User, world.user("admin").id)
        data = SavedFilterIn(name=f"Filter {next(_emails)}", filters=TicketFilters(priority="high"))
        return bulk.save_filter(s, admin, data).id


def _second_ticket(world: World) -> int:
    """Another ticket of the requester, assigned to the same moderator: a merge target they both see."""
    with session_scope() as s:
        requester = s.get(User, world.user("user").id)
        created = tickets.create_ticket(s, requester, TicketCreate(title="Charged twice again", description="Dup."))
        s.get(Ticket, created.id).assigned_to_id = world.user("assigned_moderator").id
        return created.id


def _second_number(world: World) -> str:
    with session_scope() as s:
        return s.get(Ticket, _second_ticket(world)).reference


M = T + "/merge"
CASES += [
    Case(
        ("POST", M),
        "merge the requester's ticket into their other one",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/merge", {"into_ticket_id": _second_ticket(w)}),
        by_role(401, 403, 403, 404, 200, 200),
    ),
    Case(
        ("POST", M),
        "merge by ticket number",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/merge", {"into_ticket_number": _second_number(w)}),
        by_role(401, 403, 403, 404, 200, 200),
    ),
    Case(
        ("POST", M),
        "merge into another user's ticket",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/merge", {"into_ticket_id": w.other_ticket_id}),
        by_role(401, 403, 403, 404, 404, 200),
    ),
    Case(
        ("POST", M),
        "merge another user's ticket",
        lambda w, r: (f"/api/tickets/{w.other_ticket_id}/merge", {"into_ticket_id": w.ticket_id}),
        by_role(401, 403, 403, 404, 404, 200),
    ),
    Case(
        ("POST", M),
        "merge a ticket into itself",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/merge", {"into_ticket_id": w.ticket_id}),
        by_role(401, 403, 403, 400, 400, 400),  # refused on the ids alone, so the bystander learns nothing
    ),
    Case(
        ("POST", M),
        "merge with no target",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/merge", {"note": "x"}),
        by_role(401, 422, 422, 422, 422, 422),
    ),
]

CASES += [
    Case(
        ("POST", "/api/tickets/bulk"),
        "close the requester's ticket in bulk",
        lambda w, r: ("/api/tickets/bulk", {"ticket_ids": [w.ticket_id, w.other_ticket_id], "status": "closed"}),
        by_role(401, 403, 403, 200, 200, 200),
    ),
    Case(
        ("GET", "/api/me/filters"),
        "my saved filters",
        lambda w, r: ("/api/me/filters", None),
        by_role(401, 200, 200, 200, 200, 200),
    ),
    Case(
        ("POST", "/api/me/filters"),
        "save a filter",
        lambda w, r: ("/api/me/filters", {"name": "Mine", "filters": {"status": "open"}}),
        by_role(401, 201, 201, 201, 201, 201),
    ),
    Case(
        ("DELETE", "/api/me/filters/{filter_id}"),
        "delete the admin's saved filter",
        lambda w, r: (f"/api/me/filters/{_admins_filter(w)}", None),
        by_role(401, 404, 404, 404, 404, 204),
    ),
]

CASES += [
    Case(
        ("GET", "/api/rate"), "open the rating page from the mail", lambda w, r: (_rating_page(w), None), EVERYONE_200
    ),
    Case(
        ("GET", "/api/rate"),
        "open the rating page with a forged token",
        lambda w, r: ("/api/rate?token=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&rating=good", None),
        by_role(400, 400, 400, 400, 400, 400),
    ),
    Case(
        ("POST", "/api/rate"),
        "rate without the mail's token",
        lambda w, r: ("/api/rate", {"rating": "good"}),
        by_role(400, 400, 400, 400, 400, 400),
    ),
    Case(
        ("PUT", T + "/satisfaction"),
        "rate the requester's open ticket",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/satisfaction", {"rating": "good"}),
        by_role(401, 422, 404, 404, 403, 403),
    ),
    Case(
        ("PUT", T + "/satisfaction"),
        "rate the requester's resolved ticket",
        lambda w, r: (f"/api/tickets/{_resolved(w)}/satisfaction", {"rating": "bad", "comment": "slow"}),
        by_role(401, 200, 404, 404, 403, 403),
    ),
]

CASES += [
    Case(("GET", C), "list canned replies", lambda w, r: (C, None), STAFF_ONLY),
    Case(
        ("POST", C),
        "write a canned reply",
        lambda w, r: (C, {"title": f"Mine {next(_emails)}", "body": "Hello {{requester.first_name}}"}),
        by_role(401, 403, 403, 201, 201, 201),
    ),
    Case(("GET", C + "/{reply_id}"), "read a canned reply", lambda w, r: (f"{C}/{_canned(w)}", None), STAFF_ONLY),
    Case(
        ("GET", C + "/{reply_id}/render"),
        "fill a canned reply for the requester's ticket",
        lambda w, r: (f"{C}/{_canned(w)}/render?ticket_id={w.ticket_id}", None),
        by_role(401, 403, 403, 404, 200, 200),
    ),
    Case(
        ("PATCH", C + "/{reply_id}"),
        "change the admin's canned reply",
        lambda w, r: (f"{C}/{_canned(w)}", {"body": "Changed"}),
        by_role(401, 403, 403, 403, 403, 200),
    ),
    Case(
        ("DELETE", C + "/{reply_id}"),
        "delete the admin's canned reply",
        lambda w, r: (f"{C}/{_canned(w)}", None),
        by_role(401, 403, 403, 403, 403, 204),
    ),
]

CASES += [
    Case(
        ("GET", T + "/similar"),
        "similar earlier tickets of the requester's ticket",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/similar", None),
        TICKET_MANAGE,  # the requester herself is refused: staff only
        check=lambda w, role, r: _check_similar(w, role, r),
    ),
    Case(
        ("GET", T + "/reply-draft"),
        "suggested reply for the requester's ticket",
        lambda w, r: (f"/api/tickets/{w.ticket_id}/reply-draft", None),
        TICKET_MANAGE,
    ),
]


def _check_similar(world: World, role: str, r) -> None:
    """Only tickets the caller may see: the assigned moderator never gets the other requester's ticket."""
    ids = {item["id"] for item in r.json()["items"]}
    assert world.ticket_id not in ids
    if role != "admin":
        assert world.other_ticket_id not in ids


def test_every_endpoint_is_in_the_matrix():
    served = app_endpoints()
    covered = {case.endpoint for case in CASES}
    assert served - covered == set(), f"endpoints without access rules in this matrix: {sorted(served - covered)}"
    assert covered - served == set(), f"matrix rows for endpoints that no longer exist: {sorted(covered - served)}"


def snapshot() -> dict[str, Any]:
    """Everything a refused call must leave untouched."""
    with session_scope() as s:
        return {
            "tickets": [
                (t.id, t.title, t.status, t.priority, t.category, t.assigned_to_id, t.created_by_id)
                for t in s.scalars(select(Ticket).order_by(Ticket.id))
            ],
            "users": [
                (u.id, u.email, u.role, u.is_active, list(u.skills or []), list(u.muted_email_kinds or []))
                for u in s.scalars(select(User).order_by(User.id))
            ],
            "comments": s.scalar(select(func.count()).select_from(Comment)),
            "events": s.scalar(select(func.count()).select_from(TicketEvent)),
            "attachments": s.scalar(select(func.count()).select_from(Attachment)),
        }


def _mark_staff_fields(world: World) -> None:
    with session_scope() as s:  # staff-only fields exist on the ticket, so leaking them would show
        t = s.get(Ticket, world.ticket_id)
        t.helpful_notes, t.assignment_reason = "STAFF-ONLY-NOTE", "STAFF-ONLY-REASON"


def _try(api, world: World, case: Case, role: str) -> tuple[list[str], bool]:
    """Problems seen when `role` makes the call of `case`, and whether the data changed."""
    url, body = case.request(world, role)
    method = case.endpoint[0] if case.endpoint[0] != "MOUNT" else "GET"
    before = snapshot()
    r = api.request(method, url, json=body, files=case.files, headers=world.headers(role))
    changed = snapshot() != before
    problems = []
    if r.status_code != case.expected[role]:
        return [f"{role}: {r.status_code} (expected {case.expected[role]}) {r.text[:200]}"], changed
    if r.status_code >= 400:
        if not r.headers["content-type"].startswith("application/json") or not r.json().get("detail"):
            problems.append(f"{role}: {r.status_code} without a JSON detail")
        problems += [f"{role}: {text!r} in a refusal" for text in FOREIGN if text in r.text]
        if changed and method != "HEAD" and case.endpoint[1] != "/api/auth/login":
            problems.append(f"{role}: a refused call changed data")
    elif role in ("user", "other_user", "moderator") and method == "GET" and "STAFF-ONLY" in r.text:
        problems.append(f"{role}: staff-only fields in the answer")  # none of them works this ticket
    if 200 <= r.status_code < 300 and case.check is not None and method != "HEAD":
        try:
            case.check(world, role, r)
        except AssertionError as exc:
            problems.append(f"{role}: {exc}")
    return problems, changed or (r.status_code < 300 and method not in ("GET", "HEAD"))


FOREIGN = ("Only Otto may read this", "Two charges on my card", "STAFF-ONLY")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "_"))
def test_endpoint_for_every_role(api, factory, world: World, case: Case):
    """Each role in turn; the world is rebuilt after a call that changed something, so every role meets the
    same starting point."""
    problems: list[str] = []
    _mark_staff_fields(world)
    for role in ROLES:
        found, dirty = _try(api, world, case, role)
        problems += found
        if dirty:
            reset_database()
            world = build_world(factory)
            _mark_staff_fields(world)
    assert not problems, f"{case.name}:\n" + "\n".join(problems)
