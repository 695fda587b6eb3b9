"""Benchmark 1: ticket intake over HTTP (POST /api/tickets on the production server), against two baselines.

For each client count, three closed-loop runs of the same length, in rotating order:
  app       POST /api/tickets on `reflex run --env prod --single-port` (the in-app worker is OFF:
            WORKER_IN_APP=false, so only intake is measured; the triage jobs just queue up),
  baseline  (a) POST /insert on a bare ASGI endpoint under granian doing one INSERT (bench/baseline_app.py),
  pgbench   (b) pgbench running a one-row INSERT script into the same table with the same number of clients.
HTTP load comes from bench/loadgen.py in a separate process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import CpuMeter, child_env, log, ratio, summary_ms

TICKET = {
    "title": "Cannot log in after enabling MFA on my account",
    "description": (
        "Since this morning the login page rejects my one-time code from the authenticator app. "
        "I enabled two-factor authentication yesterday and it worked once. Clock on the phone is correct. "
        "Tried two browsers and cleared cookies; same error: 'code invalid'. Please help, invoices are due."
    ),
}


def seed_requester() -> tuple[int, str]:
    """A requester account and its bearer token (created through the service, as sign-up does)."""
    from ticketing_app.db import session_scope
    from ticketing_app.schemas import SignupIn
    from ticketing_app.services import accounts

    with session_scope() as session:
        user, token = accounts.signup(
            session, SignupIn(name="Bench Requester", email="requester@bench.example", password="bench-password-1")
        )
        return user.id, token


def seed_identities(count: int) -> list[dict[str, str]]:
    """`count` more requesters, each with its own bearer token and client address (X-Forwarded-For, which the
    app trusts from 127.0.0.1 in the bench): load as many people send it, each with their own throttle rows."""
    from ticketing_app.db import session_scope
    from ticketing_app.models import User
    from ticketing_app.security import create_access_token

    with session_scope() as session:
        users = [
            User(name=f"Bench Requester {i}", email=f"requester{i}@bench.example", password_hash="!bench")
            for i in range(count)
        ]
        session.add_all(users)
        session.flush()
        return [
            {"Authorization": f"Bearer {create_access_token(u.id)}", "X-Forwarded-For": f"198.51.100.{i + 1}"}
            for i, u in enumerate(users)
        ]


def run_loadgen(
    url: str,
    *,
    clients: int,
    duration: float,
    warmup: float,
    headers: dict[str, str],
    env: dict[str, str],
    identities: Path | None = None,
) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--method",
        "POST",
        "--body",
        json.dumps(TICKET),
        "--clients",
        str(clients),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    if identities is not None:
        argv += ["--identities", str(identities)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=duration + warmup + 120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_pgbench(
    pg: Any, database: str, user_id: int, *, clients: int, duration: float, warmup: float, out_dir: Path
) -> dict[str, Any]:
    """Raw single-row INSERT throughput; latency percentiles from pgbench's per-transaction log."""
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / "insert.sql"
    title = TICKET["title"].replace("'", "''")
    description = TICKET["description"].replace("'", "''")
    script.write_text(
        "INSERT INTO tickets (title, description, created_by_id, required_skills) "
        f"VALUES ('{title}', '{description}', {user_id}, '{{}}');\n"
    )
    prefix = out_dir / f"pgbench_c{clients}"
    for old in out_dir.glob(f"{prefix.name}.*"):
        old.unlink()
    threads = min(clients, 2)
    argv = [
        str(pg.bin_dir / "pgbench"),
        "-n",
        "-h",
        pg.socket_dir,
        "-p",
        str(pg.port),
        "-U",
        "postgres",
        "-c",
        str(clients),
        "-j",
        str(threads),
        "-T",
        str(round(warmup + duration)),
        "-f",
        str(script),
        "-l",
        f"--log-prefix={prefix}",
        database,
    ]
    started = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + warmup + 120, cwd=out_dir)
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed: {proc.stderr[-2000:]}")
    window_from = started + warmup
    window_to = window_from + duration
    latencies: list[float] = []
    for path in out_dir.glob(f"{prefix.name}.*"):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) < 6:
                continue
            finished = int(fields[4]) + int(fields[5]) / 1e6
            if window_from <= finished <= window_to:
                latencies.append(int(fields[2]) / 1e6)
    # pgbench's -T includes connection set-up; count only the measurement window's transactions.
    return {
        "clients": clients,
        "duration_s": duration,
        "requests": len(latencies),
        "ok": len(latencies),
        "requests_per_s": round(len(latencies) / duration, 1),
        "latency": summary_ms(latencies),
        "errors": 0,
        "pgbench_tps_line": next((ln.strip() for ln in proc.stdout.splitlines() if ln.startswith("tps")), ""),
    }


def run(
    *,
    pg: Any,
    database: str,
    app_url: str,
    baseline_url: str,
    user_id: int,
    token: str,
    client_levels: list[int],
    duration: float,
    warmup: float,
    out_dir: Path,
    sampler: Any,
    app_processes: Any,
    baseline_processes: Any,
) -> dict[str, Any]:
    env = child_env({})
    headers = {"Authorization": f"Bearer {token}"}
    levels: dict[str, Any] = {}
    # "app": every client is its own requester on its own address, as real load is (each has its own throttle
    # counter rows); "app_one_user": all clients share one account and one address, so every request updates the
    # same two counter rows (the worst case for the counters, not the target).
    identities_file = out_dir / "intake_identities.json"
    identities_file.write_text(json.dumps(seed_identities(max(client_levels))), encoding="utf-8")
    order = ["app", "baseline_a", "pgbench_b", "app_one_user"]
    for index, clients in enumerate(client_levels):
        sampler.set_phase(f"intake_c{clients}")
        results: dict[str, Any] = {}
        rotated = order[index % len(order) :] + order[: index % len(order)]  # so no target always runs first
        for target in rotated:
            log(f"intake: {target} with {clients} client(s) for {duration:.0f} s")
            server = {
                "app": app_processes,
                "app_one_user": app_processes,
                "baseline_a": baseline_processes,
                "pgbench_b": lambda: [],
            }[target]
            meter = CpuMeter(server=server, postgres=pg.processes)
            meter.start()
            if target in ("app", "app_one_user"):
                results[target] = run_loadgen(
                    f"{app_url}/api/tickets",
                    clients=clients,
                    duration=duration,
                    warmup=warmup,
                    headers=headers if target == "app_one_user" else {},
                    env=env,
                    identities=identities_file if target == "app" else None,
                )
            elif target == "baseline_a":
                results[target] = run_loadgen(
                    f"{baseline_url}/insert", clients=clients, duration=duration, warmup=warmup, headers={}, env=env
                )
            else:
                results[target] = run_pgbench(
                    pg,
                    database,
                    user_id,
                    clients=clients,
                    duration=duration,
                    warmup=warmup,
                    out_dir=out_dir / "pgbench",
                )
            cpu = meter.stop()
            done = max(results[target]["requests"] * (duration + warmup) / duration, 1)  # warm-up ran too
            results[target]["server_cpu_ms_per_request"] = round(cpu["server"] * 1000 / done, 3)
            results[target]["postgres_cpu_ms_per_request"] = round(cpu["postgres"] * 1000 / done, 3)
        app, base_a, base_b = results["app"], results["baseline_a"], results["pgbench_b"]
        results["ratios"] = {
            "rps_app_over_a": ratio(app["requests_per_s"], base_a["requests_per_s"]),
            "rps_app_over_b": ratio(app["requests_per_s"], base_b["requests_per_s"]),
            "rps_a_over_b": ratio(base_a["requests_per_s"], base_b["requests_per_s"]),
            "p50_app_over_a": ratio(app["latency"].get("p50_ms"), base_a["latency"].get("p50_ms")),
            "p99_app_over_a": ratio(app["latency"].get("p99_ms"), base_a["latency"].get("p99_ms")),
            "rps_one_user_over_a": ratio(results["app_one_user"]["requests_per_s"], base_a["requests_per_s"]),
        }
        results["target_intake_ge_50pct_of_a"] = (results["ratios"]["rps_app_over_a"] or 0) >= 0.5
        levels[str(clients)] = results
    worst = min((lv["ratios"]["rps_app_over_a"] or 0) for lv in levels.values())
    return {
        "worker_in_app": False,
        "load_generator": "bench/loadgen.py: asyncio keep-alive HTTP/1.1 client, separate process (no wrk)",
        "server": "reflex run --env prod --single-port (granian, ASGI, 1 worker process without Redis)",
        "baseline_a": "bench/baseline_app.py under granian --interface asgi --workers 1: one INSERT per request "
        "on the event loop, through the autocommit pool intake uses",
        "baseline_b": "pgbench -n -f insert.sql (one-row INSERT into tickets), same client count, -j min(clients,2)",
        "duration_s": duration,
        "warmup_s": warmup,
        "levels": levels,
        "worst_ratio_app_over_a": worst,
        "target": "intake >= 50% of baseline (a) at every client count",
        "target_met": worst >= 0.5,
        "p99_note": "percentiles are nearest-rank over every request of the measured window",
    }
