"""Bring the schema to the newest migration, safely when several processes start at once."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from ticketing_app.config import PROJECT_ROOT
from ticketing_app.db import direct_engine

log = logging.getLogger(__name__)

# Any fixed 64-bit number: every process that migrates takes this lock first.
MIGRATION_LOCK_ID = 0x7469636B6574  # "ticket"


def alembic_config() -> Config:
    """Alembic's config pointing at the project's migrations, whatever the working directory."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    return config


def _run(engine: Engine, action: str, revision: str) -> None:
    with engine.connect() as conn:
        # Session-level advisory lock: a second process waits here, then finds nothing left to do.
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        conn.commit()
        try:
            config = alembic_config()
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            conn.commit()


def _run_direct(action: str, revision: str, engine: Engine | None) -> None:
    """The lock is session-level, so it needs a session of its own: the direct connection
    (DATABASE_DIRECT_URL), not one through PgBouncer's transaction pooling, where it would stay behind on a
    server connection that other clients then use."""
    if engine is not None:
        _run(engine, action, revision)
        return
    with direct_engine() as direct:
        _run(direct, action, revision)


def upgrade_database(revision: str = "head", engine: Engine | None = None) -> None:
    """Run `alembic upgrade` under the migration lock."""
    _run_direct("upgrade", revision, engine)
    log.info("database schema is at %s", revision)


def downgrade_database(revision: str, engine: Engine | None = None) -> None:
    """Run `alembic downgrade` under the migration lock."""
    _run_direct("downgrade", revision, engine)
