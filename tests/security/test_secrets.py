"""Secrets (JWT_SECRET, SMTP_PASSWORD, GEMINI_API_KEY) never leave the server.

In-process: the log records of sign-up, log-in, a failing Gemini call and a failing SMTP login, and the
errors stored for admins. Against the production build started with canary values (tests/security/conftest):
every file of the built bundle, the pages, every API answer an admin can get, every websocket frame while an
admin browses, and the server's log.
"""

from __future__ import annotations

import gzip
import logging
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.factories import PASSWORD
from tests.fakes.fake_gemini import FakeGeminiServer, fail
from tests.fakes.smtp_server import FakeSmtpServer
from tests.security.conftest import GEMINI_FAIL_WORD, Canaries, SecureApp, World, log_in, settle
from ticketing_app.db import session_scope
from ticketing_app.models import EmailMessage, Job, Ticket, TicketEvent

SMTP_CANARY = "smtp-inprocess-canary-7f3a9c"
GEMINI_CANARY = "gemini-inprocess-canary-4be21d"


def _no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, "a secret leaked"


# ----- in-process: log records and stored errors -----


def test_signup_and_login_log_no_secret_password_or_token(api, caplog):
    caplog.set_level(logging.DEBUG)
    from ticketing_app.config import get_settings

    r = api.post("/api/auth/signup", json={"name": "Sam", "email": "sam@example.com", "password": PASSWORD})
    token = r.json()["access_token"]
    api.post("/api/auth/login", json={"email": "sam@example.com", "password": PASSWORD})
    for _ in range(6):
        api.post("/api/auth/login", json={"email": "sam@example.com", "password": "wrong password"})
    api.post("/api/auth/login", json={"email": "ghost@example.com", "password": "wrong password"})
    api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    api.get("/api/auth/me", headers={"Authorization": f"Bearer {token[:-3]}xyz"})
    assert caplog.records, "nothing was logged at DEBUG: the check below would prove nothing"
    _no_secret(caplog.text, get_settings().resolved_jwt_secret(), PASSWORD, "wrong password", token)


def test_a_failing_gemini_call_logs_and_stores_no_key(caplog):
    from ticketing_app.ai.gemini import GeminiTriageProvider
    from ticketing_app.ai.offline import OfflineTriageProvider
    from ticketing_app.ai.select import FallbackTriage
    from ticketing_app.ai.types import TriageRequest

    caplog.set_level(logging.DEBUG)
    request = TriageRequest(title="Cannot log in", description="It fails.")
    with FakeGeminiServer() as fake:
        for response in (
            fail(500, "upstream exploded"),
            fail(400, "API key not valid. Please pass a valid API key."),
            fail(403, "permission denied"),
            fail(429, "quota"),
        ):
            fake.set_default(response)
            gemini = GeminiTriageProvider(
                api_key=GEMINI_CANARY, model="gemini-test", base_url=fake.base_url, timeout_seconds=5, attempts=1
            )
            result, error = FallbackTriage(gemini, OfflineTriageProvider(name="offline-fallback")).triage(request)
            assert result.provider == "offline-fallback" and error  # the failure was real and reported
            _no_secret(error + repr(gemini), GEMINI_CANARY)
        assert fake.requests and all(r.api_key == GEMINI_CANARY for r in fake.requests)  # the key was used...
        assert all(GEMINI_CANARY not in r.path for r in fake.requests)  # ...in a header, never in the URL
    assert "triage failed" in caplog.text
    _no_secret(caplog.text, GEMINI_CANARY)


def test_a_failing_smtp_login_logs_and_stores_no_password(clean_db, caplog, monkeypatch):
    """The welcome mail's send_email job, run by a worker of this process through the real handler; the job
    is taken in the transaction that creates it, so no other job loop on this database can get it first."""
    from aiosmtpd.smtp import AuthResult

    from ticketing_app.jobs import queue
    from ticketing_app.jobs.handlers import HANDLERS, on_dead
    from ticketing_app.jobs.worker import Worker
    from ticketing_app.mail import transport
    from ticketing_app.mail.sender import SmtpSender
    from ticketing_app.schemas import SignupIn
    from ticketing_app.services import accounts

    caplog.set_level(logging.DEBUG)
    offered: list[bytes] = []

    def refuse(server, session, envelope, mechanism, auth_data):
        offered.append(bytes(auth_data.password))
        return AuthResult(success=False, handled=False)

    worker = Worker(HANDLERS, on_dead=on_dead, worker_id="security-test-worker")
    with session_scope() as s:
        accounts.signup(s, SignupIn(name="Sam", email="sam@example.com", password=PASSWORD))  # queues the mail
        job = s.scalars(select(Job).where(Job.kind == "send_email")).one()
        job.status, job.attempts, job.locked_by = "running", 1, worker.worker_id
        claimed = queue.ClaimedJob(job.id, job.kind, dict(job.payload), 1, job.max_attempts)
    with FakeSmtpServer(authenticator=refuse, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"]) as server:
        sender = SmtpSender(
            host=server.host,
            port=server.port,
            user="mailer",
            password=SMTP_CANARY,
            security="none",
            mail_from="helpdesk@example.com",
            timeout_seconds=5,
        )
        monkeypatch.setattr(transport, "default_sender", lambda: sender)
        assert worker.run_job(claimed) in ("queued", "dead")
    assert offered == [SMTP_CANARY.encode()]  # the password was really used
    with session_scope() as s:
        stored = " ".join(
            [s.get(EmailMessage, claimed.payload["email_id"]).last_error or "", s.get(Job, claimed.id).last_error or ""]
        )
    assert "535" in stored and "535" in caplog.text  # the refusal is recorded for admins and logged...
    _no_secret(stored + caplog.text + repr(sender), SMTP_CANARY)  # ...without the password


# ----- the production build with canary secrets -----


def _files_with_secrets(root: Path, canaries: Canaries) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if not path.is_file() or "node_modules" in path.parts:
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        leaked = canaries.found_in(data.decode("utf-8", "replace"))
        if leaked:
            found[str(path.relative_to(root))] = leaked
    return found


@pytest.mark.browser
def test_the_built_bundle_and_the_pages_hold_no_secret(secure_app: SecureApp, canaries: Canaries):
    build = secure_app.web_dir / "build"
    files = [p for p in build.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".js" for p in files), f"no built bundle under {build}"
    assert _files_with_secrets(secure_app.web_dir, canaries) == {}  # build/, the compiled app/, env.json...
    for path in (
        "/",
        "/login",
        "/signup",
        "/tickets",
        "/admin",
        "/admin/users",
        "/queue",
        "/tickets/1",
        "/api/docs",
        "/api/openapi.json",
        "/env.json",
        "/_health",
        "/ping",
    ):
        r = httpx.get(secure_app.url + path, follow_redirects=True, timeout=10)
        assert canaries.found_in(r.text + str(r.headers)) == [], path


def _walk_gets(url: str, headers: dict[str, str], ticket_ids: list[int]) -> list[httpx.Response]:
    spec = httpx.get(f"{url}/api/openapi.json", timeout=10).json()
    answers = []
    for path, operations in spec["paths"].items():
        if "get" not in operations:
            continue
        concrete = [path.replace("{ticket_id}", str(t)) for t in ticket_ids] if "{ticket_id}" in path else [path]
        for target in concrete:
            for query in ("", "?limit=100", "?q=%25", "?limit=0"):
                answers.append(httpx.get(f"{url}{target}{query}", headers=headers, timeout=10))
    return answers


@pytest.mark.browser
def test_no_secret_reaches_the_browser_the_api_or_the_log(
    new_page, secure_app: SecureApp, canaries: Canaries, world: World
):
    admin = world.user("admin")
    requester_headers = world.headers("user")
    # a ticket whose Gemini call fails (the fallback's error reaches the staff timeline) and one that works
    r = httpx.post(
        f"{secure_app.url}/api/tickets",
        headers=requester_headers,
        timeout=10,
        json={"title": f"Printer {GEMINI_FAIL_WORD}", "description": "The printer is broken."},
    )
    failed_ticket = r.json()["id"]
    httpx.post(
        f"{secure_app.url}/api/tickets",
        headers=requester_headers,
        timeout=10,
        json={"title": "Charged twice", "description": "My invoice shows two charges."},
    )
    settle()  # triage (Gemini, one failing), routing, and every mail failing at the SMTP login
    with session_scope() as s:
        fallback = s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == failed_ticket, TicketEvent.kind == "triaged")
        ).one()
        assert fallback.data.get("fallback_reason"), "the Gemini failure did not happen"
        assert s.get(Ticket, failed_ticket).triage_provider == "offline-fallback"
        mail_errors = [e.last_error for e in s.scalars(select(EmailMessage)) if e.last_error]
        assert mail_errors and any("535" in e for e in mail_errors), "no mail failed at the SMTP login"
    assert secure_app.gemini.requests and {r.api_key for r in secure_app.gemini.requests} == {canaries.gemini_api_key}
    assert canaries.smtp_password.encode() in secure_app.smtp_passwords_offered

    # everything an admin can GET, and a few error answers
    admin_headers = world.headers("admin")
    answers = _walk_gets(
        secure_app.url, admin_headers, [world.ticket_id, world.other_ticket_id, failed_ticket, 999_999]
    )
    answers += [
        httpx.post(f"{secure_app.url}/api/auth/login", json={"email": admin.email, "password": "bad pw"}),
        httpx.get(f"{secure_app.url}/api/auth/me", headers={"Authorization": "Bearer forged.token.here"}),
        httpx.post(f"{secure_app.url}/api/tickets", headers=admin_headers, content=b"{not json", timeout=10),
    ]
    assert any(a.status_code == 200 and "fallback_reason" in a.text for a in answers)  # the error is served
    for answer in answers:
        assert canaries.found_in(answer.text + str(answer.headers)) == [], answer.request.url

    # every websocket frame while an admin logs in and browses
    frames: list[str] = []
    page = new_page()

    def on_socket(ws) -> None:
        ws.on("framesent", lambda payload: frames.append(str(payload)))
        ws.on("framereceived", lambda payload: frames.append(str(payload)))

    page.on("websocket", on_socket)
    log_in(page, admin.email)
    contents = []
    for path in (
        "/admin",
        "/admin/users",
        "/queue",
        "/tickets",
        f"/tickets/{failed_ticket}",
        f"/tickets/{world.ticket_id}",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(700)
        contents.append(page.content())
    page.goto("/admin")
    expect(page.get_by_text("535").first).to_be_visible(timeout=10_000)  # the SMTP error is on the page
    contents.append(page.content())
    joined = "\n".join(frames)
    assert "535" in joined and "fallback" in joined.lower(), "the error texts never reached the browser"
    assert canaries.found_in(joined) == []
    assert canaries.found_in("\n".join(contents)) == []

    # the server's log: the failures are there, the secrets are not
    time.sleep(0.5)
    log = secure_app.log_path.read_text(errors="replace")
    assert "triage failed" in log and "535" in log, "the failures were not logged: nothing to check"
    assert canaries.found_in(log) == []
