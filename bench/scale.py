"""The at-scale data set shared by the routing and pages benchmarks, bulk-loaded (COPY + INSERT ... SELECT).

5,000 moderators with 3-8 random skills from a vocabulary of 200, 1,000 requesters, one admin, and 200,000
open tickets (70% open, 30% in progress) spread over the moderators, of which 10,000 belong to one "busy"
moderator. Then VACUUM ANALYZE, as autovacuum would leave a table in steady state.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import text

from bench.harness import log
from bench.pipeline import MODERATOR_PROFILES, reset_tables

CATEGORIES = [
    "account_access",
    "billing",
    "bug",
    "performance",
    "data",
    "integration",
    "security",
    "feature_request",
    "how_to",
    "other",
]


def vocabulary(size: int = 200) -> list[str]:
    real = sorted({s for profile in MODERATOR_PROFILES for s in profile} | {"python", "js", "kubernetes", "sql"})
    return real + [f"product-area-{i:03d}" for i in range(size - len(real))]


def load(*, moderators: int, requesters: int, tickets: int, busy_tickets: int, seed: int = 7) -> dict[str, Any]:
    from ticketing_app.db import get_engine
    from ticketing_app.skills import canonical_skill

    rng = random.Random(seed)
    vocab = vocabulary()
    began = time.perf_counter()
    reset_tables()
    engine = get_engine()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        columns = "name, email, password_hash, role, skills, skill_keys, is_active, last_assigned_at"
        with cursor.copy(f"COPY users ({columns}) FROM STDIN") as copy:
            copy.write_row(("Bench Admin", "admin@bench.example", "!bench", "admin", [], [], True, None))
            for i in range(moderators):
                skills = rng.sample(vocab, rng.randint(3, 8))
                keys = sorted({canonical_skill(s) for s in skills})
                copy.write_row(
                    (f"Moderator {i}", f"mod{i}@bench.example", "!bench", "moderator", skills, keys, True, None)
                )
            for i in range(requesters):
                copy.write_row((f"Requester {i}", f"req{i}@bench.example", "!bench", "user", [], [], True, None))
        ids = conn.execute(
            text(
                "SELECT min(id) FILTER (WHERE role = 'moderator'), max(id) FILTER (WHERE role = 'moderator'), "
                "min(id) FILTER (WHERE role = 'user'), max(id) FILTER (WHERE role = 'user'), "
                "min(id) FILTER (WHERE role = 'admin') FROM users"
            )
        ).one()
        mod_lo, mod_hi, req_lo, req_hi, admin_id = ids
        busy_id = mod_lo
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(
            text("""
            INSERT INTO tickets (title, description, status, priority, category, required_skills, summary,
                                 triage_status, triage_provider, triaged_at, assigned_to_id, assignment_reason,
                                 assigned_at, due_at, created_by_id, created_at, updated_at)
            SELECT 'Generated ticket ' || g, 'Body of generated ticket ' || g || ' for the scale benchmark.',
                   CASE WHEN random() < 0.7 THEN 'open' ELSE 'in_progress' END,
                   p.priority, (CAST(:cats AS text[]))[1 + (g % 10)],
                   ARRAY[(CAST(:vocab AS text[]))[1 + floor(random() * :nv)::int]],
                   'Generated', 'done', 'bench', c.created_at,
                   CASE WHEN g <= :busy THEN :busy_id
                        ELSE :mod_lo + floor(random() * (:mod_hi - :mod_lo + 1))::int END,
                   'bench data', c.created_at,
                   c.created_at + CASE p.priority WHEN 'high' THEN interval '4 hours'
                                                  WHEN 'medium' THEN interval '24 hours'
                                                  ELSE interval '72 hours' END,
                   :req_lo + floor(random() * (:req_hi - :req_lo + 1))::int,
                   c.created_at, c.created_at
            FROM generate_series(1, :n) AS g
            CROSS JOIN LATERAL (SELECT (ARRAY['low', 'medium', 'high'])[1 + floor(random() * 3 + g * 0)::int]
                                       AS priority) AS p
            CROSS JOIN LATERAL (SELECT now() - random() * interval '90 days' + g * interval '0 seconds'
                                       AS created_at) AS c
            """),
            {
                "cats": CATEGORIES,
                "vocab": vocab,
                "nv": len(vocab),
                "busy": busy_tickets,
                "busy_id": busy_id,
                "mod_lo": mod_lo,
                "mod_hi": mod_hi,
                "req_lo": req_lo,
                "req_hi": req_hi,
                "n": tickets,
            },
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE users"))
        conn.execute(text("VACUUM ANALYZE tickets"))
    loaded = time.perf_counter() - began
    log(f"scale data: {moderators} moderators, {tickets} tickets loaded in {loaded:.1f} s")
    return {
        "moderators": moderators,
        "requesters": requesters,
        "tickets": tickets,
        "busy_moderator_tickets": busy_tickets,
        "skill_vocabulary": len(vocab),
        "load_s": round(loaded, 2),
        "busy_moderator_id": busy_id,
        "admin_id": admin_id,
        "vocab": vocab,
    }
