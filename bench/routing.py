"""Benchmark 3: routing decisions (services.routing.choose_assignee) on the at-scale data set.

Each decision runs in its own transaction exactly as the assign job calls it (advisory lock, best
moderator query, loading the moderator), then is rolled back so the data set does not drift. Required
skills: 1-3 random skills of the vocabulary; 5% name a skill nobody has (the admin fall-back path).
Baseline in the same run: a primary-key lookup of a user in its own transaction (session.get).
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.harness import log, ratio, summary_ms
from bench.plans import explain_call, time_calls

UNKNOWN_SKILL = "underwater basket weaving"


def run(*, data: dict[str, Any], decisions: int) -> dict[str, Any]:
    from ticketing_app.db import get_engine, session_scope
    from ticketing_app.models import User
    from ticketing_app.services.routing import choose_assignee

    rng = random.Random(11)
    vocab = data["vocab"]
    first_user, last_user = 1, data["moderators"] + data["requesters"] + 1

    def required() -> list[str]:
        if rng.random() < 0.05:
            return [UNKNOWN_SKILL]
        return rng.sample(vocab, rng.choice((1, 1, 2, 2, 3)))

    def pk_lookup(_: int) -> None:
        with session_scope() as session:
            session.get(User, rng.randint(first_user, last_user))

    baseline = time_calls(pk_lookup, repeat=max(200, decisions // 2), warmup=20)

    by_count: dict[str, list[float]] = {}
    all_durations: list[float] = []
    assigned_to_admin = 0
    for _ in range(20):  # warm-up: connections, plans, caches
        with session_scope() as session:
            choose_assignee(session, required())
            session.rollback()
    for _ in range(decisions):
        skills = required()
        with session_scope() as session:
            started = time.perf_counter()
            decision = choose_assignee(session, skills)
            elapsed = time.perf_counter() - started
            assigned_to_admin += decision.assignee is not None and decision.assignee.role == "admin"
            session.rollback()
        key = "fallback" if skills == [UNKNOWN_SKILL] else f"{len(skills)}_skills"
        by_count.setdefault(key, []).append(elapsed)
        all_durations.append(elapsed)
    overall = summary_ms(all_durations)
    log(f"routing: p50 {overall['p50_ms']} ms, p99 {overall['p99_ms']} ms over {decisions} decisions")

    engine = get_engine()
    plans = {}
    for name, skills in (
        ("two_skills", vocab[:1] + vocab[40:41]),
        ("one_skill", [vocab[60]]),
        ("fallback_admin", [UNKNOWN_SKILL]),
    ):

        def call(skills: list[str] = skills) -> None:
            with session_scope() as session:
                choose_assignee(session, skills)
                session.rollback()

        plans[name] = explain_call(engine, call)
    indexes = sorted({ix for p in plans.values() for q in p for ix in q["indexes"]})
    seq = sorted({t for p in plans.values() for q in p for t in q["seq_scans"]})
    return {
        "decisions": decisions,
        "decision_time": overall,
        "by_required_skills": {k: summary_ms(v) for k, v in sorted(by_count.items())},
        "admin_fallbacks": assigned_to_admin,
        "baseline_pk_lookup": baseline,
        "ratio_p50_over_pk_lookup_p50": ratio(overall["p50_ms"], baseline["p50_ms"], 2),
        "ratio_p99_over_pk_lookup_p50": ratio(overall["p99_ms"], baseline["p50_ms"], 2),
        "target": "p99 <= 10 ms",
        "target_met": overall["p99_ms"] <= 10,
        "indexes_used": indexes,
        "seq_scans": seq,
        "plans": plans,
    }
