"""Capture the SQL a service call runs, and EXPLAIN ANALYZE it with the same parameters."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from bench.harness import summary_ms

_INDEX = re.compile(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)")
_SEQ = re.compile(r"Seq Scan on (\w+)")
_EXEC = re.compile(r"Execution Time: ([\d.]+) ms")
_TABLE_QUERY = re.compile(r"^\s*(?:WITH|SELECT)\b.*\sFROM\s", re.IGNORECASE | re.DOTALL)


@contextmanager
def capture_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def explain(engine: Engine, statement: str, parameters: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of one captured statement, rolled back; with the indexes it used."""
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters or None)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        conn.rollback()
    found = _EXEC.search(plan)
    return {
        "sql": " ".join(statement.split()),
        "plan": plan,
        "indexes": sorted(set(_INDEX.findall(plan))),
        "seq_scans": sorted(set(_SEQ.findall(plan))),
        "execution_ms": float(found.group(1)) if found else None,
    }


def explain_call(engine: Engine, call: Callable[[], Any]) -> list[dict[str, Any]]:
    """Run `call` once, then EXPLAIN ANALYZE every table query it made (not lock calls or `now()`)."""
    with capture_sql(engine) as statements:
        call()
    return [explain(engine, sql, params) for sql, params in statements if _TABLE_QUERY.match(sql)]


def time_calls(call: Callable[[int], Any], repeat: int, warmup: int = 3) -> dict[str, Any]:
    """Durations of `call(i)` (each its own unit of work), summarised in ms."""
    for i in range(warmup):
        call(i)
    durations = []
    for i in range(repeat):
        started = time.perf_counter()
        call(i)
        durations.append(time.perf_counter() - started)
    return summary_ms(durations)
