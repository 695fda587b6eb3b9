"""Database connection: the configured PostgreSQL, or an embedded one under the data dir."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ticketing_app import embedded_db
from ticketing_app.asyncdb import AutocommitPool
from ticketing_app.config import Settings, get_settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
_async_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AutocommitPool] = weakref.WeakKeyDictionary()
POOL_TIMEOUT_SECONDS = 10  # longest wait for a free connection before answering 503
_embedded_server = None  # keeps the embedded server handle alive for the process


def to_sqlalchemy_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the URL was written with."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def embedded_database_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL server kept under `data_dir/pg`."""
    global _embedded_server
    _embedded_server = embedded_db.start(data_dir)
    return str(_embedded_server.get_uri())


def database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL of the application database."""
    settings = settings or get_settings()
    if settings.database_url:
        return to_sqlalchemy_url(settings.database_url)
    return to_sqlalchemy_url(embedded_database_url(settings.app_data_dir.resolve()))


def direct_database_url(settings: Settings | None = None) -> str:
    """The SQLAlchemy URL for connections that need a PostgreSQL session of their own (LISTEN, session-level
    advisory locks): DATABASE_DIRECT_URL, which bypasses PgBouncer; unset, the application database's."""
    settings = settings or get_settings()
    if settings.database_direct_url:
        return to_sqlalchemy_url(settings.database_direct_url)
    return database_url(settings)


def prepare_threshold(settings: Settings | None = None) -> int | None:
    """psycopg's prepare_threshold for pooled connections: None (never prepare) behind PgBouncer's transaction
    pooling, where consecutive transactions may run on different server connections, so a statement
    prepared on one is missing on the next ("prepared statement \"_pg3_0\" does not exist"); else
    psycopg's default (prepare a statement after its fifth execution)."""
    settings = settings or get_settings()
    return None if settings.db_behind_pgbouncer else 5


def get_engine() -> Engine:
    """The process-wide engine, created on first use."""
    global _engine, _session_factory
    with _lock:
        if _engine is None:
            settings = get_settings()
            _engine = create_engine(database_url(settings), **_pool_options(settings))
            _session_factory = sessionmaker(_engine, expire_on_commit=False)
        return _engine


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_size,
        "pool_pre_ping": True,  # survive a database restart without a 500 storm
        "pool_recycle": 1800,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
        "connect_args": {"connect_timeout": 5, "prepare_threshold": prepare_threshold(settings)},
    }


@contextmanager
def direct_engine() -> Iterator[Engine]:
    """An engine on the direct URL for one task that needs a session (the migrations' advisory lock).

    Without DATABASE_DIRECT_URL it is the process-wide engine; with it, a throwaway one without a pool, so
    a process holds a direct connection only while it migrates.
    """
    settings = get_settings()
    if not settings.database_direct_url:
        yield get_engine()
        return
    engine = create_engine(direct_database_url(settings), poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        yield engine
    finally:
        engine.dispose()


def libpq_url(url: str) -> str:
    """`url` as libpq (psycopg itself) reads it: without SQLAlchemy's driver name."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def get_autocommit_pool() -> AutocommitPool:
    """The single-statement pool (asyncdb.py) of the running event loop.

    Its cap is the engine's (pool_size + max_overflow): with fewer connections than concurrent intake
    requests, requests queue for a connection while the event loop has CPU to spare. It keeps pool_size of
    them open while idle; the others close after a minute unused.

    One per loop, because asyncio primitives and the connections in use belong to the loop that made
    them: a server has one loop; tests start several.
    """
    loop = asyncio.get_running_loop()
    with _lock:
        pool = _async_pools.get(loop)
        if pool is None:
            settings = get_settings()
            url = libpq_url(database_url(settings))
            pool = AutocommitPool(
                url,
                size=2 * settings.db_pool_size,
                keep_idle=settings.db_pool_size,
                timeout=POOL_TIMEOUT_SECONDS,
                prepare_threshold=prepare_threshold(settings),
            )
            _async_pools[loop] = pool
        return pool


def reset_engine() -> None:
    """Drop the engines (tests and forked workers)."""
    global _engine, _session_factory
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _session_factory = None
        _async_pools.clear()  # their connections close when collected (closing needs their own loop)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    get_engine()
    assert _session_factory is not None
    session = _session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping() -> bool:
    """True when the database answers."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        log.warning("database ping failed", exc_info=True)
        return False
