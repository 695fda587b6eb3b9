"""Throttling (README "Throttling"): log-in per (e-mail, address), per address and per e-mail; rate limits on
sign-up, tickets and comments; the client address, and X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from tests.factories import PASSWORD
from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import ThrottleBucket
from ticketing_app.errors import NotAuthenticated, TooManyAttempts
from ticketing_app.models import User
from ticketing_app.schemas import LoginIn, TicketCreate
from ticketing_app.security import client_address
from ticketing_app.services import accounts, throttle, tickets

OWNER_ADDRESS = "203.0.113.7"


@pytest.fixture()
def settings(monkeypatch):
    """Change settings for one test (through the environment, as in production)."""

    def change(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()


@contextmanager
def client_at(address: str) -> Iterator:
    """An API client whose connection comes from `address`."""
    from fastapi.testclient import TestClient

    from ticketing_app.api.app import create_api

    with TestClient(create_api(), client=(address, 40000)) as client:
        yield client


def _login(client, email: str, password: str, headers: dict | None = None):
    return client.post("/api/auth/login", json={"email": email, "password": password}, headers=headers or {})


def _assert_429(r) -> None:
    assert r.status_code == 429, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert int(r.headers["Retry-After"]) > 0 and ("Too many" in detail or "too quickly" in detail), detail
    assert "Try again in" in detail


# ----- log-in -----


def test_a_strangers_failures_from_other_addresses_do_not_lock_the_owner_out(clean_db, factory):
    owner = factory.user()
    limit = get_settings().login_max_failures
    for stranger in ("198.51.100.1", "198.51.100.2", "2001:db8::66"):
        with client_at(stranger) as api:
            statuses = [_login(api, owner.email, f"guess {i}").status_code for i in range(limit + 3)]
            assert statuses == [401] * limit + [429] * 3, statuses
            _assert_429(_login(api, owner.email, PASSWORD))  # this pair is blocked, even with the password
    with client_at(OWNER_ADDRESS) as api:
        r = _login(api, owner.email, PASSWORD)
        assert r.status_code == 200, r.text


def test_the_owners_own_failures_block_only_their_address_and_a_success_clears_them(clean_db, factory):
    owner = factory.user()
    login = lambda password, address: accounts.login(  # noqa: E731
        s, LoginIn(email=owner.email, password=password), address=address
    )
    for _ in range(get_settings().login_max_failures - 1):
        with session_scope() as s, pytest.raises(NotAuthenticated):
            login("typo", OWNER_ADDRESS)
    with session_scope() as s:
        login(PASSWORD, OWNER_ADDRESS)  # the last try before the block: a success forgets the failures
    for _ in range(get_settings().login_max_failures - 1):
        with session_scope() as s, pytest.raises(NotAuthenticated):
            login("typo", OWNER_ADDRESS)
    with session_scope() as s:
        login(PASSWORD, OWNER_ADDRESS)


def test_blocks_grow_with_each_failure_past_the_limit(clean_db, factory, settings):
    settings(login_max_failures=3, login_window_minutes=10, login_block_max_minutes=35)
    user = factory.user()
    pair = f"{user.email}|{OWNER_ADDRESS}"

    def fail() -> None:
        with session_scope() as s, pytest.raises(NotAuthenticated):
            accounts.login(s, LoginIn(email=user.email, password="wrong"), address=OWNER_ADDRESS)

    def blocked() -> int:
        with session_scope() as s:
            return throttle.blocked_for(s, ThrottleBucket.LOGIN_PAIR, pair)

    def block_ends() -> None:  # as if the block's time had passed
        with session_scope() as s:
            s.execute(text("UPDATE throttle_counters SET blocked_until = now() - interval '1 second'"))

    for _ in range(3):
        fail()
    assert 590 <= blocked() <= 600  # 10 minutes
    with session_scope() as s, pytest.raises(TooManyAttempts) as refused:
        accounts.login(s, LoginIn(email=user.email, password=PASSWORD), address=OWNER_ADDRESS)
    assert 590 <= refused.value.retry_after_seconds <= 600 and "minutes" in refused.value.message
    block_ends()
    fail()
    assert 1190 <= blocked() <= 1200  # doubled: 20 minutes
    block_ends()
    fail()
    assert 2090 <= blocked() <= 2100  # 40 minutes, capped at 35


def test_spraying_many_accounts_from_one_address_gets_429(clean_db, factory, settings):
    settings(login_max_per_address=8)
    people = [factory.user() for _ in range(4)]
    emails = [p.email for p in people] + [f"nobody{i}@example.com" for i in range(6)]
    with client_at("198.51.100.50") as api:
        statuses = [_login(api, email, "Summer2026!").status_code for email in emails]
        assert statuses == [401] * 8 + [429] * 2, statuses
        _assert_429(_login(api, people[0].email, PASSWORD))  # the address is throttled, whoever it tries
    with client_at(OWNER_ADDRESS) as api:  # the accounts themselves are not locked
        assert _login(api, people[0].email, PASSWORD).status_code == 200


def test_a_flood_of_unknown_emails_cannot_burn_unbounded_hashes(clean_db, settings, monkeypatch):
    settings(login_max_per_address=5)
    burned = []
    monkeypatch.setattr(accounts, "burn_password_check", lambda password: burned.append(password))
    for i in range(20):
        with session_scope() as s, pytest.raises((NotAuthenticated, TooManyAttempts)):
            accounts.login(s, LoginIn(email=f"ghost{i}@example.com", password="x"), address="198.51.100.77")
    assert len(burned) == 5


def test_many_failures_on_one_account_from_anywhere_only_slow_it_down(clean_db, factory, settings, monkeypatch):
    settings(login_account_slow_after=6, login_account_max_delay_seconds=1.5)
    owner = factory.user()
    waits: list[float] = []
    monkeypatch.setattr(accounts.time, "sleep", waits.append)
    for i in range(10):  # a botnet: every guess from another address
        with session_scope() as s, pytest.raises(NotAuthenticated):
            accounts.login(s, LoginIn(email=owner.email, password="wrong"), address=f"198.51.100.{i + 1}")
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4])  # from the 7th attempt on, growing
    with session_scope() as s:
        user, _ = accounts.login(s, LoginIn(email=owner.email, password=PASSWORD), address=OWNER_ADDRESS)
    assert user.id == owner.id and waits[-1] == pytest.approx(0.5)  # slower, never refused


# ----- the client address -----


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ("", "10.0.0.5", "198.51.100.9", "10.0.0.5"),  # no trusted proxies: X-Forwarded-For is ignored
        ("10.0.0.0/8", "203.0.113.1", "198.51.100.9", "203.0.113.1"),  # peer not trusted: ignored
        ("10.0.0.0/8", "10.0.0.5", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.0/8", "10.0.0.5", "1.2.3.4, 198.51.100.9", "198.51.100.9"),  # the client's own entry is not believed
        ("10.0.0.0/8,127.0.0.1", "10.0.0.5", "198.51.100.9, 127.0.0.1", "198.51.100.9"),  # two hops of ours
        ("10.0.0.0/8", "10.0.0.5", "not-an-ip", "10.0.0.5"),
        ("10.0.0.0/8", "10.0.0.5", None, "10.0.0.5"),
        ("::1", "::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address(settings, trusted, peer, forwarded, expected):
    settings(trusted_proxies=trusted)
    assert client_address(peer, forwarded) == expected


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(clean_db, settings):
    settings(login_max_per_address=3)
    with client_at("10.0.0.5") as api:
        statuses = [
            _login(api, f"n{i}@example.com", "x", {"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]  # one address: the spoofed headers changed nothing
    settings(login_max_per_address=3, trusted_proxies="10.0.0.0/8")
    with client_at("10.0.0.6") as api:
        statuses = [
            _login(api, f"m{i}@example.com", "x", {"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(5)
        ]
        assert statuses == [401] * 5  # five clients behind our proxy


# ----- rate limits: sign-up, tickets, comments -----


def test_signups_are_limited_per_address(clean_db, factory, settings):
    settings(signup_max_per_address=2)
    taken = factory.user()
    with client_at("198.51.100.20") as api:
        body = lambda email: {"name": "N", "email": email, "password": PASSWORD}  # noqa: E731
        assert api.post("/api/auth/signup", json=body("a@example.com")).status_code == 201
        assert api.post("/api/auth/signup", json=body(taken.email)).status_code == 409  # counts too
        _assert_429(api.post("/api/auth/signup", json=body("b@example.com")))
    with client_at(OWNER_ADDRESS) as api:
        assert api.post("/api/auth/signup", json=body("c@example.com")).status_code == 201


def test_tickets_are_limited_per_user_and_per_address(clean_db, factory, settings):
    settings(tickets_max_per_user=2, tickets_max_per_address=4)  # refused attempts count too
    alice, bob, carol = factory.user(), factory.user(), factory.user()
    new = {"title": "Printer on fire", "description": "x"}
    with client_at("198.51.100.30") as api:
        for _ in range(2):
            assert api.post("/api/tickets", json=new, headers=factory.headers(alice)).status_code == 201
        r = api.post("/api/tickets", json=new, headers=factory.headers(alice))
        _assert_429(r)
        assert "too quickly" in r.json()["detail"]
        assert api.post("/api/tickets", json=new, headers=factory.headers(bob)).status_code == 201
        _assert_429(api.post("/api/tickets", json=new, headers=factory.headers(bob)))  # the address's fifth
    with client_at(OWNER_ADDRESS) as api:  # another address: only its users' own limits
        assert api.post("/api/tickets", json=new, headers=factory.headers(carol)).status_code == 201
        _assert_429(api.post("/api/tickets", json=new, headers=factory.headers(alice)))
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM tickets")).scalar() == 4  # the refused ones were not saved
        assert s.execute(text("SELECT count(*) FROM jobs WHERE kind = 'triage'")).scalar() == 4


def test_the_uis_ticket_submit_is_limited_too(clean_db, factory, settings):
    settings(tickets_max_per_user=1)
    user = factory.user()
    data = TicketCreate(title="From the page", description="x")
    with session_scope() as s:
        tickets.create_ticket(s, s.get(User, user.id), data, address=OWNER_ADDRESS)
    with session_scope() as s, pytest.raises(TooManyAttempts) as refused:
        tickets.create_ticket(s, s.get(User, user.id), data, address=OWNER_ADDRESS)
    assert refused.value.retry_after_seconds > 0


def test_comments_are_limited_per_user(clean_db, factory, settings):
    settings(comments_max_per_user=2)
    user = factory.user()
    ticket = factory.ticket(user)
    h = factory.headers(user)
    with client_at("198.51.100.40") as api:
        for _ in range(2):
            assert api.post(f"/api/tickets/{ticket.id}/comments", json={"body": "hi"}, headers=h).status_code == 201
        _assert_429(api.post(f"/api/tickets/{ticket.id}/comments", json={"body": "hi"}, headers=h))


# How the client reaches us: its socket address directly; behind a trusted proxy (10.0.0.5) that names it in
# X-Forwarded-For; or directly, sending a different made-up X-Forwarded-For each time (not believed, whether
# TRUSTED_PROXIES is empty or lists other peers).
ADDRESS_MODES = {
    "socket": ("", lambda client, i: ("198.51.100.60" if client == "limited" else "198.51.100.61", {})),
    "trusted proxy": (
        "10.0.0.0/8",
        lambda client, i: (
            "10.0.0.5",
            {"X-Forwarded-For": "198.51.100.62" if client == "limited" else "198.51.100.63"},
        ),
    ),
    "spoofed header": (
        "",
        lambda client, i: (
            "198.51.100.64" if client == "limited" else "198.51.100.65",
            {"X-Forwarded-For": f"192.0.2.{i}"},
        ),
    ),
    "spoofed header, proxies trusted": (  # TRUSTED_PROXIES is set, but this peer is not one of them
        "10.0.0.0/8",
        lambda client, i: (
            "198.51.100.66" if client == "limited" else "198.51.100.67",
            {"X-Forwarded-For": f"10.0.0.9, 192.0.2.{i}"},
        ),
    ),
}


@pytest.mark.parametrize("kind", ["comments", "tickets"])
@pytest.mark.parametrize("mode", list(ADDRESS_MODES))
def test_comments_and_tickets_are_limited_per_address_across_users(clean_db, factory, settings, kind, mode):
    """Two people at one client address share its limit (a third is refused with Retry-After although neither
    reached their own); another address is not affected. Behind a trusted proxy the address is the one it
    forwards; a header sent by the client itself does not make each request a new address."""
    trusted, where = ADDRESS_MODES[mode]
    settings(
        trusted_proxies=trusted,
        **{f"{kind}_max_per_user": 5, f"{kind}_max_per_address": 3},
    )
    alice, bob = factory.user(), factory.user()
    own_ticket = {user.id: factory.ticket(user).id for user in (alice, bob)}
    sent = iter(range(1, 100))

    def post(user: User, client: str):
        peer, headers = where(client, next(sent))
        with client_at(peer) as api:
            headers = {**headers, **factory.headers(user)}
            if kind == "comments":
                return api.post(f"/api/tickets/{own_ticket[user.id]}/comments", json={"body": "hi"}, headers=headers)
            return api.post("/api/tickets", json={"title": "Printer on fire", "description": "x"}, headers=headers)

    assert [post(alice, "limited").status_code for _ in range(2)] == [201, 201]
    assert post(bob, "limited").status_code == 201  # the address's third
    refused = post(bob, "limited")  # bob's second: his own limit is 5, the address's is reached
    _assert_429(refused)
    assert "too quickly" in refused.json()["detail"]
    _assert_429(post(alice, "limited"))
    assert post(bob, "elsewhere").status_code == 201  # another address: bob himself is not blocked
    assert post(alice, "elsewhere").status_code == 201
    count = {"comments": "SELECT count(*) FROM ticket_comments", "tickets": "SELECT count(*) FROM tickets"}[kind]
    with session_scope() as s:  # the refused ones were not saved (the factory's two tickets + 5 accepted)
        assert s.execute(text(count)).scalar() == (5 if kind == "comments" else 2 + 5)


def test_limits_of_zero_switch_a_rate_limit_off(clean_db, factory, settings):
    settings(tickets_max_per_user=0, tickets_max_per_address=0)
    user = factory.user()
    with client_at("198.51.100.41") as api:
        for _ in range(5):
            r = api.post("/api/tickets", json={"title": "Again", "description": "x"}, headers=factory.headers(user))
            assert r.status_code == 201
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM throttle_counters")).scalar() == 0
