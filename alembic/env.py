"""Alembic environment: the database URL comes from the application's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from ticketing_app.db import database_url, direct_database_url
from ticketing_app.models import Base

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # A caller (ticketing_app.migrations) may hand us a connection that already holds the advisory lock.
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(direct_database_url(), poolclass=pool.NullPool)  # not through PgBouncer
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
