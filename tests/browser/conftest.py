"""Browser tests: the app served as in production (`reflex run --env prod`) on the test database, driven by
Playwright in Debian's Chromium. Gemini is the real client pointed at a local fake that answers slowly, so
pages can be seen changing live from "AI is triaging…" to the result.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.appserver import free_port, serve_production_app
from tests.fakes.fake_gemini import FakeGeminiServer, keyword_triage_responder

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TRIAGE_DELAY_SECONDS = 2.5


# Package scope: the server (and its in-process job worker) must stop when the browser tests end, or it
# would take the jobs of the integration tests that run after it on the same database.
@pytest.fixture(scope="package")
def fake_gemini() -> Iterator[FakeGeminiServer]:
    responder = keyword_triage_responder()

    def slow(request):
        return dataclasses.replace(responder(request), delay=TRIAGE_DELAY_SECONDS)

    with FakeGeminiServer(default=slow) as fake:
        yield fake


REDIS = "/usr/bin/redis-server"


@pytest.fixture(scope="package")
def redis_url() -> Iterator[str]:
    """A throwaway Redis, so the app runs as in a scaled deployment: several backend workers sharing state."""
    assert Path(REDIS).exists(), "Debian's redis-server is missing: run ./scripts/test.sh, which installs it"
    port = free_port()
    proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="package")
def app_url(database: str, fake_gemini: FakeGeminiServer, redis_url: str, tmp_path_factory) -> Iterator[str]:
    """Build and serve the app in production mode with Redis (several workers); yields its base URL."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run ./scripts/test.sh, which installs it"
    env = {
        "DATABASE_URL": database,
        "WORKER_IN_APP": "true",
        "WORKER_POLL_SECONDS": "1",
        "GEMINI_API_KEY": "test-gemini-key-not-secret",
        "GEMINI_BASE_URL": fake_gemini.base_url,
        "GEMINI_TIMEOUT_SECONDS": "10",
        "APP_DATA_DIR": str(tmp_path_factory.mktemp("appdata")),
        "REFLEX_REDIS_URL": redis_url,
    }
    with serve_production_app(env, ROOT / "test-artifacts" / "app-server.log") as (proc, url):
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
        print(f"app serving with {len(children)} child processes (Redis state manager)")
        yield url


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as actions do (contexts' default, below), not Playwright's 5 s: on a loaded 2-core
    # machine a page opened right after logging in can take longer than that to hydrate with the session, and
    # every test that checks a page after a goto was then one slow moment away from failing.
    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def new_page(browser, app_url, clean_db):
    """Open a fresh browser context (its own storage) per person in a test."""
    contexts = []

    def make(width: int = 1280, height: int = 860, dark: bool = False):
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme="dark" if dark else "light", base_url=app_url
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def wait_for_jobs_to_finish(timeout: float = 40) -> None:
    """No background job due or running: the next test's emptying of the tables cannot race a triage in
    flight (ids restart at 1, so a finishing job could meet the next test's ticket 1)."""
    from sqlalchemy import text

    from ticketing_app.db import session_scope

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as s:
            busy = s.execute(
                text("SELECT count(*) FROM jobs WHERE status = 'running' OR (status = 'queued' AND run_after <= now())")
            ).scalar_one()
        if not busy:
            return
        time.sleep(0.5)
    raise AssertionError(f"background jobs still busy after {timeout:.0f} s")


def shot(page, name: str) -> Path:
    """Save a screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
