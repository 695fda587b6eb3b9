"""Migrations go up to head and all the way down again on a fresh database."""

import secrets

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text

from ticketing_app.migrations import alembic_config, downgrade_database, upgrade_database

TABLES = {
    "users",
    "tickets",
    "ticket_comments",
    "ticket_events",
    "jobs",
    "emails",
    "revoked_tokens",
    "throttle_counters",
    "attachments",
}


def test_upgrade_downgrade_upgrade(database):
    url = make_url(database)
    name = f"migrations_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url.set(database=name))
    try:
        upgrade_database(engine=engine)
        assert TABLES <= set(inspect(engine).get_table_names())
        upgrade_database(engine=engine)  # a second start finds nothing to do
        downgrade_database("0001_core_domain", engine=engine)
        assert "jobs" not in inspect(engine).get_table_names()
        downgrade_database("base", engine=engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(engine=engine)
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_models_match_the_migrations(database):
    """The SQLAlchemy models and the migrated schema agree (no autogenerate diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ticketing_app.db import get_engine
    from ticketing_app.models import Base

    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Index/constraint naming differences on functional indexes are expected; columns and tables must match.
    relevant = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
    assert relevant == []


def test_several_processes_migrating_at_once(database):
    """Four processes start together on an empty database: the advisory lock lets one migrate, the rest wait."""
    import os
    import subprocess
    import sys

    url = make_url(database)
    name = f"concurrent_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "DATABASE_URL": url.set(database=name).render_as_string(hide_password=False)}
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "ticketing_app.cli", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
        engine = create_engine(url.set(database=name))
        assert TABLES <= set(inspect(engine).get_table_names())
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
