"""Brute force: the log-in throttle across processes, and sign-up / log-in timing with production argon2.

uvicorn is not installed here (Reflex serves with granian), so the API processes are granian workers of
`create_api` against the test database: two separate processes sharing nothing but PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.appserver import free_port as _free_port
from tests.factories import PASSWORD
from ticketing_app.config import get_settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The defaults, as in production: a guess costs what it costs an attacker there (and widens any race).
PRODUCTION_ARGON2 = {"ARGON2_TIME_COST": "3", "ARGON2_MEMORY_COST": "65536", "ARGON2_PARALLELISM": "4"}


def _start_api(database: str, log_path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "ticketing_app.api.app:create_api",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database, "WORKER_IN_APP": "false", **PRODUCTION_ARGON2},
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def two_api_processes(database: str, tmp_path_factory) -> Iterator[list[str]]:
    logs = tmp_path_factory.mktemp("api-logs")
    started = [_start_api(database, logs / f"api-{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        for proc, url in started:
            while True:
                assert proc.poll() is None, f"an API process exited; see {logs}"
                try:
                    if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"the API processes did not start; see {logs}"
                time.sleep(0.3)
        pids = {httpx.get(f"{url}/api/health").status_code and proc.pid for proc, url in started}
        assert len(pids) == 2
        yield [url for _, url in started]
    finally:
        for proc, _ in started:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _login(url: str, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/auth/login", json={"email": email, "password": password}, timeout=30)


def test_the_login_throttle_holds_across_processes(two_api_processes, factory):
    a, b = two_api_processes
    victim = factory.user()
    limit = get_settings().login_max_failures
    for attempt in range(limit):  # alternate A, B, A, B, A
        r = _login((a, b)[attempt % 2], victim.email.upper(), f"guess number {attempt}")
        assert r.status_code == 401, (attempt, r.status_code, r.text)
    for url in (a, b, b, a):
        r = _login(url, victim.email, "yet another guess")
        assert r.status_code == 429, (url, r.status_code, r.text)
        assert int(r.headers["Retry-After"]) > 0 and "Too many" in r.json()["detail"]
    # once throttled, even the right password waits, on either process
    assert _login(a, victim.email, PASSWORD).status_code == 429
    assert _login(b, victim.email, PASSWORD).status_code == 429
    # other accounts are not affected
    other = factory.user()
    assert _login(b, other.email, PASSWORD).status_code == 200


def test_a_parallel_burst_on_two_processes_gets_no_more_guesses_than_the_limit(two_api_processes, factory):
    """Guesses fired all at once (both processes, many connections) must not slip past the throttle."""
    a, b = two_api_processes
    victim = factory.user()
    limit = get_settings().login_max_failures
    burst = 20
    ready = threading.Barrier(burst)

    def guess(i: int) -> int:
        ready.wait(timeout=30)  # all at the same moment
        return _login((a, b)[i % 2], victim.email, f"burst guess {i}").status_code

    with ThreadPoolExecutor(max_workers=burst) as pool:
        statuses = list(pool.map(guess, range(burst)))
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= limit, f"{statuses.count(401)} guesses were checked, the limit is {limit}"
    assert _login(a, victim.email, PASSWORD).status_code == 429


def test_unknown_emails_are_throttled_too(two_api_processes):
    a, b = two_api_processes
    limit = get_settings().login_max_failures
    statuses = [_login((a, b)[i % 2], "nobody-here@example.com", "guess").status_code for i in range(limit + 2)]
    assert statuses == [401] * limit + [429, 429]


# ----- timing with production argon2 -----


@pytest.fixture()
def production_argon2(monkeypatch):
    for name, value in PRODUCTION_ARGON2.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = get_settings()
    assert (settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism) == (3, 65536, 4)
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _median_seconds(call, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _close(a: float, b: float, tolerance: float = 0.30) -> bool:
    return abs(a - b) <= tolerance * max(a, b)


@pytest.mark.slow
def test_signup_takes_as_long_for_a_taken_email_as_for_a_free_one(api, factory, production_argon2, monkeypatch):
    """Sign-up hashes the password before it looks the e-mail up, so timing does not tell whether an account
    exists.

    The answer itself does: a taken e-mail gets 409 "An account with this e-mail already exists". That is a
    conscious trade-off (the sign-up page must say "e-mail taken" inline), not something this test hides.
    """
    monkeypatch.setenv("SIGNUP_MAX_PER_ADDRESS", "0")  # some 30 sign-ups from one address: over the limit
    get_settings.cache_clear()
    taken = factory.user()
    counter = iter(range(10_000))

    def signup_taken():
        r = api.post("/api/auth/signup", json={"name": "T", "email": taken.email, "password": "another password"})
        assert r.status_code == 409 and "already exists" in r.json()["detail"]

    def signup_free():
        r = api.post(
            "/api/auth/signup",
            json={"name": "F", "email": f"free{next(counter)}@example.com", "password": "another password"},
        )
        assert r.status_code == 201

    signup_free(), signup_taken()  # warm up (connections, argon2 context)
    attempts = []
    for _ in range(3):  # a loaded machine can distort one measurement; three tries at most
        taken_s, free_s = _median_seconds(signup_taken, 5), _median_seconds(signup_free, 5)
        attempts.append((taken_s, free_s))
        if _close(taken_s, free_s):
            break
    taken_s, free_s = attempts[-1]
    assert taken_s > 0.02, f"argon2 with production parameters should take a while, took {taken_s:.3f} s"
    assert _close(taken_s, free_s), f"taken {taken_s:.3f} s vs free {free_s:.3f} s (tries: {attempts})"


@pytest.mark.slow
def test_login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password(api, factory, production_argon2):
    known = factory.user()  # hashed with the cheap test parameters: the first login re-hashes it
    assert api.post("/api/auth/login", json={"email": known.email, "password": PASSWORD}).status_code == 200

    def wrong_password():
        assert api.post("/api/auth/login", json={"email": known.email, "password": "wrong pw"}).status_code in (
            401,
            429,
        )

    def unknown_email():
        assert api.post("/api/auth/login", json={"email": "ghost@example.com", "password": "wrong pw"}).status_code in (
            401,
            429,
        )

    from sqlalchemy import delete

    from ticketing_app.db import session_scope
    from ticketing_app.models import ThrottleCounter

    attempts = []
    for _ in range(3):
        with session_scope() as s:  # stay under the throttle: it would answer before hashing
            s.execute(delete(ThrottleCounter))
        wrong_s = _median_seconds(wrong_password, 4)
        with session_scope() as s:
            s.execute(delete(ThrottleCounter))
        unknown_s = _median_seconds(unknown_email, 4)
        attempts.append((wrong_s, unknown_s))
        if _close(wrong_s, unknown_s):
            break
    wrong_s, unknown_s = attempts[-1]
    assert wrong_s > 0.02 and _close(wrong_s, unknown_s), attempts
