"""Accounts through the services: sign-up, log-in, throttle, and what admins can change."""

import pytest
from pydantic import ValidationError

from tests.factories import PASSWORD
from ticketing_app.db import session_scope
from ticketing_app.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, PermissionDenied, TooManyAttempts
from ticketing_app.models import User
from ticketing_app.schemas import LoginIn, SignupIn, UserFilters, UserUpdate
from ticketing_app.services import accounts


def signup(name="Sam", email="sam@example.com", password=PASSWORD):
    with session_scope() as s:
        return accounts.signup(s, SignupIn(name=name, email=email, password=password))


def login(email, password=PASSWORD):
    with session_scope() as s:
        return accounts.login(s, LoginIn(email=email, password=password))


def test_signup_creates_a_plain_user_with_normalised_email(clean_db):
    user, token = signup(email="  Sam@Example.COM ")
    assert (user.role, user.email, user.skills, user.is_active) == ("user", "sam@example.com", [], True)
    assert user.password_hash.startswith("$argon2") and PASSWORD not in user.password_hash
    with session_scope() as s:
        assert accounts.user_from_token(s, token).id == user.id


def test_email_is_unique_case_insensitively(clean_db):
    signup(email="sam@example.com")
    with pytest.raises(Conflict):
        signup(email="SAM@example.com")


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 8"), ("sam@example.com", "same as your e-mail"), ("        ", "only spaces")],
)
def test_password_policy(clean_db, password, message):
    with pytest.raises((InvalidInput, ValidationError), match=message):
        signup(password=password)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "", "email": "a@b.co", "password": PASSWORD},
        {"name": "X", "email": "not-an-email", "password": PASSWORD},
        {"name": "X\x00", "email": "a@b.co", "password": PASSWORD},
        {"name": "X", "email": "a@b.co", "password": PASSWORD, "role": "admin"},
        {"name": "X", "email": "a@b.co", "password": PASSWORD, "skills": ["billing"]},
    ],
)
def test_signup_input_is_validated_and_cannot_set_role_or_skills(fields):
    with pytest.raises(ValidationError):
        SignupIn(**fields)


def test_login_with_right_and_wrong_password(clean_db):
    user, _ = signup()
    logged_in, token = login("SAM@example.com")
    assert logged_in.id == user.id and token
    with pytest.raises(NotAuthenticated, match="Wrong e-mail or password"):
        login("sam@example.com", "wrong password!")
    with pytest.raises(NotAuthenticated, match="Wrong e-mail or password"):
        login("nobody@example.com", "wrong password!")


def test_unknown_email_costs_a_password_check_too(clean_db, monkeypatch):
    """Constant-time answer: an unknown e-mail still runs one argon2 verification."""
    calls = []
    import ticketing_app.services.accounts as module

    real = module.burn_password_check
    monkeypatch.setattr(module, "burn_password_check", lambda pw: (calls.append(pw), real(pw)))
    with pytest.raises(NotAuthenticated):
        login("nobody@example.com", "some password")
    assert calls == ["some password"]


def test_failed_logins_are_throttled_per_email(clean_db):
    signup()
    for _ in range(5):
        with pytest.raises(NotAuthenticated):
            login("sam@example.com", "wrong password!")
    with pytest.raises(TooManyAttempts) as excinfo:
        login("sam@example.com")  # even the right password waits out the window
    assert 0 < excinfo.value.retry_after_seconds <= 15 * 60
    assert "Try again in" in excinfo.value.message
    signup(name="Other", email="other@example.com")
    assert login("other@example.com")[0].email == "other@example.com"  # others are unaffected


def test_a_successful_login_clears_earlier_failures(clean_db):
    signup()
    for _ in range(4):
        with pytest.raises(NotAuthenticated):
            login("sam@example.com", "wrong password!")
    login("sam@example.com")
    for _ in range(4):
        with pytest.raises(NotAuthenticated):
            login("sam@example.com", "wrong password!")
    login("sam@example.com")


def test_deactivation_takes_effect_on_the_next_request(factory):
    admin = factory.admin()
    user = factory.user()
    token = factory.token(user)
    with session_scope() as s:
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=user.email, active=False))
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)
    with pytest.raises(NotAuthenticated):
        login(user.email)


def test_role_change_revokes_existing_tokens(factory):
    """A role change ends the user's sessions (it used to keep them with the new role: issue "sessions that
    end"); the next log-in works with the new role."""
    admin = factory.admin()
    other_admin = factory.user("admin")
    token = factory.token(other_admin)
    with session_scope() as s:
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=other_admin.email, role="user"))
    with session_scope() as s, pytest.raises(NotAuthenticated):
        accounts.user_from_token(s, token)
    _, fresh = login(other_admin.email)
    with session_scope() as s:
        demoted = accounts.user_from_token(s, fresh)
        assert demoted.role == "user"
        with pytest.raises(PermissionDenied):
            accounts.list_users(s, demoted, UserFilters())


def test_admin_sets_normalised_skills_and_role(factory):
    admin = factory.admin()
    user = factory.user()
    with session_scope() as s:
        out = accounts.update_user(
            s,
            s.get(User, admin.id),
            UserUpdate(email=user.email.upper(), role="moderator", skills=[" Billing ", "billing", "MFA", "2fa"]),
        )
    assert out.role == "moderator"
    assert out.skills == ["billing", "mfa"]  # trimmed, lower-cased, de-duplicated by synonym
    with session_scope() as s:
        assert s.get(User, user.id).skill_keys == ["2fa", "billing"]


@pytest.mark.parametrize("skills", [["x" * 51], [f"s{i}" for i in range(31)]])
def test_skill_limits_are_enforced(factory, skills):
    admin = factory.admin()
    user = factory.user()
    with session_scope() as s, pytest.raises(InvalidInput):
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=user.email, skills=skills))


def test_update_unknown_user_is_not_found(factory):
    admin = factory.admin()
    with session_scope() as s, pytest.raises(NotFound):
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email="ghost@example.com", role="moderator"))


def test_the_last_admin_cannot_demote_or_deactivate_themselves(factory):
    admin = factory.admin()
    with session_scope() as s, pytest.raises(Conflict):
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=admin.email, role="user"))
    with session_scope() as s, pytest.raises(Conflict):
        accounts.update_user(s, s.get(User, admin.id), UserUpdate(email=admin.email, active=False))


@pytest.mark.parametrize("role", ["user", "moderator"])
def test_non_admins_cannot_manage_users_or_themselves(factory, role):
    factory.admin()
    actor = factory.user(role)
    with session_scope() as s:
        me = s.get(User, actor.id)
        with pytest.raises(PermissionDenied):
            accounts.update_user(s, me, UserUpdate(email=actor.email, role="admin"))
        with pytest.raises(PermissionDenied):
            accounts.update_user(s, me, UserUpdate(email=actor.email, skills=["billing"]))
        with pytest.raises(PermissionDenied):
            accounts.list_users(s, me, UserFilters())


def test_admin_lists_and_searches_users_with_load(factory):
    admin = factory.admin()
    factory.user("moderator", skills=["billing"], name="Maya Billing")
    factory.user(name="Casey Customer")
    with session_scope() as s:
        me = s.get(User, admin.id)
        everyone = accounts.list_users(s, me, UserFilters())
        assert everyone.total == 3
        maya = accounts.list_users(s, me, UserFilters(q="maya"))
        assert [u.name for u in maya.items] == ["Maya Billing"] and maya.items[0].open_tickets == 0
        mods = accounts.list_users(s, me, UserFilters(role="moderator"))
        assert [u.role for u in mods.items] == ["moderator"]
        wildcard = accounts.list_users(s, me, UserFilters(q="%"))
        assert wildcard.total == 0  # LIKE wildcards in the search are literal
