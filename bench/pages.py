"""Benchmark 4: first pages on the at-scale data set, server-side (service calls) and over HTTP.

In-process (server time): the moderator's queue page (list_queue with the queue page's filters: active,
assigned to me, 25 a page) for a moderator with 10,000 assigned tickets; the admin's ticket list
(list_tickets, 20 a page) over all 200,000; and the change markers those live pages poll every second.
Over HTTP (the production server): GET /api/tickets as the admin and the moderator, and the queue order.
Baselines in the same run: a primary-key lookup of a ticket (server side) and GET /api/health (HTTP: the same
app, auth-free, one SELECT 1).
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.harness import log, ratio, summary_ms
from bench.plans import explain_call, time_calls


def run(*, data: dict[str, Any], app_url: str | None, repeat: int) -> dict[str, Any]:
    import httpx

    from ticketing_app.db import get_engine, session_scope
    from ticketing_app.models import Ticket, User
    from ticketing_app.schemas import TicketFilters
    from ticketing_app.security import create_access_token
    from ticketing_app.services import reports, tickets

    busy_id, admin_id = data["busy_moderator_id"], data["admin_id"]
    queue_filters = TicketFilters(active=True, assigned="me", limit=25)
    list_filters = TicketFilters(limit=20)
    rng = random.Random(5)

    def as_user(user_id: int, fn: Any) -> Any:
        def call(_: int = 0) -> Any:
            with session_scope() as session:
                return fn(session, session.get(User, user_id))

        return call

    cases = {
        "moderator_queue": as_user(busy_id, lambda s, u: tickets.list_queue(s, u, queue_filters)),
        "moderator_list": as_user(busy_id, lambda s, u: tickets.list_tickets(s, u, list_filters)),
        "admin_list": as_user(admin_id, lambda s, u: tickets.list_tickets(s, u, list_filters)),
        "admin_queue_all": as_user(
            admin_id, lambda s, u: tickets.list_queue(s, u, TicketFilters(active=True, assigned="any", limit=25))
        ),
        "moderator_queue_marker": as_user(busy_id, lambda s, u: tickets.change_marker(s, u, filters=queue_filters)),
        "admin_list_marker": as_user(admin_id, lambda s, u: tickets.change_marker(s, u)),
        # Statistics over every ticket, the job queue's counts over every job and the newest mails.
        "admin_overview": as_user(admin_id, reports.admin_overview),
    }

    def pk_lookup(_: int) -> None:
        with session_scope() as session:
            session.get(Ticket, rng.randint(1, data["tickets"]))

    baseline = time_calls(pk_lookup, repeat=repeat * 2, warmup=10)
    server: dict[str, Any] = {}
    for name, call in cases.items():
        server[name] = time_calls(call, repeat=repeat)
        server[name]["ratio_p50_over_pk_lookup"] = ratio(server[name]["p50_ms"], baseline["p50_ms"], 1)
        log(f"pages: {name}: p50 {server[name]['p50_ms']} ms, p99 {server[name]['p99_ms']} ms")
    totals = {"moderator_queue": cases["moderator_queue"]().total, "admin_list": cases["admin_list"]().total}

    engine = get_engine()
    plans = {
        name: explain_call(engine, cases[name])
        for name in ("moderator_queue", "admin_list", "admin_list_marker", "moderator_queue_marker", "admin_overview")
    }

    http: dict[str, Any] = {}
    if app_url:
        admin_token, mod_token = create_access_token(admin_id), create_access_token(busy_id)
        requests = {
            "health_baseline": ("/api/health", None),
            "admin_GET_api_tickets": ("/api/tickets?limit=20", admin_token),
            "moderator_GET_api_tickets": ("/api/tickets?limit=20", mod_token),
            "moderator_GET_api_tickets_queue": ("/api/tickets?order=queue&assigned=me&active=true&limit=25", mod_token),
        }
        with httpx.Client(base_url=app_url, timeout=30) as client:
            for name, (path, token) in requests.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                durations = []
                for i in range(repeat + 3):
                    started = time.perf_counter()
                    response = client.get(path, headers=headers)
                    elapsed = time.perf_counter() - started
                    response.raise_for_status()
                    if i >= 3:
                        durations.append(elapsed)
                http[name] = summary_ms(durations)
        for name in requests:
            http[name]["ratio_p50_over_health"] = ratio(http[name]["p50_ms"], http["health_baseline"]["p50_ms"], 2)

    first_pages = [server["moderator_queue"]["p50_ms"], server["admin_list"]["p50_ms"]]
    return {
        "repeat": repeat,
        "totals": totals,
        "baseline_pk_lookup": baseline,
        "server": server,
        "http": http,
        "target": "first page <= 50 ms server time (moderator queue, admin list)",
        "target_met": max(first_pages) <= 50,
        "plans": plans,
        "indexes_used": {k: sorted({ix for q in v for ix in q["indexes"]}) for k, v in plans.items()},
        "seq_scans": {k: sorted({t for q in v for t in q["seq_scans"]}) for k, v in plans.items()},
    }
