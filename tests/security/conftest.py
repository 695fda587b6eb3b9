"""Hostile-input tests: every role in one world, helpers, and a production-mode app server with canary secrets.

The browser tests here reuse the `browser` and `new_page` fixtures of tests/browser (imported below), but
`app_url` is overridden: it points at this folder's own server, started with recognisable values for
JWT_SECRET, SMTP_PASSWORD and GEMINI_API_KEY, built in its own Reflex web directory (so it never races a
build of tests/browser or of another engineer in the shared `.web`) and serving its own database (so its job
loop and the one of tests/browser's server, which stays up for the whole session, never take each other's
jobs). This folder's browser tests run after its other tests and use that database for their data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.appserver import serve_production_app
from tests.browser.conftest import CHROMIUM, browser, new_page  # noqa: F401 - fixtures re-exported
from tests.fakes.fake_gemini import FakeGeminiServer, RecordedRequest, ScriptedResponse, fail, keyword_triage_responder
from tests.fakes.smtp_server import FakeSmtpServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SERVER_LOG = ARTIFACTS / "security-app-server.log"
# The roles every endpoint and every UI event is tried with.
ROLES = ("anonymous", "user", "other_user", "moderator", "assigned_moderator", "admin")
# A ticket whose title carries this word makes the fake Gemini fail (the fallback path logs the error).
GEMINI_FAIL_WORD = "gemini-breaks-here"


@dataclass
class World:
    """The requester `user` filed `ticket_id`, routed to `assigned_moderator`; `other_user` filed their own."""

    people: dict[str, Any]
    ticket_id: int
    other_ticket_id: int
    factory: Any

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        return self.factory.headers(self.people[role])

    def user(self, role: str) -> Any:
        return self.people[role]


@pytest.fixture()
def world(factory) -> World:
    return build_world(factory)


def reset_database() -> None:
    """Empty every table. DELETE, not the TRUNCATE of `clean_db`: on these few rows it is much faster, and the
    tests here reset often (ids then keep counting, which nothing here relies on)."""
    from ticketing_app.db import get_engine
    from ticketing_app.models import Base

    with get_engine().begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):  # children first
            conn.execute(table.delete())


def build_world(factory) -> World:
    """Built through the services, like tests/factories.py, but in one transaction (it runs for hundreds of
    tests here)."""
    from sqlalchemy import delete

    from tests.factories import PASSWORD
    from ticketing_app.db import session_scope
    from ticketing_app.models import Job, Ticket, User
    from ticketing_app.schemas import SignupIn, TicketCreate, UserUpdate
    from ticketing_app.services import accounts, tickets

    def person(s, name: str, email: str, role: str = "user", skills: list[str] | None = None) -> User:
        user, _ = accounts.signup(s, SignupIn(name=name, email=email, password=PASSWORD))
        if role != "user":
            accounts.update_user(s, admin, UserUpdate(email=email, role=role, skills=skills or []))
        return user

    with session_scope() as s:
        admin, _ = accounts.ensure_admin(s, "admin@example.com", PASSWORD, name="Ada Admin")
        people = {
            "admin": admin,
            "user": person(s, "Rita Requester", "rita@example.com"),
            "other_user": person(s, "Otto Other", "otto@example.com"),
            "assigned_moderator": person(s, "Moe Assigned", "moe@example.com", "moderator", ["billing"]),
            "moderator": person(s, "Mia Bystander", "mia@example.com", "moderator", ["billing"]),
        }
        ticket = s.get(
            Ticket,
            tickets.create_ticket(
                s,
                people["user"],
                TicketCreate(title="Charged twice", description="Two charges on my card, card ends 4242."),
            ).id,
        )
        other = tickets.create_ticket(
            s, people["other_user"], TicketCreate(title="Otto's private issue", description="Only Otto may read this.")
        )
        ticket.assigned_to_id = people["assigned_moderator"].id
        # No queued work: a job loop running on this database (the browser tests' app server stays up for the
        # whole session) would otherwise triage and route these tickets while a test compares before/after.
        s.execute(delete(Job))
        s.flush()
        ids = {role: u.id for role, u in people.items()}
        ticket_id, other_id = ticket.id, other.id
    with session_scope() as s:
        people = {role: s.get(User, user_id) for role, user_id in ids.items()}
    return World(people=people, ticket_id=ticket_id, other_ticket_id=other_id, factory=factory)


# ----- the production-mode server with canary secrets -----


@dataclass(frozen=True)
class Canaries:
    jwt_secret: str
    smtp_password: str
    gemini_api_key: str

    def all(self) -> dict[str, str]:
        return {
            "JWT_SECRET": self.jwt_secret,
            "SMTP_PASSWORD": self.smtp_password,
            "GEMINI_API_KEY": self.gemini_api_key,
        }

    def found_in(self, text: str) -> list[str]:
        """Names of the secrets that occur in `text`."""
        return [name for name, value in self.all().items() if value in text]


@pytest.fixture(scope="session")
def canaries() -> Canaries:
    # The app server signs with the test run's JWT_SECRET (already random and recognisable), so tokens minted
    # by the factory work against it; the other two exist only in the server's environment.
    return Canaries(
        jwt_secret=os.environ["JWT_SECRET"],
        smtp_password="smtp-canary-" + secrets.token_hex(12),
        gemini_api_key="gemini-canary-" + secrets.token_hex(12),
    )


@dataclass
class SecureApp:
    url: str
    web_dir: Path
    log_path: Path
    gemini: FakeGeminiServer
    smtp: FakeSmtpServer
    smtp_passwords_offered: list[bytes]
    database_url: str


def _gemini_responder():
    keyword = keyword_triage_responder()

    def respond(request: RecordedRequest) -> ScriptedResponse:
        if GEMINI_FAIL_WORD in request.contents_text:
            return fail(500, "upstream exploded")
        return keyword(request)

    return respond


def _prepare_web_dir(target: Path) -> None:
    """A private Reflex web directory: a copy of the project's `.web` without its build (node_modules
    included, so no package install is needed); Reflex initialises a fresh one when there is none."""
    source = ROOT / ".web"

    def skip_outputs(directory: str, names: list[str]) -> set[str]:  # top level only: packages have build/ dirs
        return {"build", ".react-router", "backend"} & set(names) if Path(directory) == source else set()

    if source.is_dir() and (source / "node_modules").is_dir():
        shutil.copytree(source, target, symlinks=True, ignore=skip_outputs)


def _use_database(url: str) -> None:
    """Point this process's engine at `url` (the settings and the engine are read again on next use)."""
    from ticketing_app import db
    from ticketing_app.config import get_settings

    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    db.reset_engine()


@pytest.fixture(scope="package")
def secure_database(database: str) -> Iterator[str]:
    """A database of its own for the canary server: its job loop then never takes the jobs of other tests
    (nor does the browser tests' server take its jobs), whatever else runs in this session."""
    from sqlalchemy import create_engine, make_url

    from ticketing_app import db
    from ticketing_app.migrations import upgrade_database

    main = make_url(db.to_sqlalchemy_url(database))
    name = f"{main.database}_secure"
    admin = create_engine(main, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = main.set(database=name).render_as_string(hide_password=False)
    try:
        _use_database(url)
        upgrade_database()
        _use_database(database)
        yield url
    finally:
        _use_database(database)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(autouse=True)
def _browser_tests_use_the_secure_database(request) -> Iterator[None]:
    """Browser tests here talk to the canary server, so their data (world, factory, checks) lives in its
    database; every other test keeps the run's database."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    url = request.getfixturevalue("secure_app").database_url
    main = request.getfixturevalue("database")
    _use_database(url)
    try:
        yield
    finally:
        _use_database(main)


def pytest_collection_modifyitems(session, config, items) -> None:
    """This folder's browser tests run after its other tests (in the same slots of the run), so the canary
    server (package-scoped) is up only while they run, never alongside the in-process tests."""
    here = Path(__file__).parent
    slots = [n for n, item in enumerate(items) if here in Path(str(item.path)).parents]
    mine = [items[n] for n in slots]
    ordered = [i for i in mine if i.get_closest_marker("browser") is None] + [
        i for i in mine if i.get_closest_marker("browser") is not None
    ]
    for n, item in zip(slots, ordered, strict=True):
        items[n] = item


@pytest.fixture(scope="package")
def secure_app(secure_database: str, canaries: Canaries, tmp_path_factory) -> Iterator[SecureApp]:
    from aiosmtpd.smtp import AuthResult

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run ./scripts/test.sh, which installs it"
    work = tmp_path_factory.mktemp("secure-app")
    web_dir = work / ".web"
    _prepare_web_dir(web_dir)

    offered: list[bytes] = []

    def refuse_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        offered.append(bytes(auth_data.password))
        return AuthResult(success=False, handled=False)  # every mail fails at login: an error to log and show

    gemini = FakeGeminiServer(default=_gemini_responder()).start()
    smtp = FakeSmtpServer(authenticator=refuse_login, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    smtp.start()
    env = {
        "DATABASE_URL": secure_database,
        "REFLEX_WEB_WORKDIR": str(web_dir),
        "REFLEX_STATES_WORKDIR": str(work / ".states"),
        "WORKER_IN_APP": "true",
        "WORKER_POLL_SECONDS": "1",
        "JOB_MAX_ATTEMPTS": "2",
        "JOB_BACKOFF_BASE_SECONDS": "0.5",
        "JOB_BACKOFF_MAX_SECONDS": "1",
        "GEMINI_BASE_URL": gemini.base_url,
        "GEMINI_TIMEOUT_SECONDS": "5",
        "GEMINI_ATTEMPTS": "1",
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_USER": "helpdesk-mailer",
        "SMTP_SECURITY": "none",
        "SMTP_TIMEOUT_SECONDS": "5",
        "APP_DATA_DIR": str(work / "appdata"),
        **canaries.all(),
    }
    try:
        with serve_production_app(env, SERVER_LOG, timeout=300, extra_args=("--loglevel", "info")) as (_, url):
            yield SecureApp(
                url=url,
                web_dir=web_dir,
                log_path=SERVER_LOG,
                gemini=gemini,
                smtp=smtp,
                smtp_passwords_offered=offered,
                database_url=secure_database,
            )
    finally:
        gemini.stop()
        smtp.stop()


@pytest.fixture(scope="package")
def app_url(secure_app: SecureApp) -> str:
    """Overrides tests/browser's app_url for this folder: `new_page` opens pages on the canary server."""
    return secure_app.url


# ----- browser helpers -----


def log_in(page, email: str, password: str | None = None) -> None:
    import re

    from tests.factories import PASSWORD

    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password or PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/(tickets|queue|admin)/?$"))


class SocketTap:
    """Routes the page's Reflex websocket through the test: records every frame both ways, and can send
    events the page never would (what a hostile client can do with its own socket)."""

    def __init__(self, page) -> None:
        import re

        self.sent: list[str] = []
        self.received: list[str] = []
        self._server = None
        page.route_web_socket(re.compile(r".*/_event.*"), self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()
        self._server = server

        def to_server(message) -> None:
            self.sent.append(message if isinstance(message, str) else message.decode("utf-8", "replace"))
            server.send(message)

        def to_page(message) -> None:
            self.received.append(message if isinstance(message, str) else message.decode("utf-8", "replace"))
            ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)

    def text(self) -> str:
        return "\n".join(self.sent + self.received)

    def forge(self, state_cls, handler: str, payload: dict, path: str, query: dict | None = None) -> None:
        """Send `handler` of `state_cls` with `payload` as if the page at `path` had fired it."""
        import json

        assert self._server is not None, "the page has no websocket yet"
        router_data: dict = {"pathname": path, "asPath": path}
        if query:
            router_data["query"] = query
        event = {"name": f"{state_cls.get_full_name()}.{handler}", "payload": payload, "router_data": router_data}
        self._server.send("42/_event," + json.dumps(["event", event]))


def settle(timeout: float = 30.0) -> None:
    """Wait until the app server's job loop has nothing queued or running (triage, routing, mails).

    First the work the server's periodic repair (`reconcile`, every 30 s) would queue is queued now: build_world
    leaves its tickets without jobs, and that repair firing in the middle of a before/after comparison would
    triage and route them there."""
    from sqlalchemy import func, select

    from ticketing_app.db import session_scope
    from ticketing_app.jobs.handlers import reconcile
    from ticketing_app.models import Job

    deadline = time.monotonic() + timeout
    while True:
        # The repair first, then the count: counted first, a job the server's own repair queued in between
        # would be missed (ours then finds nothing left to repair) and run in the middle of the test.
        repaired = any(reconcile().values())
        with session_scope() as s:
            busy = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(("queued", "running"))))
        if not busy and not repaired:
            return
        assert time.monotonic() < deadline, f"{busy} job(s) still queued or running after {timeout} s"
        time.sleep(0.3)
