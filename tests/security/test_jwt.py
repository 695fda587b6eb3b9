"""Access tokens over HTTP and in the UI's path: forged, foreign, expired and outdated tokens.

The API reads the user from the database on every request (the token carries only the user id), so a
deactivation or a role change applies to tokens already handed out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.errors import NotAuthenticated, PermissionDenied
from ticketing_app.models import User
from ticketing_app.schemas import UserUpdate
from ticketing_app.security import create_access_token
from ticketing_app.services import accounts, tickets

# Endpoints that need a user, with a body where they take one.
AUTHENTICATED_CALLS = [
    ("GET", "/api/auth/me", None),
    ("GET", "/api/auth/users", None),
    ("POST", "/api/auth/update-user", {"email": "x@example.com", "role": "admin"}),
    ("GET", "/api/tickets", None),
    ("POST", "/api/tickets", {"title": "Forged ticket", "description": "by a forged token"}),
    ("GET", "/api/tickets/{tid}", None),
    ("PATCH", "/api/tickets/{tid}", {"status": "closed"}),
    ("POST", "/api/tickets/{tid}/comments", {"body": "forged comment"}),
]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: int, **extra) -> dict:
    now = datetime.now(UTC)
    return {"sub": str(user_id), "iat": now, "exp": now + timedelta(hours=1), "typ": "access", **extra}


def _hmac_token(claims: dict, key: str, alg: str = "HS256") -> str:
    """A token signed by hand (PyJWT refuses empty keys and warns about short HS512 keys)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    signing_input = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(body)}"
    signature = base64.urlsafe_b64encode(hmac.new(key.encode(), signing_input.encode(), digest).digest())
    return f"{signing_input}.{signature.rstrip(b'=').decode()}"


def _secret() -> str:
    return get_settings().resolved_jwt_secret()


def forged_tokens(admin_id: int, user_token: str) -> dict[str, str]:
    """Tokens an attacker could make, all claiming to be the admin (or worse)."""
    header, payload, signature = user_token.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    now = int(datetime.now(UTC).timestamp())
    admin_payload = _b64({"sub": str(admin_id), "iat": now, "exp": now + 3600, "typ": "access"})
    return {
        "tampered_signature": f"{header}.{payload}.{flipped}",
        "payload_swapped_to_admin": f"{header}.{admin_payload}.{signature}",
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{admin_payload}.",
        "alg_none_with_signature": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{admin_payload}.{signature}",
        "alg_NONE_upper": f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{admin_payload}.",
        "other_algorithm_hs512": _hmac_token(_claims(admin_id), _secret(), "HS512"),
        "wrong_key": jwt.encode(_claims(admin_id), "another-key-that-is-long-enough-1234567890", algorithm="HS256"),
        "empty_key": _hmac_token(_claims(admin_id), ""),
        "expired": create_access_token(admin_id, now=datetime.now(UTC) - timedelta(days=60)),
        "expired_by_one_second": jwt.encode(
            {"sub": str(admin_id), "iat": now - 7200, "exp": now - 1, "typ": "access"}, _secret(), algorithm="HS256"
        ),
        "no_expiry": jwt.encode({"sub": str(admin_id), "iat": now, "typ": "access"}, _secret(), algorithm="HS256"),
        "not_an_access_token": jwt.encode(_claims(admin_id, typ="refresh"), _secret(), algorithm="HS256"),
        "no_type": jwt.encode({"sub": str(admin_id), "iat": now, "exp": now + 3600}, _secret(), algorithm="HS256"),
        "sub_not_a_number": jwt.encode(_claims(0) | {"sub": "admin"}, _secret(), algorithm="HS256"),
        "sub_unknown_user": jwt.encode(_claims(987654), _secret(), algorithm="HS256"),
        "garbage": "not.a.token",
        "empty_segments": "..",
    }


def _call(api, method: str, path: str, body, headers: dict[str, str]):
    return api.request(method, path, json=body, headers=headers)


def test_forged_tokens_are_401_on_every_authenticated_endpoint(api, world):
    admin = world.user("admin")
    tokens = forged_tokens(admin.id, world.factory.token(world.user("user")))
    for name, token in tokens.items():
        for method, path, body in AUTHENTICATED_CALLS:
            r = _call(api, method, path.format(tid=world.ticket_id), body, {"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, method, path, r.status_code, r.text)
            assert r.headers.get("www-authenticate") == "Bearer", (name, path)
            assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    # The real admin token is accepted, so the 401s above are about the tokens, not the requests.
    assert api.get("/api/auth/users", headers=world.headers("admin")).status_code == 200
    with session_scope() as s:  # and nothing was written by any forged call
        assert s.get(User, world.user("user").id) is not None
        detail = tickets.get_ticket_detail(s, s.get(User, admin.id), world.ticket_id)
        assert detail.status == "open" and detail.comments == []


@pytest.mark.parametrize(
    "header",
    [
        "Token {t}",
        "Basic {t}",
        "bearer{t}",
        "{t}",
        "Bearer",
        "Bearer ",
        "Bearer {t} extra",
        "Bearer \u00e9{t}",
    ],
)
def test_malformed_authorization_headers_are_401(api, world, header):
    token = world.factory.token(world.user("admin"))
    value = header.format(t=token)
    r = api.get("/api/auth/me", headers={"Authorization": value.encode("utf-8")})
    assert r.status_code == 401, (header, r.status_code, r.text)
    assert r.json()["detail"]


def test_a_deactivated_users_token_is_refused_and_works_again_when_reactivated(api, world):
    requester = world.user("user")
    h = world.headers("user")
    assert api.get("/api/tickets", headers=h).json()["total"] == 1
    r = api.post(
        "/api/auth/update-user", json={"email": requester.email, "active": False}, headers=world.headers("admin")
    )
    assert r.status_code == 200 and r.json()["is_active"] is False
    for method, path, body in AUTHENTICATED_CALLS:
        r = _call(api, method, path.format(tid=world.ticket_id), body, h)
        assert r.status_code == 401, (method, path, r.status_code)
    # log-in is refused too, with the same message as a wrong password (no account-state oracle)
    from tests.factories import PASSWORD

    r = api.post("/api/auth/login", json={"email": requester.email, "password": PASSWORD})
    assert r.status_code == 401 and r.json() == {"detail": "Wrong e-mail or password."}
    api.post("/api/auth/update-user", json={"email": requester.email, "active": True}, headers=world.headers("admin"))
    # Deactivation ended the session for good (it used to come back with the flag: issue "sessions that end");
    # logging in again works.
    assert api.get("/api/tickets", headers=h).status_code == 401
    r = api.post("/api/auth/login", json={"email": requester.email, "password": PASSWORD})
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert api.get("/api/tickets", headers=fresh).json()["total"] == 1


def test_a_demotion_revokes_earlier_tokens_and_a_new_one_carries_the_new_role(api, world, factory):
    """A role change ends the user's sessions (earlier tokens used to carry the new role on: issue "sessions
    that end"); what a new token may do follows the new role."""
    second_admin = factory.user("admin", name="Second Admin")
    token_before = factory.token(second_admin)  # issued while an admin
    h = {"Authorization": f"Bearer {token_before}"}
    assert api.get("/api/auth/users", headers=h).status_code == 200
    assert api.get("/api/tickets", headers=h).json()["total"] == 2  # admins see everything
    assert api.get(f"/api/tickets/{world.ticket_id}", headers=h).status_code == 200

    r = api.post(
        "/api/auth/update-user", json={"email": second_admin.email, "role": "user"}, headers=world.headers("admin")
    )
    assert r.status_code == 200 and r.json()["role"] == "user"

    for method, path, body in AUTHENTICATED_CALLS:
        r = _call(api, method, path.format(tid=world.ticket_id), body, h)
        assert r.status_code == 401, (method, path, r.status_code)
    h = factory.headers(second_admin)  # logged in again, as a user now
    assert api.get("/api/auth/me", headers=h).json()["role"] == "user"
    assert api.get("/api/auth/users", headers=h).status_code == 403
    r = api.post("/api/auth/update-user", json={"email": second_admin.email, "role": "admin"}, headers=h)
    assert r.status_code == 403  # cannot promote themselves back with the old token
    assert api.get("/api/tickets", headers=h).json() == {"items": [], "total": 0}  # only their own (none)
    assert api.get(f"/api/tickets/{world.ticket_id}", headers=h).status_code == 404
    assert api.patch(f"/api/tickets/{world.ticket_id}", json={"status": "closed"}, headers=h).status_code == 404
    own = api.post("/api/tickets", json={"title": "Now a user", "description": "x"}, headers=h).json()
    assert [t["id"] for t in api.get("/api/tickets", headers=h).json()["items"]] == [own["id"]]
    assert own["helpful_notes"] is None


def test_a_moderator_removed_from_staff_loses_their_assigned_tickets(api, world):
    moderator = world.user("assigned_moderator")
    h = world.headers("assigned_moderator")
    assert api.get(f"/api/tickets/{world.ticket_id}", headers=h).status_code == 200
    api.post("/api/auth/update-user", json={"email": moderator.email, "role": "user"}, headers=world.headers("admin"))
    assert api.get(f"/api/tickets/{world.ticket_id}", headers=h).status_code == 401  # the role change ended it
    h = world.factory.headers(moderator)  # logged in again, as a user
    assert api.get(f"/api/tickets/{world.ticket_id}", headers=h).status_code == 404
    assert (
        api.post(f"/api/tickets/{world.ticket_id}/comments", json={"body": "still here?"}, headers=h).status_code == 404
    )
    assert api.get("/api/tickets", headers=h).json()["total"] == 0


# ----- the UI's path: AuthState._actor_call -> accounts.user_from_token, the live loop, the admin loop -----


def test_user_from_token_refuses_a_deactivated_user_and_applies_a_demotion(world):
    requester, admin = world.user("user"), world.user("admin")
    token = world.factory.token(requester)
    with session_scope() as s:
        assert accounts.user_from_token(s, token).id == requester.id
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=requester.email, active=False))
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)
    for name, forged in forged_tokens(admin.id, token).items():
        with session_scope() as s, pytest.raises(NotAuthenticated):
            accounts.user_from_token(s, forged)
            pytest.fail(name)
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, None)


def test_the_reflex_states_refuse_a_deactivated_users_token(world):
    """The real AuthState._actor_call (what every page event goes through) and the live-page loop."""
    from ticketing_app.states.live import marker_for
    from ticketing_app.states.tickets import MyTicketsState

    requester, admin = world.user("user"), world.user("admin")
    token = world.factory.token(requester)
    state = MyTicketsState(_reflex_internal_init=True)
    state.token = token
    asyncio.run(MyTicketsState.load.fn(state))
    assert [r.id for r in state.rows] == [world.ticket_id] and state.user_id == requester.id
    assert asyncio.run(marker_for(token, lambda s, u: tickets.change_marker(s, u)))[0] not in (None, "")

    with session_scope() as s:
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=requester.email, active=False))

    with pytest.raises(NotAuthenticated):
        asyncio.run(state._actor_call(lambda s, u: u))
    assert state.token == "" and state.user_id == 0 and state.user_role == ""  # the session is forgotten
    state.token = token
    result = asyncio.run(MyTicketsState.load.fn(state))
    assert "/login" in str(result)  # the page sends them to log in
    assert asyncio.run(marker_for(token, lambda s, u: tickets.change_marker(s, u)))[0] is None  # live loop stops


def test_the_admin_overview_loop_rechecks_the_role_of_an_old_token(world, factory):
    """The overview's live loop (LiveMixin.follow) re-checks the role every round, before it re-reads."""
    from ticketing_app.services.reports import admin_overview
    from ticketing_app.states.admin import AdminOverviewState, _fresh_reading
    from ticketing_app.states.live import marker_for

    second_admin = factory.user("admin", name="Second Admin")
    token = factory.token(second_admin)
    assert asyncio.run(marker_for(token, _fresh_reading))[0]  # an admin: the loop reads on
    with session_scope() as s:
        actor = accounts.user_from_token(s, token)
        data = admin_overview(s, actor)
        assert actor.id == second_admin.id and data.tickets["total"] == 2
    with session_scope() as s:
        accounts.update_user(
            s, s.get(User, world.user("admin").id), UserUpdate(email=second_admin.email, role="moderator")
        )
    assert asyncio.run(marker_for(token, _fresh_reading))[0] is None  # demoted: the loop ends...
    state = AdminOverviewState(_reflex_internal_init=True)
    state.token = token
    result = asyncio.run(state._live_ended())
    # ...on the log-in page: the role change ended the session (it used to carry on with the new role)
    assert "/login" in str(result) and state.token == "" and state.total == 0
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)
    state.token = factory.token(second_admin)  # logged in again, as a moderator
    asyncio.run(state._live_ended())
    assert state.forbidden and state.total == 0  # the not-allowed view
    with session_scope() as s, pytest.raises(PermissionDenied):
        admin_overview(s, accounts.user_from_token(s, state.token))
