"""Migration 0010 on a server without the extensions search needs: it stops with a message saying what to do."""

from __future__ import annotations

import importlib.util

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations

from ticketing_app.config import PROJECT_ROOT


def _migration():
    path = PROJECT_ROOT / "alembic" / "versions" / "0010_accounts_and_search.py"
    spec = importlib.util.spec_from_file_location("migration_0010", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_missing_extension_fails_with_a_clear_message(database):
    from ticketing_app.db import get_engine

    module = _migration()
    with get_engine().connect() as conn, Operations.context(MigrationContext.configure(conn)):
        with pytest.raises(RuntimeError, match=r"does not offer.*postgresql-contrib"):
            module._require_extension("no_such_extension_here")
        assert module._require_extension("unaccent")  # present: its schema


def test_the_search_functions_fold_accents_and_space_out_cjk(database):
    from sqlalchemy import text

    from ticketing_app.db import session_scope

    with session_scope() as s:
        folded = s.scalar(text("SELECT helpdesk_search_text('Café Größe 東京タワー')"))
        vector = s.scalar(text("SELECT to_tsvector('simple', helpdesk_search_text('Crème brûlée'))"))
    assert folded.split() == ["Cafe", "Grosse", "東", "京", "タ", "ワ", "ー"]
    assert vector == "'brulee':2 'creme':1"
