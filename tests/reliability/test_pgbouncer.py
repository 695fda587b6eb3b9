"""Scale-out: 4 API processes and 4 workers through PgBouncer (transaction pooling) within PostgreSQL's budget.

Debian's pgbouncer runs on a free loopback port in front of the run's PostgreSQL and logs in to it as a role of
its own, so every server connection it opens is counted apart from the direct ones. The app processes reach
PostgreSQL through it (DATABASE_URL, DB_BEHIND_PGBOUNCER=true) except for what needs a session of its own:
each worker's LISTEN and the migrations' advisory lock (DATABASE_DIRECT_URL, marked with an application_name).

The web processes serve the API-only ASGI app with granian (tests/reliability/procs.py, as the load and fault
tests do): the burst goes through POST /api/tickets, which is the same FastAPI app the Reflex app mounts, with
the same engine and intake pool; four Reflex backends would each compile the UI first, minutes on two cores.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import func, make_url, select

from tests.factories import PASSWORD
from tests.reliability.procs import free_port, spawn_api, spawn_worker, stop
from ticketing_app.db import libpq_url, session_scope
from ticketing_app.models import Job, Ticket, TicketEvent

pytestmark = pytest.mark.slow

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
POOL_SIZE = 20  # PgBouncer's server connections for the app's database: all the pooled traffic of 8 processes
WEB, WORKERS, TICKETS, USERS = 4, 4, 200, 40
DIRECT_APP_NAME = "helpdesk-direct"


@dataclass(frozen=True)
class Bouncer:
    url: str  # the app's DATABASE_URL: PgBouncer
    admin: str  # PgBouncer's admin console (SHOW POOLS)
    role: str  # the role PgBouncer logs in to PostgreSQL as
    log: Path


@contextmanager
def pgbouncer(database: str, workdir: Path) -> Iterator[Bouncer]:
    """PgBouncer in transaction pooling in front of `database`'s server (a unix socket or host:port)."""
    target = make_url(database)
    role = f"helpdesk_pgb_{secrets.token_hex(3)}"
    direct = libpq_url(database)
    # Its own superuser role (the embedded server trusts local connections): its backends are PgBouncer's.
    with psycopg.connect(direct, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
    host = target.host or str(target.query.get("host", "/tmp"))
    client_user = target.username or "postgres"
    # pgbouncer refuses to run as root: then it runs as the owner of the server's socket directory (the embedded
    # server's system user, the only one let in there), which must read these files: not under pytest's 0700 tmp.
    confdir = Path(tempfile.mkdtemp(prefix="helpdesk-pgbouncer-"))
    confdir.chmod(0o755)
    (confdir / "userlist.txt").write_text(f'"{client_user}" ""\n"{role}" ""\n')
    port = free_port()
    (confdir / "pgbouncer.ini").write_text(
        f"""[databases]
helpdesk = host={host} port={target.port or 5432} dbname={target.database} user={role}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {confdir / "userlist.txt"}
admin_users = {client_user}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_db_connections = {POOL_SIZE}
reserve_pool_size = 0
max_client_conn = 1000
log_connections = 0
log_disconnections = 0
"""
    )
    for path in confdir.iterdir():
        path.chmod(0o644)
    log = workdir / "pgbouncer.log"
    command = [PGBOUNCER, str(confdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        owner = Path(host).stat().st_uid if host.startswith("/") else 0
        command[1:1] = ["-u", pwd.getpwuid(owner).pw_name if owner else "nobody"]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    bouncer = Bouncer(
        url=f"postgresql://{client_user}@127.0.0.1:{port}/helpdesk",
        admin=f"postgresql://{client_user}@127.0.0.1:{port}/pgbouncer",
        role=role,
        log=log,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with psycopg.connect(bouncer.admin, autocommit=True, connect_timeout=2) as admin:
                    admin.execute("SHOW VERSION")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield bouncer
    finally:
        stop(proc)  # SIGTERM: immediate shutdown (its clients are gone by now)
        shutil.rmtree(confdir, ignore_errors=True)
        with psycopg.connect(direct, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


class Peaks:
    """Samples PostgreSQL's backends of the app's database (through PgBouncer and direct) and PgBouncer's clients."""

    def __init__(self, database: str, bouncer: Bouncer) -> None:
        self.direct = libpq_url(database)
        self.bouncer = bouncer
        self.dbname = make_url(database).database
        self.pooled = self.app_direct = self.total = self.clients = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def counts(self, conn: psycopg.Connection) -> tuple[int, int, int]:
        row = conn.execute(
            """SELECT count(*) FILTER (WHERE usename = %s), count(*) FILTER (WHERE application_name = %s), count(*)
               FROM pg_stat_activity
               WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()""",
            (self.bouncer.role, DIRECT_APP_NAME, self.dbname),
        ).fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    def _run(self) -> None:
        with (
            psycopg.connect(self.direct, autocommit=True) as conn,
            # The admin console takes only the simple query protocol: never prepared (psycopg would after 5 runs).
            psycopg.connect(self.bouncer.admin, autocommit=True, prepare_threshold=None) as admin,
        ):
            while not self._stop.wait(0.05):
                pooled, app_direct, total = self.counts(conn)
                cursor = admin.execute("SHOW POOLS")
                names = [column.name for column in cursor.description or ()]
                pools = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                clients = sum(p["cl_active"] + p["cl_waiting"] for p in pools if p["database"] == "helpdesk")
                self.pooled, self.app_direct = max(self.pooled, pooled), max(self.app_direct, app_direct)
                self.total, self.clients = max(self.total, total), max(self.clients, clients)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


async def _submit_all(bases: list[str], tokens: list[str], count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(i: int) -> int:
            r = await client.post(
                f"{bases[i % len(bases)]}/api/tickets",
                headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"},
                json={
                    "title": f"Charged twice, order {i}",
                    "description": "My card was charged twice for one invoice.",
                },
            )
            return r.status_code

        return await asyncio.gather(*(one(i) for i in range(count)))


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


@pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="needs Debian's pgbouncer (scripts/test.sh installs it)")
def test_4_web_and_4_workers_through_pgbouncer_stay_within_the_connection_budget(factory, database, tmp_path: Path):
    factory.admin()
    moderators = [factory.user("moderator", skills=["billing"]) for _ in range(4)]
    with pgbouncer(database, tmp_path) as bouncer:
        direct = make_url(database).update_query_dict({"application_name": DIRECT_APP_NAME})
        env = {
            "DATABASE_DIRECT_URL": direct.render_as_string(hide_password=False),
            "DB_BEHIND_PGBOUNCER": "true",
            "WORKER_CONCURRENCY": "4",
        }
        workers = [spawn_worker(bouncer.url, tmp_path / f"worker{i}.log", env) for i in range(WORKERS)]
        apis = []
        try:
            for i in range(WEB):  # up to 2 x 20 intake connections each under the burst: 160 on their own
                apis.append(spawn_api(bouncer.url, tmp_path / f"web{i}.log", {**env, "DB_POOL_SIZE": "20"}))
            bases = [base for _, base in apis]
            with httpx.Client(timeout=30) as c:
                tokens = [
                    c.post(
                        f"{bases[i % WEB]}/api/auth/signup",
                        json={"name": f"User {i}", "email": f"pgb{i}@example.com", "password": PASSWORD},
                    ).json()["access_token"]
                    for i in range(USERS)
                ]
            with psycopg.connect(libpq_url(database), autocommit=True) as conn:
                # Every worker is up: migrated (its direct connection for the lock closed) and listening.
                def listening() -> bool:
                    return conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'LISTEN%%'",
                        (DIRECT_APP_NAME,),
                    ).fetchone() == (WORKERS,)

                assert _wait(listening, 60), "the workers did not all LISTEN on their direct connection"

            def all_done() -> bool:  # every ticket assigned, and its e-mails sent too
                with session_scope() as s:
                    unassigned = s.scalar(select(func.count()).select_from(Ticket).where(Ticket.assigned_at.is_(None)))
                    pending = s.scalar(select(func.count()).select_from(Job).where(Job.status != "done"))
                    return unassigned == 0 and pending == 0

            started = time.monotonic()
            with Peaks(database, bouncer) as peaks:
                statuses = asyncio.run(_submit_all(bases, tokens, TICKETS))
                submitted = time.monotonic() - started
                assert Counter(statuses) == {201: TICKETS}
                assert _wait(all_done, 90)
            drained = time.monotonic() - started
        finally:
            for proc, _ in apis:
                stop(proc)
            for w in workers:
                stop(w)
    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    for name, text in logs.items():
        for trouble in ("too many clients", "prepared statement", "Traceback"):
            assert trouble not in text, f"{trouble!r} in {name}: {text[text.find(trouble) - 1500 :][:3000]}"

    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == TICKETS
        for kind in ("triaged", "assigned"):
            per_ticket = Counter(s.scalars(select(TicketEvent.ticket_id).where(TicketEvent.kind == kind)))
            assert len(per_ticket) == TICKETS and set(per_ticket.values()) == {1}, kind
        assert s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) == 0
        # No job failed even once (a lost prepared statement or a refused connection would have: then retried).
        assert s.scalars(select(Job.last_error).where(Job.last_error.is_not(None))).all() == []
        assert set(s.scalars(select(Ticket.assigned_to_id))) == {m.id for m in moderators}

    # PostgreSQL saw PgBouncer's pool and one LISTEN connection per worker, while the 8 processes had many
    # more connections open to PgBouncer than that (more than PostgreSQL's default max_connections of 100).
    print(
        f"{TICKETS} tickets in {submitted:.1f} s, all triaged and assigned after {drained:.1f} s; peak backends:"
        f" {peaks.pooled} via PgBouncer + {peaks.app_direct} direct (the app's), {peaks.total} in all;"
        f" peak PgBouncer clients {peaks.clients}"
    )
    assert 0 < peaks.pooled <= POOL_SIZE, peaks.pooled
    assert peaks.app_direct <= WORKERS, peaks.app_direct
    assert peaks.clients > POOL_SIZE + WORKERS, "the burst never needed more connections than PostgreSQL got"
