"""Ticket embeddings: computed in the background (triage job, backfill), stored in `ticket_embeddings`.

The text is the one the offline triage reads (title and description with instructions to the system and alarm
words removed), so the triage job's own forward pass is reused (ai/embedding.py keeps recent texts' vectors).
The column is pgvector's `vector(512)` where the server has pgvector and `real[]` otherwise (migration 0017);
`store_kind` says which, read once per database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from ticketing_app.ai.embedding import MODEL_NAME, Vectors, get_embedder

log = logging.getLogger(__name__)

BACKFILL_BATCH = 100


@dataclass(frozen=True)
class Store:
    """How this database keeps embeddings: pgvector (with its version) or a plain real[] column."""

    pgvector: bool
    version: str | None = None

    @property
    def iterative_scan(self) -> bool:
        """pgvector 0.8+ resumes an HNSW scan until enough rows pass a filter (hnsw.iterative_scan)."""
        if not self.version:
            return False
        major, minor = (int(part) for part in self.version.split(".")[:2])
        return (major, minor) >= (0, 8)


_KINDS: dict[str, Store] = {}  # per database URL


def store_kind(session: Session | Connection) -> Store:
    """Which form the embedding column has in the connected database (a catalogue read, then cached)."""
    url = str(session.get_bind().engine.url) if isinstance(session, Session) else str(session.engine.url)
    cached = _KINDS.get(url)
    if cached is not None:
        return cached
    row = session.execute(
        text(
            "SELECT format_type(a.atttypid, a.atttypmod) AS column_type, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector') AS version "
            "FROM pg_attribute a WHERE a.attrelid = 'ticket_embeddings'::regclass AND a.attname = 'embedding'"
        )
    ).one()
    found = Store(pgvector=str(row.column_type).startswith("vector"), version=row.version)
    _KINDS[url] = found
    return found


def forget_store_kind() -> None:
    """Read the column's form again on next use (after a migration, or in tests)."""
    _KINDS.clear()


def literal(vector: Vectors, store: Store) -> str:
    """The vector as the column's text input: '[...]' for pgvector, '{...}' for real[]."""
    body = ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32).tolist())
    return f"[{body}]" if store.pgvector else f"{{{body}}}"


def parse(value: str | Sequence[float]) -> Vectors:
    """A stored vector back into numpy (pgvector arrives as its text form, real[] as a list)."""
    if isinstance(value, str):
        return np.array([float(x) for x in value.strip("[]{}").split(",")], dtype=np.float32)
    return np.asarray(value, dtype=np.float32)


def embedding_text(title: str, description: str) -> str:
    """What is embedded: the text the offline triage reads (so its vector is computed once)."""
    from ticketing_app.ai.offline import analyse
    from ticketing_app.ai.types import TriageRequest

    return analyse(TriageRequest(title=title, description=description)).text


def embed(rows: Iterable[tuple[int, str, str]]) -> dict[int, Vectors]:
    """Vectors for (ticket id, title, description) rows, one batch."""
    rows = list(rows)
    if not rows:
        return {}
    vectors = get_embedder().encode([embedding_text(title, description) for _, title, description in rows])
    return {ticket_id: vectors[n] for n, (ticket_id, _, _) in enumerate(rows)}


def store(session: Session, vectors: dict[int, Vectors]) -> int:
    """Insert (or replace) the tickets' embeddings in the caller's transaction; returns how many."""
    if not vectors:
        return 0
    kind = store_kind(session)
    cast = "vector" if kind.pgvector else "real[]"
    session.execute(
        text(
            "INSERT INTO ticket_embeddings (ticket_id, embedding, model) "
            f"VALUES (:ticket_id, CAST(:embedding AS {cast}), :model) "
            "ON CONFLICT (ticket_id) DO UPDATE SET embedding = EXCLUDED.embedding, model = EXCLUDED.model, "
            "embedded_at = now()"
        ),
        [
            {"ticket_id": ticket_id, "embedding": literal(vector, kind), "model": MODEL_NAME}
            for ticket_id, vector in sorted(vectors.items())
        ],
    )
    return len(vectors)


def missing(session: Session, *, after_id: int = 0, limit: int = BACKFILL_BATCH) -> list[tuple[int, str, str]]:
    """(id, title, description) of tickets above `after_id` without an embedding of the current model."""
    rows = session.execute(
        text(
            "SELECT t.id, t.title, t.description FROM tickets t "
            "LEFT JOIN ticket_embeddings e ON e.ticket_id = t.id AND e.model = :model "
            "WHERE e.ticket_id IS NULL AND t.id > :after ORDER BY t.id LIMIT :limit"
        ),
        {"model": MODEL_NAME, "after": after_id, "limit": limit},
    ).all()
    return [(row.id, row.title, row.description) for row in rows]


def backfill(*, batch: int = BACKFILL_BATCH, limit: int | None = None) -> int:
    """Embed every ticket that has no embedding yet (or one of an older model), a batch per transaction.

    Safe to run while the app runs, and more than once: a ticket embedded meanwhile is simply replaced with
    the same vector. Returns how many tickets were embedded.
    """
    from ticketing_app.db import session_scope

    done, after = 0, 0
    while limit is None or done < limit:
        with session_scope() as session:
            rows = missing(session, after_id=after, limit=batch if limit is None else min(batch, limit - done))
        if not rows:
            break
        vectors = embed(rows)
        with session_scope() as session:
            # Only tickets still there (one deleted between the read and now would break the foreign key).
            alive = set(session.scalars(text("SELECT id FROM tickets WHERE id = ANY(:ids)"), {"ids": list(vectors)}))
            done += store(session, {k: v for k, v in vectors.items() if k in alive})
        after = rows[-1][0]
        log.info("embedded %s tickets (up to id %s)", done, after)
    return done
