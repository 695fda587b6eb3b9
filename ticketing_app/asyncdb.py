"""Single statements on the event loop: a small pool of autocommit psycopg connections.

Ticket intake is one SQL statement (services/tickets.create_ticket). Run through SQLAlchemy's asyncio
layer it cost a pre-ping, BEGIN and COMMIT round trip and greenlet switches around each step, a large part
of the endpoint's CPU (see bench/README.md). Here it is one round trip on an autocommit
connection, which is still atomic: one statement is one transaction.

Why not psycopg_pool: while the database is down it makes a request wait (up to its timeout) for a
background reconnect; this pool connects in the request, so a request fails at once and the API answers
503, as it does with the synchronous engine.

A connection taken from the idle list is checked before anything is sent on it: an idle connection has
nothing to read, so a readable socket means the server closed it (a restart, pg_terminate_backend) or is
about to; it is replaced, and the statement goes out once, on the fresh one. This stands in for
SQLAlchemy's pre-ping without its round trip per request. A statement is never sent twice: once it went
out, a broken connection says nothing about whether the server committed it (a ticket INSERT sent again
after its reply was lost made a duplicate ticket), so the error goes to the caller (the API answers 503).
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.rows import namedtuple_row

RECYCLE_SECONDS = 1800  # as the synchronous engine's pool_recycle
IDLE_SECONDS = 60.0  # unused this long, a connection beyond keep_idle is closed


class PoolTimeout(Exception):
    """Every connection stayed busy for the whole wait (the API answers 503)."""


class AutocommitPool:
    """Up to `size` autocommit connections for one event loop; `fetch_one` runs a statement on one.

    Beyond `keep_idle` (all of them when not given), a connection left unused for `idle_timeout` seconds
    is closed, so a quiet process does not hold its peak number of PostgreSQL connections (max_connections
    is shared by the web process and every worker, and runs out with a few workers; see bench/README.md).
    Closing them as soon as they came back, as SQLAlchemy does with overflow connections, made a busy
    pool reconnect all the time, which costs intake much of its throughput under load.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        size: int,
        timeout: float,
        keep_idle: int | None = None,
        idle_timeout: float = IDLE_SECONDS,
        connect_timeout: int = 5,
        prepare_threshold: int | None = 5,
    ) -> None:
        self._conninfo = conninfo
        self._prepare_threshold = prepare_threshold  # None behind PgBouncer (db.prepare_threshold)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._keep_idle = size if keep_idle is None else keep_idle
        self._idle_timeout = idle_timeout
        self._trim_timer: asyncio.TimerHandle | None = None
        self._slots = asyncio.Semaphore(size)
        # Most recently returned last (taken first): the ones at the front have waited longest.
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float, float]] = []  # (connection, connected, idle since)

    async def fetch_one(self, query: str, params: Mapping[str, Any]) -> Any:
        """The first row of `query` (a named tuple), or None.

        Raises PoolTimeout when no connection frees up in time, psycopg.OperationalError when the
        database cannot be reached, and psycopg's error for a failing statement.
        """
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout(f"no database connection was free within {self._timeout:g} s") from None
        try:
            connection, born = self._take_idle()
            if connection is None:
                connection, born = await self._connect(), time.monotonic()
            # From here on the statement may reach the server: whatever fails, it is never sent again.
            try:
                cursor = connection.cursor(row_factory=namedtuple_row)
                await cursor.execute(query, params)
                row = await cursor.fetchone()
            except psycopg.Error:
                self._put_back(connection, born)  # closed instead when broken or mid-transaction
                raise
            except BaseException:  # cancelled mid-statement: the connection's state is unknown
                _discard(connection)
                raise
            self._put_back(connection, born)
            return row
        finally:
            self._slots.release()

    def _take_idle(self) -> tuple[psycopg.AsyncConnection[Any] | None, float]:
        """The most recently used idle connection that still looks open (nothing sent on it yet), or None.

        One found closed by the server means the others are likely stale too (a restart): all are dropped.
        """
        while self._idle:
            connection, born, _ = self._idle.pop()
            if still_open(connection):
                return connection, born
            _discard(connection)
            self.close()
        return None, 0.0

    def close(self) -> None:
        """Close the idle connections (the pool stays usable)."""
        if self._trim_timer is not None:
            self._trim_timer.cancel()
            self._trim_timer = None
        idle, self._idle = self._idle, []
        for connection, _, _ in idle:
            _discard(connection)

    def __del__(self) -> None:
        # Dropped with its event loop (tests start many loops): close what is left, quietly.
        self.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            prepare_threshold=self._prepare_threshold,
        )

    def _put_back(self, connection: psycopg.AsyncConnection[Any], born: float) -> None:
        """Keep a connection that is idle and young enough; close any other."""
        idle = connection.info.transaction_status == TransactionStatus.IDLE
        now = time.monotonic()
        if idle and not connection.closed and now - born < RECYCLE_SECONDS:
            self._idle.append((connection, born, now))
            if len(self._idle) > self._keep_idle and self._trim_timer is None:
                self._trim_timer = asyncio.get_running_loop().call_later(self._idle_timeout, self._trim)
        else:
            _discard(connection)

    def _trim(self) -> None:
        """Close the connections beyond `keep_idle` that have been idle for `idle_timeout`; check again later
        while more than `keep_idle` remain."""
        self._trim_timer = None
        now = time.monotonic()
        while len(self._idle) > self._keep_idle and now - self._idle[0][2] >= self._idle_timeout:
            _discard(self._idle.pop(0)[0])
        if len(self._idle) > self._keep_idle:
            wait = self._idle[0][2] + self._idle_timeout - now
            self._trim_timer = asyncio.get_running_loop().call_later(wait, self._trim)


def still_open(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection can take a statement, judged without sending anything.

    Between statements the server sends nothing to an autocommit connection that does not LISTEN: anything
    to read (its FATAL message and end of stream after pg_terminate_backend or a shutdown) means it is gone.
    """
    if connection.closed or connection.broken or connection.pgconn.status != ConnStatus.OK:
        return False
    try:
        poller = select.poll()  # not select(): a busy server process has file descriptors past its 1024 limit
        poller.register(connection.pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)  # POLLHUP and POLLERR are reported whatever was asked for
    except (OSError, ValueError, psycopg.OperationalError):
        return False


def _discard(connection: psycopg.AsyncConnection[Any]) -> None:
    """Close without awaiting: libpq's PQfinish, all that AsyncConnection.close() does for a connection
    outside psycopg_pool, so it also works from __del__ once the pool's event loop is gone."""
    connection.pgconn.finish()
