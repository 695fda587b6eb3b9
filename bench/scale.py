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


def load(
    *, moderators: int, requesters: int, tickets: int, busy_tickets: int, jobs: int = 0, seed: int = 7
) -> dict[str, Any]:
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
        if jobs:
            _load_history(conn, tickets=tickets, jobs=jobs)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("users", "tickets", "jobs", "emails"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    loaded = time.perf_counter() - began
    log(f"scale data: {moderators} moderators, {tickets} tickets, {jobs} jobs loaded in {loaded:.1f} s")
    return {
        "moderators": moderators,
        "requesters": requesters,
        "tickets": tickets,
        "busy_moderator_tickets": busy_tickets,
        "jobs": jobs,
        "skill_vocabulary": len(vocab),
        "load_s": round(loaded, 2),
        "busy_moderator_id": busy_id,
        "admin_id": admin_id,
        "vocab": vocab,
    }


def _load_history(conn: Any, *, tickets: int, jobs: int) -> None:
    """The job and mail history of a busy installation: `jobs` rows over 90 days (97% done, 1% dead, 2% queued
    or running) and two sent mails per ticket, as the admin overview and retention see them."""
    conn.execute(
        text("""
        INSERT INTO jobs (kind, payload, dedupe_key, status, attempts, max_attempts, run_after, last_error,
                          created_at, updated_at, finished_at)
        SELECT (ARRAY['triage', 'assign', 'send_email', 'send_email', 'send_email'])[1 + g % 5],
               jsonb_build_object('ticket_id', 1 + g % :tickets), 'bench:' || g,
               CASE WHEN r < 0.97 THEN 'done' WHEN r < 0.98 THEN 'dead' WHEN r < 0.995 THEN 'queued'
                    ELSE 'running' END,
               1, 6, t, CASE WHEN r >= 0.97 AND r < 0.98 THEN 'bench: dead-lettered' END, t, t,
               CASE WHEN r < 0.98 THEN t END
        FROM generate_series(1, :jobs) AS g
        CROSS JOIN LATERAL (SELECT random() + g * 0 AS r,
                                   now() - random() * interval '90 days' + g * interval '0 seconds' AS t) AS x
        """),
        {"jobs": jobs, "tickets": tickets},
    )
    conn.execute(
        text("""
        INSERT INTO emails (kind, to_address, subject, body_text, body_html, status, transport, message_id,
                            attempts, ticket_id, created_at, sent_at)
        SELECT 'ticket_received', 'req@bench.example', 'Bench mail ' || g, 'body', '<p>body</p>', 'sent', 'smtp',
               '<bench-' || g || '@bench.example>', 1, 1 + g % :tickets, t, t
        FROM generate_series(1, :emails) AS g
        CROSS JOIN LATERAL (SELECT now() - random() * interval '90 days' + g * interval '0 seconds' AS t) AS x
        """),
        {"emails": 2 * tickets, "tickets": tickets},
    )
