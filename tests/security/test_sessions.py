"""Sessions that end: log-out, a password change, a role change and deactivation revoke tokens on the server,
in every process, whatever the per-process verified-token cache holds."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from tests.factories import PASSWORD
from ticketing_app.db import session_scope
from ticketing_app.errors import InvalidInput, NotAuthenticated
from ticketing_app.models import RevokedToken, User
from ticketing_app.schemas import LoginIn, PasswordChange, UserUpdate
from ticketing_app.security import decode_access_claims
from ticketing_app.services import accounts

NEW_PASSWORD = "a brand new password"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(api, email: str, password: str = PASSWORD) -> str:
    r = api.post("/api/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _all_refused(api, token: str) -> None:
    """The token gets 401 on the ORM path, on intake's single statement and on comments."""
    h = _bearer(token)
    assert api.get("/api/auth/me", headers=h).status_code == 401
    assert api.get("/api/tickets", headers=h).status_code == 401
    assert api.post("/api/tickets", json={"title": "Still me?", "description": "x"}, headers=h).status_code == 401
    r = api.post("/api/tickets/1/comments", json={"body": "hello"}, headers=h)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"


def test_logout_revokes_the_presented_token_only(api, factory):
    user = factory.user()
    token, other_session = _login(api, user.email), _login(api, user.email)
    assert api.get("/api/auth/me", headers=_bearer(token)).status_code == 200  # verified and cached in-process
    assert (
        api.post("/api/tickets", json={"title": "Before", "description": "x"}, headers=_bearer(token)).status_code
        == 201
    )

    r = api.post("/api/auth/logout", headers=_bearer(token))
    assert r.status_code == 204 and r.content == b""
    _all_refused(api, token)
    assert api.get("/api/auth/me", headers=_bearer(other_session)).status_code == 200  # another session goes on
    assert api.post("/api/auth/logout", headers=_bearer(token)).status_code == 204  # idempotent
    assert api.post("/api/auth/logout").status_code == 401  # nothing to log out


def test_logout_keeps_the_token_id_until_it_expires(api, factory):
    user = factory.user()
    token = _login(api, user.email)
    api.post("/api/auth/logout", headers=_bearer(token))
    claims = decode_access_claims(token)
    with session_scope() as s:
        row = s.scalar(select(RevokedToken).where(RevokedToken.jti == claims.jti))
        assert row is not None and abs(row.expires_at.timestamp() - claims.expires_at) < 1


def test_a_revocation_by_another_process_holds_despite_the_verified_token_cache(api, factory):
    """Another process revokes (here: straight in the database); this process has the token cached as verified."""
    user = factory.user()
    token = _login(api, user.email)
    for _ in range(2):
        assert api.get("/api/auth/me", headers=_bearer(token)).status_code == 200
    with session_scope() as s:
        accounts.logout(s, token)
    _all_refused(api, token)
    other = _login(api, user.email)
    with session_scope() as s:  # and a token-version bump made elsewhere
        s.get(User, user.id).token_version += 1
    _all_refused(api, other)


def test_a_password_change_revokes_earlier_tokens(api, factory):
    user = factory.user()
    old, elsewhere = _login(api, user.email), _login(api, user.email)
    r = api.post(
        "/api/auth/change-password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(old),
    )
    assert r.status_code == 200
    fresh = r.json()["access_token"]
    _all_refused(api, old)
    _all_refused(api, elsewhere)
    assert api.get("/api/auth/me", headers=_bearer(fresh)).json()["id"] == user.id
    assert api.post("/api/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 401
    assert api.get("/api/auth/me", headers=_bearer(_login(api, user.email, NEW_PASSWORD))).status_code == 200


def test_a_password_change_needs_the_current_password_and_a_good_new_one(factory):
    user = factory.user()
    with session_scope() as s:
        actor = s.get(User, user.id)
        with pytest.raises(InvalidInput, match="current password"):
            accounts.change_password(s, actor, PasswordChange(current_password="nope", new_password=NEW_PASSWORD))
        with pytest.raises(InvalidInput, match="e-mail"):
            accounts.change_password(s, actor, PasswordChange(current_password=PASSWORD, new_password=user.email))
    with session_scope() as s:
        assert s.get(User, user.id).token_version == 0  # nothing changed


@pytest.mark.parametrize("change", [{"role": "moderator"}, {"active": False}])
def test_a_role_change_or_deactivation_revokes_earlier_tokens(api, factory, change):
    admin, user = factory.admin(), factory.user()
    token = _login(api, user.email)
    assert (
        api.post("/api/tickets", json={"title": "Mine", "description": "x"}, headers=_bearer(token)).status_code == 201
    )
    r = api.post("/api/auth/update-user", json={"email": user.email, **change}, headers=factory.headers(admin))
    assert r.status_code == 200
    _all_refused(api, token)


def test_changing_only_skills_keeps_sessions(api, factory):
    admin, moderator = factory.admin(), factory.user("moderator")
    token = factory.token(moderator)
    r = api.post(
        "/api/auth/update-user", json={"email": moderator.email, "skills": ["billing"]}, headers=factory.headers(admin)
    )
    assert r.status_code == 200
    assert api.get("/api/auth/me", headers=_bearer(token)).status_code == 200


def test_service_level_revocations(factory):
    admin, user = factory.admin(), factory.user()
    with session_scope() as s:
        _, token = accounts.login(s, LoginIn(email=user.email, password=PASSWORD))
    with session_scope() as s:
        assert accounts.user_from_token(s, token).id == user.id
        accounts.logout(s, token)
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)
    with session_scope() as s:
        _, token = accounts.login(s, LoginIn(email=user.email, password=PASSWORD))
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=user.email, role="moderator"))
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)


def test_the_ui_log_out_revokes_the_token_on_the_server(factory):
    from ticketing_app.states.base import AuthState

    user = factory.user()
    with session_scope() as s:
        _, token = accounts.login(s, LoginIn(email=user.email, password=PASSWORD))
    state = AuthState(_reflex_internal_init=True)
    state.token = token
    result = asyncio.run(AuthState.logout.fn(state))
    assert "/login" in str(result) and state.token == "" and state.user_id == 0
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)
