"""Account self-service over REST and the services: password reset (also sent by an admin), e-mail verification,
the profile."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from tests.factories import PASSWORD
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import EmailKind
from ticketing_app.models import AccountToken, EmailMessage, User
from ticketing_app.services import accounts

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture()
def settings(monkeypatch):
    def change(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()


def mails(to: str, kind: str | None = None) -> list[EmailMessage]:
    with session_scope() as s:
        query = select(EmailMessage).where(EmailMessage.to_address == to).order_by(EmailMessage.id)
        if kind:
            query = query.where(EmailMessage.kind == kind)
        return list(s.scalars(query))


def link_token(mail: EmailMessage, page: str) -> str:
    base = re.escape(get_settings().app_base_url)
    match = re.search(rf"{base}{page}\?token=([A-Za-z0-9_-]+)", mail.body_text)
    assert match, mail.body_text
    assert f"{page}?token={match.group(1)}" in mail.body_html
    return match.group(1)


def reset_token(email: str) -> str:
    return link_token(mails(email, EmailKind.PASSWORD_RESET)[-1], "/reset-password")


def ask_reset(api, email: str):
    return api.post("/api/auth/password-reset", json={"email": email})


def confirm(api, token: str, password: str = NEW_PASSWORD):
    return api.post("/api/auth/password-reset/confirm", json={"token": token, "password": password})


def log_in(api, email: str, password: str):
    return api.post("/api/auth/login", json={"email": email, "password": password})


def test_the_same_answer_for_known_unknown_and_inactive_addresses(api, factory):
    factory.admin()
    known = factory.user()
    inactive = factory.user()
    with session_scope() as s:
        s.get(User, inactive.id).is_active = False
    answers = [ask_reset(api, email) for email in (known.email, "nobody@example.com", inactive.email)]
    assert {r.status_code for r in answers} == {202}
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert "If an account uses this address" in answers[0].json()["detail"]
    assert len(mails(known.email, EmailKind.PASSWORD_RESET)) == 1
    assert mails("nobody@example.com") == [] and mails(inactive.email, EmailKind.PASSWORD_RESET) == []
    mail = mails(known.email, EmailKind.PASSWORD_RESET)[0]
    assert "30 minutes" in mail.body_text and mail.subject == "Reset your helpdesk password"


def test_reset_sets_the_password_once_revokes_sessions_and_verifies(api, factory):
    user = factory.user()
    old_session = factory.headers(user)
    assert api.get("/api/auth/me", headers=old_session).json()["email_verified"] is False
    ask_reset(api, user.email)
    ask_reset(api, user.email)  # two links: using one ends the other
    first, second = (link_token(m, "/reset-password") for m in mails(user.email, EmailKind.PASSWORD_RESET))
    r = confirm(api, second)
    assert r.status_code == 200 and "Log in with the new one" in r.json()["detail"]
    assert log_in(api, user.email, NEW_PASSWORD).status_code == 200
    assert log_in(api, user.email, PASSWORD).status_code == 401
    assert api.get("/api/auth/me", headers=old_session).status_code == 401  # earlier sessions ended
    for used in (second, first):
        r = confirm(api, used, "yet another password")
        assert r.status_code == 422 and "not valid any more" in r.json()["detail"] and r.json()["field"] == "token"
    with session_scope() as s:
        assert s.get(User, user.id).email_verified_at is not None  # they read a mail sent to the address
        assert s.scalar(select(AccountToken.token_hash).where(AccountToken.user_id == user.id)) not in (first, second)


def test_an_expired_link_is_refused(api, factory):
    user = factory.user()
    ask_reset(api, user.email)
    token = reset_token(user.email)
    with session_scope() as s:
        s.execute(text("UPDATE account_tokens SET expires_at = now() - interval '1 second'"))
    assert confirm(api, token).status_code == 422
    assert log_in(api, user.email, PASSWORD).status_code == 200


def test_a_refused_password_keeps_the_link_usable(api, factory):
    user = factory.user()
    ask_reset(api, user.email)
    token = reset_token(user.email)
    r = confirm(api, token, user.email)
    assert r.status_code == 422 and "same as your e-mail" in r.json()["detail"]
    assert confirm(api, token, "short").status_code == 422
    assert confirm(api, token).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"token": "x", "password": NEW_PASSWORD},
        {"token": "a" * 43 + "'", "password": NEW_PASSWORD},
        {"token": "a" * 43},
    ],
)
def test_confirm_input_is_validated(api, body):
    assert api.post("/api/auth/password-reset/confirm", json=body).status_code == 422


def test_reset_requests_are_throttled_per_address_asked_for_and_per_client(api, factory, settings):
    settings(password_reset_max_per_email=2, password_reset_max_per_address=4)
    user = factory.user()
    assert [ask_reset(api, user.email).status_code for _ in range(3)] == [202, 202, 429]
    assert [ask_reset(api, "ghost@example.com").status_code for _ in range(3)] == [202, 202, 429]  # same for none
    r = ask_reset(api, "third@example.com")  # a fresh address, but this client has used up its 4
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert len(mails(user.email, EmailKind.PASSWORD_RESET)) == 2


def test_an_admin_sends_a_reset_and_others_may_not(api, factory):
    admin = factory.admin()
    moderator = factory.user("moderator")
    user = factory.user()
    r = api.post(f"/api/users/{user.id}/password-reset", headers=factory.headers(admin))
    assert r.status_code == 202 and user.email in r.json()["detail"]
    mail = mails(user.email, EmailKind.PASSWORD_RESET)[-1]
    assert "An administrator" in mail.body_text
    for who in (moderator, user):
        r = api.post(f"/api/users/{admin.id}/password-reset", headers=factory.headers(who))
        assert r.status_code == 403
    assert api.post(f"/api/users/{user.id}/password-reset").status_code == 401
    assert api.post("/api/users/999999/password-reset", headers=factory.headers(admin)).status_code == 404
    assert api.post(f"/api/users/{2**40}/password-reset", headers=factory.headers(admin)).status_code == 404
    with session_scope() as s:
        s.get(User, user.id).is_active = False
    assert api.post(f"/api/users/{user.id}/password-reset", headers=factory.headers(admin)).status_code == 409
    assert len(mails(user.email, EmailKind.PASSWORD_RESET)) == 1


def test_signup_mails_a_verify_link_and_it_verifies_once(api):
    r = api.post("/api/auth/signup", json={"name": "Vera", "email": "vera@example.com", "password": PASSWORD})
    assert r.status_code == 201 and r.json()["user"]["email_verified"] is False
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    (welcome,) = mails("vera@example.com", EmailKind.WELCOME)
    token = link_token(welcome, "/verify-email")
    r = api.post("/api/auth/verify-email", json={"token": token})
    assert r.status_code == 200 and "vera@example.com is verified" in r.json()["detail"]
    assert api.get("/api/me", headers=headers).json()["email_verified"] is True
    assert api.post("/api/auth/verify-email", json={"token": token}).status_code == 422
    r = api.post("/api/auth/verify-email/resend", headers=headers)
    assert r.status_code == 202 and "already verified" in r.json()["detail"]
    assert mails("vera@example.com", EmailKind.VERIFY_EMAIL) == []


def test_resend_verification_mails_a_fresh_link_throttled(api, factory, settings):
    settings(verify_email_max_per_user=2)
    user = factory.user()
    headers = factory.headers(user)
    assert [api.post("/api/auth/verify-email/resend", headers=headers).status_code for _ in range(3)] == [
        202,
        202,
        429,
    ]
    sent = mails(user.email, EmailKind.VERIFY_EMAIL)
    assert len(sent) == 2
    assert api.post("/api/auth/verify-email", json={"token": link_token(sent[0], "/verify-email")}).status_code == 200
    assert api.post("/api/auth/verify-email/resend").status_code == 401


def test_a_reset_link_does_not_verify_and_a_verify_link_does_not_reset(api, factory):
    user = factory.user()
    ask_reset(api, user.email)
    token = reset_token(user.email)
    assert api.post("/api/auth/verify-email", json={"token": token}).status_code == 422
    verify = link_token(mails(user.email, EmailKind.WELCOME)[0], "/verify-email")
    assert confirm(api, verify).status_code == 422
    assert confirm(api, token).status_code == 200


def test_the_first_admin_is_verified(factory):
    admin = factory.admin()
    assert admin.email_verified_at is not None


def test_profile_name_change_and_validation(api, factory):
    user = factory.user(name="Old Name")
    h = factory.headers(user)
    r = api.patch("/api/me", json={"name": "  New Name "}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "New Name"
    assert api.get("/api/me", headers=h).json()["name"] == "New Name"
    for body in ({"name": ""}, {"name": "a\nb"}, {"name": "x" * 101}, {"name": "A", "role": "admin"}, {}):
        r = api.patch("/api/me", json=body, headers=h)
        assert r.status_code == 422, body
    assert api.patch("/api/me", json={"name": "Nobody"}).status_code == 401
    with session_scope() as s:
        assert accounts.find_user_by_email(s, user.email).role == "user"


def test_change_password_revokes_other_sessions(api, factory):
    user = factory.user()
    other = factory.headers(user)
    r = api.post(
        "/api/auth/change-password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=factory.headers(user),
    )
    assert r.status_code == 200
    assert api.get("/api/me", headers=other).status_code == 401
    assert api.get("/api/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}).status_code == 200


def test_a_sent_account_mail_keeps_no_usable_link(api, factory):
    """Once the SMTP server took it, the outbox copy of a reset mail loses the token (a recorded one keeps it)."""
    from ticketing_app.mail import transport

    class Smtp:
        name = "smtp"

    class Recorder:
        name = "recorded"

    user = factory.user()
    ask_reset(api, user.email)
    ask_reset(api, user.email)
    with session_scope() as s:
        sent, recorded = s.scalars(
            select(EmailMessage).where(EmailMessage.kind == EmailKind.PASSWORD_RESET).order_by(EmailMessage.id)
        )
        token = link_token(sent, "/reset-password")
        transport.mark_delivered(sent, Smtp(), "<a@b>")
        transport.mark_delivered(recorded, Recorder(), "<c@d>")
        assert token not in sent.body_text + sent.body_html and transport.TOKEN_REMOVED in sent.body_text
        assert "token=" in recorded.body_text and transport.TOKEN_REMOVED not in recorded.body_html
    assert confirm(api, token).status_code == 200  # the person's own mail still works
