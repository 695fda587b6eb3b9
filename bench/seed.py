"""Bulk data for the benchmarks that need many rows (search, similar): people, and indexes built after a load."""

from __future__ import annotations

from sqlalchemy import Connection, text


def seed_people(conn: Connection, domain: str, *, moderators: int, requesters: int) -> tuple[int, int, int]:
    """One admin, `moderators` moderators and `requesters` requesters at `domain` (no usable password), in one
    statement; returns the admin's id and the first moderator's and requester's (each group's ids follow on)."""
    conn.execute(
        text("""
        INSERT INTO users (name, email, password_hash, role, skills, skill_keys, is_active, email_verified_at)
        SELECT 'Bench Admin', 'admin@' || :domain, '!bench', 'admin', '{}'::text[], '{}'::text[], true, now()
        UNION ALL
        SELECT 'Moderator ' || g, 'mod' || g || '@' || :domain, '!bench', 'moderator', '{}', '{}', true, now()
        FROM generate_series(1, :mods) AS g
        UNION ALL
        SELECT 'Requester ' || g, 'req' || g || '@' || :domain, '!bench', 'user', '{}', '{}', true, now()
        FROM generate_series(1, :reqs) AS g
        """),
        {"domain": domain, "mods": moderators, "reqs": requesters},
    )
    admin_id, mod_lo, req_lo = conn.execute(
        text(
            "SELECT min(id) FILTER (WHERE role = 'admin'), min(id) FILTER (WHERE role = 'moderator'), "
            "min(id) FILTER (WHERE role = 'user') FROM users"
        )
    ).one()
    return admin_id, mod_lo, req_lo


def drop_indexes(conn: Connection, names: tuple[str, ...]) -> list[str]:
    """Drop these indexes before a bulk load and return their definitions (as the migrations made them) for
    `build_indexes` afterwards: building once is much faster than updating them row by row."""
    definitions = list(
        conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY(:names)"),
            {"names": list(names)},
        ).scalars()
    )
    missing = set(names) - {d.split(" INDEX ", 1)[1].split(" ", 1)[0] for d in definitions}
    assert not missing, f"indexes the bench expects are not in the schema: {sorted(missing)}"
    for name in names:
        conn.execute(text(f"DROP INDEX {name}"))
    return definitions


def build_indexes(conn: Connection, definitions: list[str]) -> None:
    for definition in definitions:
        conn.execute(text(definition))
