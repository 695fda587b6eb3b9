"""`python -m bench [--quick] [--only intake,pipeline,recovery,routing,pages,inbound,attachments,triage,search,
similar]`: run the benchmarks, print a table, save JSON.

Full mode writes bench/results.json; --quick writes bench/out/results-quick.json (so a quick check never
replaces the figures bench/README.md quotes). Everything runs against a throwaway embedded PostgreSQL in a
temporary directory, removed at the end; logs go to bench/out/logs/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import harness as h
from bench import report

ALL = ("intake", "pipeline", "recovery", "routing", "pages", "inbound", "attachments", "triage", "search", "similar")

FULL = {
    "intake_clients": [1, 8, 32],
    "intake_duration": 10.0,
    "intake_warmup": 2.0,
    "moderators": 5000,
    "requesters": 1000,
    "tickets": 200_000,
    "busy_tickets": 10_000,
    "jobs": 1_000_000,
    "decisions": 2000,
    "page_repeat": 50,
    "inbound_mails": 1000,
    "attachment_seconds": 5.0,
    "search_tickets": 1_000_000,
    "search_repeat": 40,
    "similar_tickets": 200_000,
    "similar_repeat": 200,
}
QUICK = {
    "intake_clients": [1, 8, 32],
    "intake_duration": 2.0,
    "intake_warmup": 1.0,
    "moderators": 500,
    "requesters": 100,
    "tickets": 20_000,
    "busy_tickets": 1_000,
    "jobs": 100_000,
    "decisions": 300,
    "page_repeat": 15,
    "inbound_mails": 200,
    "attachment_seconds": 1.5,
    "search_tickets": 50_000,
    "search_repeat": 15,
    "similar_tickets": 10_000,
    "similar_repeat": 50,
}


def _skip_build_output(web_root: Path):
    """Leave out .web/build (the old build output) only: node_modules has folders named build that it needs."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        return ["build"] if Path(directory) == web_root and "build" in names else []

    return ignore


def start_app(database_url: str, data_dir: Path, log_dir: Path) -> tuple[h.Child, str, float]:
    """The app as production serves it: `reflex run --env prod --single-port`, the in-app worker off.

    It builds into bench/out/web (seeded from the project's .web when present), never the developer's .web.
    """
    web = h.OUT_DIR / "web"
    if not web.exists() and (h.ROOT / ".web").exists():
        h.log("copying .web into bench/out/web (first run only)")
        shutil.copytree(h.ROOT / ".web", web, symlinks=True, ignore=_skip_build_output(h.ROOT / ".web"))
    port = h.free_port()
    url = f"http://localhost:{port}"
    env = h.child_env(
        h.app_environment(
            database_url,
            data_dir,
            PORT=str(port),
            REFLEX_API_URL=url,
            APP_BASE_URL=url,
            REFLEX_WEB_WORKDIR=str(web),
            REFLEX_STATES_WORKDIR=str(h.OUT_DIR / "states"),
        )
    )
    started = time.monotonic()
    child = h.start_child(
        "app", [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port"], env, log_dir=log_dir
    )
    h.wait_http(f"{url}/api/health", timeout=300, child=child)
    h.wait_http(f"{url}/login", timeout=120, child=child)
    return child, url, time.monotonic() - started


def start_baseline(database_url: str, data_dir: Path, log_dir: Path, user_id: int) -> tuple[h.Child, str]:
    port = h.free_port()
    env = h.child_env(h.app_environment(database_url, data_dir, BENCH_USER_ID=str(user_id)))
    child = h.start_child(
        "baseline_a",
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ws",
            "bench.baseline_app:app",
        ],
        env,
        log_dir=log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    h.wait_http(f"{url}/health", timeout=60, child=child)
    return child, url


def calibrate(pg: h.BenchPostgres, database: str, seconds: float, out_dir: Path) -> dict[str, Any]:
    """Machine speed right now: a pure-Python loop, and pgbench's commit latency (1 client, one-row INSERT)."""
    from bench.intake import run_pgbench
    from ticketing_app.db import session_scope
    from ticketing_app.models import User

    with session_scope() as session:
        user = User(
            name="Calibration", email=f"calibration-{time.time_ns()}@bench.example", password_hash="!", role="user"
        )
        session.add(user)
        session.flush()
        user_id = user.id
    bench = run_pgbench(pg, database, user_id, clients=1, duration=seconds, warmup=1, out_dir=out_dir)
    return {
        "python_loop_iter_per_ms": h.cpu_calibration(),
        "pgbench_1client_insert_tps": bench["requests_per_s"],
        "commit_ms_p50": bench["latency"].get("p50_ms"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under 3 minutes)")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory and the (stopped) database's data directory"
    )
    args = parser.parse_args(argv)
    # SIGTERM (and SIGINT, which background shells ignore) end the run through the cleanup below: workers,
    # servers and the throwaway PostgreSQL are stopped, never left behind.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = QUICK if args.quick else FULL
    out = args.out or (h.OUT_DIR / "results-quick.json" if args.quick else h.BENCH_DIR / "results.json")
    log_dir = h.OUT_DIR / "logs"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    began = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "command": "python -m bench"
        + (" --quick" if args.quick else "")
        + ("" if only == list(ALL) else f" --only {','.join(only)}"),
        "sizes": sizes,
        "machine": h.machine_info(),
        "git": _git_head(),
    }
    sampler = h.RssSampler()
    app = baseline = None
    with h.workdir(keep=args.keep) as wd:
        pg = h.BenchPostgres(wd, keep=args.keep)
        try:
            pg.start()
            database = "helpdesk_bench"
            url = pg.create_database(database)
            data_dir = wd / "data"
            h.use_database_in_process(url, data_dir)
            from ticketing_app.migrations import upgrade_database

            upgrade_database()
            results["postgres"] = pg.settings()
            results["calibration_start"] = calibrate(pg, database, 2 if args.quick else 5, h.OUT_DIR / "pgbench")
            sampler.start()
            if "intake" in only or "pages" in only:
                h.log("starting the app: reflex run --env prod --single-port (WORKER_IN_APP=false)")
                app, app_url, boot_s = start_app(url, data_dir, log_dir)
                results["app_start_s"] = round(boot_s, 1)
                sampler.watch("app", app.tree)
                _watch_exit(app)
            if "intake" in only:
                from bench import intake

                sampler.set_phase("intake_setup")
                user_id, token = intake.seed_requester()
                baseline, baseline_url = start_baseline(url, data_dir, log_dir, user_id)
                sampler.watch("baseline_a", baseline.tree)
                results["intake"] = intake.run(
                    pg=pg,
                    database=database,
                    app_url=app_url,
                    baseline_url=baseline_url,
                    user_id=user_id,
                    token=token,
                    client_levels=sizes["intake_clients"],
                    duration=sizes["intake_duration"],
                    warmup=sizes["intake_warmup"],
                    out_dir=h.OUT_DIR,
                    sampler=sampler,
                    app_processes=app.tree,
                    baseline_processes=baseline.tree,
                )
                baseline.stop()
                sampler.unwatch("baseline_a")
            if "pipeline" in only:
                from bench import pipeline

                sampler.set_phase("pipeline")
                results["pipeline"] = pipeline.run(
                    database_url=url,
                    data_dir=data_dir,
                    log_dir=log_dir,
                    sampler=sampler,
                    quick=args.quick,
                    commit_ms=results["calibration_start"]["commit_ms_p50"],
                )
            if "recovery" in only:
                from bench import recovery

                sampler.set_phase("recovery")
                results["recovery"] = recovery.run(
                    database_url=url, data_dir=data_dir, log_dir=log_dir, quick=args.quick
                )
            if "inbound" in only:
                from bench import inbound

                sampler.set_phase("inbound")
                results["inbound"] = inbound.run(
                    count=sizes["inbound_mails"], commit_ms=results["calibration_start"]["commit_ms_p50"]
                )
            if "attachments" in only:
                from bench import attachments

                sampler.set_phase("attachments")
                results["attachments"] = attachments.run(
                    database_url=url, data_dir=data_dir, log_dir=log_dir, seconds=sizes["attachment_seconds"]
                )
            if "routing" in only or "pages" in only:
                from bench import scale

                sampler.set_phase("scale_load")
                data = scale.load(
                    moderators=sizes["moderators"],
                    requesters=sizes["requesters"],
                    tickets=sizes["tickets"],
                    busy_tickets=sizes["busy_tickets"],
                    jobs=sizes["jobs"],
                )
                results["scale_data"] = {k: v for k, v in data.items() if k != "vocab"}
                if "routing" in only:
                    from bench import routing

                    sampler.set_phase("routing")
                    results["routing"] = routing.run(data=data, decisions=sizes["decisions"])
                if "pages" in only:
                    from bench import pages

                    sampler.set_phase("pages")
                    results["pages"] = pages.run(
                        data=data, app_url=app_url if app else None, repeat=sizes["page_repeat"]
                    )
            if "triage" in only:
                from bench import triage

                sampler.set_phase("triage")
                h.log("offline triage: eval-triage on the held-out split, in its own process")
                results["triage"] = triage.eval_triage()
            if "search" in only:  # last: it replaces the data set with its own
                from bench import search

                sampler.set_phase("search")
                results["search"] = search.run(tickets=sizes["search_tickets"], repeat=sizes["search_repeat"])
            if "similar" in only:  # replaces the data set with its own, like search
                from bench import similar

                sampler.set_phase("similar")
                results["similar"] = similar.run(tickets=sizes["similar_tickets"], repeat=sizes["similar_repeat"])
            sampler.set_phase("end")
            results["calibration_end"] = calibrate(pg, database, 2 if args.quick else 5, h.OUT_DIR / "pgbench")
        finally:
            sampler.stop()
            for child in (baseline, app):
                if child is not None:
                    child.stop()
            from ticketing_app.db import reset_engine

            reset_engine()
            pg.stop()
    results["memory"] = report.memory_summary(results, sampler)
    results["runtime_s"] = round(time.monotonic() - began, 1)
    h.write_json(out, results)
    print(report.table(results))
    if "triage" in results:
        from ticketing_app.ai.evaluation import format_report

        print("\n" + format_report(results["triage"]))
    print(f"\nresults: {out}  (runtime {results['runtime_s']:.0f} s; logs in {log_dir})")
    return 0


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _watch_exit(child: h.Child) -> None:
    """Say at once (with the time) if the app stops on its own: later figures would be meaningless."""

    def watch() -> None:
        code = child.proc.wait()
        if not child.stopping:
            h.log(f"!! {child.name} exited on its own with code {code} (see {child.log_path})")

    threading.Thread(target=watch, name=f"watch-{child.name}", daemon=True).start()


def _git_head() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=h.ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=h.ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
