"""The single-statement pool behind ticket intake (ticketing_app/asyncdb.py), on the real database."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import warnings

import psycopg
import pytest
from sqlalchemy import text

from ticketing_app.asyncdb import AutocommitPool, PoolTimeout
from ticketing_app.db import database_url, get_engine, libpq_url

SCRATCH = "CREATE TABLE IF NOT EXISTS pool_probe (n int PRIMARY KEY)"


@pytest.fixture()
def conninfo(clean_db: str) -> str:
    with get_engine().begin() as conn:
        conn.execute(text(SCRATCH))
        conn.execute(text("TRUNCATE pool_probe"))
    yield libpq_url(database_url())
    with get_engine().begin() as conn:
        conn.execute(text("DROP TABLE pool_probe"))


def _probe_rows() -> list[int]:
    with get_engine().connect() as conn:
        return list(conn.execute(text("SELECT n FROM pool_probe ORDER BY n")).scalars())


def _terminate(pid: int) -> None:
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar() is True
    time.sleep(0.2)  # let the server close the socket before the pool touches it


def test_statements_share_one_connection_and_commit_on_their_own(conninfo: str):
    async def scenario() -> tuple[int, int]:
        pool = AutocommitPool(conninfo, size=2, timeout=5)
        first = await pool.fetch_one("INSERT INTO pool_probe VALUES (%(n)s) RETURNING pg_backend_pid()", {"n": 1})
        second = await pool.fetch_one("INSERT INTO pool_probe VALUES (%(n)s) RETURNING pg_backend_pid()", {"n": 2})
        pool.close()
        return first[0], second[0]

    first_pid, second_pid = asyncio.run(scenario())
    assert first_pid == second_pid
    assert _probe_rows() == [1, 2]  # committed without any COMMIT: autocommit


def test_a_failing_statement_raises_and_the_connection_stays_usable(conninfo: str):
    async def scenario() -> tuple[int, int]:
        pool = AutocommitPool(conninfo, size=1, timeout=5)
        before = (await pool.fetch_one("INSERT INTO pool_probe VALUES (1) RETURNING pg_backend_pid()", {}))[0]
        with pytest.raises(psycopg.errors.UniqueViolation):
            await pool.fetch_one("INSERT INTO pool_probe VALUES (1)", {})
        after = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]
        pool.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert before == after
    assert _probe_rows() == [1]


def test_a_connection_closed_by_the_server_is_replaced_and_the_statement_runs_once(conninfo: str):
    async def scenario() -> tuple[int, int, int]:
        pool = AutocommitPool(conninfo, size=2, timeout=5)
        old_pid = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]
        await asyncio.to_thread(_terminate, old_pid)  # what a database restart does to idle connections
        row = await pool.fetch_one("INSERT INTO pool_probe VALUES (7) RETURNING pg_backend_pid()", {})
        again = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]
        pool.close()
        return old_pid, row[0], again

    old_pid, new_pid, again = asyncio.run(scenario())
    assert new_pid != old_pid and again == new_pid
    assert _probe_rows() == [7]


def test_an_unreachable_database_fails_at_once():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def scenario() -> float:
        pool = AutocommitPool(f"postgresql://nobody@127.0.0.1:{port}/none", size=1, timeout=5)
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            await pool.fetch_one("SELECT 1", {})
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 2  # not after the 5 s pool timeout: the API answers 503 promptly


def test_when_every_connection_is_busy_a_caller_waits_then_gets_pool_timeout(conninfo: str):
    async def scenario() -> tuple[str, object]:
        pool = AutocommitPool(conninfo, size=1, timeout=0.3)
        slow = asyncio.create_task(pool.fetch_one("SELECT pg_sleep(1.5)", {}))
        await asyncio.sleep(0.2)
        with pytest.raises(PoolTimeout) as raised:
            await pool.fetch_one("SELECT 1", {})
        await slow
        freed = await pool.fetch_one("SELECT 'free again'", {})
        pool.close()
        return str(raised.value), freed[0]

    message, freed = asyncio.run(scenario())
    assert "no database connection was free" in message
    assert freed == "free again"


def test_a_statement_cancelled_midway_does_not_leave_a_busy_connection_in_the_pool(conninfo: str):
    async def scenario() -> tuple[int, int, int]:
        pool = AutocommitPool(conninfo, size=1, timeout=5)
        pid = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]
        task = asyncio.create_task(pool.fetch_one("SELECT pg_sleep(5)", {}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        started = time.monotonic()
        after = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]
        took = time.monotonic() - started
        pool.close()
        return pid, after, took

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pid, after, took = asyncio.run(scenario())
        gc.collect()
    assert after != pid  # the interrupted connection was not reused
    assert took < 2  # and the next statement did not wait behind the sleeping one
    # It was closed, not just dropped (psycopg warns about a connection collected while open).
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def _backends_of(pids: set[int]) -> int:
    with get_engine().connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": list(pids)}
        ).scalar_one()


def test_after_a_burst_connections_beyond_keep_idle_close_once_idle_for_the_timeout(conninfo: str):
    """Six concurrent statements open six connections. While the load goes on they are all reused (closing
    them on return made a busy pool reconnect constantly); once idle for the timeout, two stay open."""

    async def burst(pool: AutocommitPool) -> set[int]:
        rows = await asyncio.gather(*(pool.fetch_one("SELECT pg_backend_pid(), pg_sleep(0.05)", {}) for _ in range(6)))
        return {row[0] for row in rows}

    async def scenario() -> tuple[set[int], set[int], int, int]:
        pool = AutocommitPool(conninfo, size=6, keep_idle=2, idle_timeout=0.5, timeout=5)
        first = await burst(pool)
        again: set[int] = set()
        for _ in range(5):
            again |= await burst(pool)
        open_while_busy = _backends_of(first)
        await asyncio.sleep(1.0)  # past the timeout (backends also need a moment to leave pg_stat_activity)
        open_after = _backends_of(first)
        pool.close()
        return first, again, open_while_busy, open_after

    first, again, open_while_busy, open_after = asyncio.run(scenario())
    assert len(first) == 6
    assert again == first  # no reconnects under load
    assert open_while_busy == 6
    assert open_after == 2


def test_a_statement_whose_reply_is_lost_is_not_sent_again(conninfo: str, monkeypatch):
    """The server committed the INSERT, then the connection broke before its reply arrived: sending it again
    on a fresh connection made a duplicate ticket. The caller gets the error (the API answers 503)."""
    real_execute = psycopg.AsyncCursor.execute

    async def execute_then_lose_the_reply(self, *args, **kwargs):
        await real_execute(self, *args, **kwargs)  # reached the server and committed (autocommit)
        if "pool_probe" in str(args[0]):
            _terminate(self.connection.info.backend_pid)
            for _ in range(5):  # reading the reply meets the FATAL message, then the end of the stream
                try:
                    self.connection.pgconn.consume_input()
                except psycopg.OperationalError:
                    break
            assert self.connection.broken
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return self

    async def scenario() -> tuple[int, int]:
        pool = AutocommitPool(conninfo, size=2, timeout=5)
        old_pid = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]  # a reused connection, as in intake
        monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute_then_lose_the_reply)
        with pytest.raises(psycopg.OperationalError):
            await pool.fetch_one("INSERT INTO pool_probe VALUES (5) RETURNING n", {})
        monkeypatch.undo()
        new_pid = (await pool.fetch_one("SELECT pg_backend_pid()", {}))[0]  # the pool goes on, reconnected
        pool.close()
        return old_pid, new_pid

    old_pid, new_pid = asyncio.run(scenario())
    assert _probe_rows() == [5]  # once
    assert new_pid != old_pid


def test_an_idle_connection_is_judged_without_sending_anything(conninfo: str):
    """The decision to use another connection is taken before the statement goes out: a healthy idle
    connection passes, one the server closed (no statement in flight) does not."""
    from ticketing_app.asyncdb import still_open

    async def scenario() -> tuple[bool, bool, bool]:
        connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        healthy = still_open(connection)
        await asyncio.to_thread(_terminate, connection.info.backend_pid)
        terminated = still_open(connection)
        closed_copy = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        await closed_copy.close()
        closed = still_open(closed_copy)
        connection.pgconn.finish()
        return healthy, terminated, closed

    assert asyncio.run(scenario()) == (True, False, False)
