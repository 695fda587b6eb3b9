"""Benchmark 6: recovery after `kill -9` of every worker in the middle of a backlog.

Tickets are enqueued, two worker processes (bench/worker_entry.py, an 800 ms remote-like provider) start on
them, and once the first tickets are routed both are killed with SIGKILL: their jobs stay 'running' under
leases nobody renews. One worker is started again; the figure is the seconds from that restart (process
start, so its imports count) until every ticket is triaged, routed and its two e-mails delivered, with no job
left queued or running. Default lease settings (JOB_LEASE_SECONDS), so it shows what an operator gets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.harness import app_environment, child_env, log, start_child
from bench.pipeline import _readline, enqueue_tickets, reset_tables, seed_people

TARGET_S = 30.0


def _state() -> Any:
    from ticketing_app.db import get_engine

    with get_engine().connect() as conn:
        return conn.execute(
            text(
                "SELECT (SELECT count(*) FROM tickets WHERE assigned_at IS NOT NULL) AS assigned, "
                "(SELECT count(*) FROM tickets WHERE triage_status = 'done') AS triaged, "
                "(SELECT count(*) FROM emails WHERE ticket_id IS NOT NULL AND status IN ('sent', 'recorded')) "
                "AS mailed, "
                "(SELECT count(*) FROM jobs WHERE status = 'running') AS running, "
                "(SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')) AS live, "
                "(SELECT count(*) FROM jobs WHERE status = 'dead') AS dead"
            )
        ).one()


def run(*, database_url: str, data_dir: Path, log_dir: Path, quick: bool, timeout: float = 120) -> dict[str, Any]:
    from ticketing_app.config import get_settings

    tickets = 100 if quick else 400
    reset_tables()
    enqueue_tickets(tickets, seed_people())
    env = child_env(app_environment(database_url, data_dir))
    argv = [sys.executable, "-m", "bench.worker_entry", "--provider", "sleep", "--latency", "0.8"]

    def start(name: str):
        child = start_child(name, argv, env, log_dir=log_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        json.loads(_readline(child, 120))
        assert child.proc.stdin is not None
        child.proc.stdin.write("go\n")
        child.proc.stdin.flush()
        return child

    log(f"recovery: {tickets} tickets, 2 workers, killed with SIGKILL once the first tickets are routed")
    victims = [start(f"worker-recovery-victim-{i}") for i in range(2)]
    deadline = time.monotonic() + timeout
    while _state().assigned == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("recovery: the first workers routed nothing")
        time.sleep(0.05)
    for child in victims:
        child.stopping = True
        os.killpg(child.pid, signal.SIGKILL)
        child.proc.wait(timeout=10)
    at_kill = _state()
    restarted = time.monotonic()
    survivor = start_child(
        "worker-recovery-restart", argv, env, log_dir=log_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        json.loads(_readline(survivor, 120))
        ready_s = time.monotonic() - restarted
        assert survivor.proc.stdin is not None
        survivor.proc.stdin.write("go\n")
        survivor.proc.stdin.flush()
        while True:
            s = _state()
            if s.assigned >= tickets and s.triaged >= tickets and s.mailed >= 2 * tickets and s.live == 0:
                break
            if time.monotonic() - restarted > timeout:
                raise RuntimeError(f"recovery: not done {timeout:.0f} s after the restart ({s})")
            time.sleep(0.05)
        recovery_s = time.monotonic() - restarted
    finally:
        survivor.stop()
    result = {
        "tickets": tickets,
        "lease_s": get_settings().job_lease_seconds,
        "running_jobs_at_kill": at_kill.running,
        "unrouted_tickets_at_kill": tickets - at_kill.assigned,
        "restart_to_ready_s": round(ready_s, 2),
        "recovery_s": round(recovery_s, 2),
        "dead_jobs": _state().dead,
        "target": f"<= {TARGET_S:.0f} s from the restart",
        "target_met": recovery_s <= TARGET_S,
    }
    log(
        f"recovery: {result['running_jobs_at_kill']} jobs running, {result['unrouted_tickets_at_kill']} tickets "
        f"unrouted at the kill; all done {result['recovery_s']} s after the restart"
    )
    return result
