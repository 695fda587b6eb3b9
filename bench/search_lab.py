"""Iterate on search queries against one loaded data set (the full load takes minutes).

`python -m bench.search_lab serve --tickets 1000000`: an embedded PostgreSQL in a temporary directory, migrated,
the search data set loaded once (bench/search.py's load); writes its URL to bench/out/search-lab.json and waits
until stopped (SIGTERM or Ctrl-C: the database is removed).
`python -m bench.search_lab time [--repeat 40] [--kinds a,b] [--roles admin,...] [--no-migrate]`: migrates the
running database to the code's head, then times the queries as `python -m bench --only search` does, without
loading again. To compare with an older commit in the same session, run its checkout (git archive into a
temporary directory, with this file and bench/search.py copied in) with --no-migrate, alternating with this one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from bench import harness as h

STATE = h.OUT_DIR / "search-lab.json"


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def serve(tickets: int) -> None:
    from bench import search

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    with h.workdir() as wd:
        pg = h.BenchPostgres(wd)
        try:
            pg.start()
            url = pg.create_database("helpdesk_bench")
            data_dir = wd / "data"
            h.use_database_in_process(url, data_dir)
            from ticketing_app.migrations import upgrade_database

            upgrade_database()
            data = search.load(tickets=tickets)
            h.write_json(STATE, {"url": url, "data_dir": str(data_dir), "data": data, "pid": os.getpid()})
            h.log(f"search lab ready: {STATE}")
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            STATE.unlink(missing_ok=True)
            pg.stop()


def connect(*, migrate: bool = True) -> dict[str, Any]:
    state = json.loads(STATE.read_text())
    h.use_database_in_process(state["url"], Path(state["data_dir"]))
    if migrate:  # off for an older checkout timed against the same data (it knows fewer revisions)
        from ticketing_app.migrations import upgrade_database

        upgrade_database()
    return state


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_lab")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tickets", type=int, default=1_000_000)
    t = sub.add_parser("time")
    t.add_argument("--repeat", type=int, default=40)
    t.add_argument("--kinds", default="")
    t.add_argument("--roles", default="")
    t.add_argument("--out", type=Path)
    t.add_argument("--no-migrate", action="store_true", help="time an older checkout against the same data")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.tickets)
        return
    from bench import search

    state = connect(migrate=not args.no_migrate)
    began_load = os.getloadavg()
    results = search.measure(
        state["data"],
        repeat=args.repeat,
        kinds=[k for k in args.kinds.split(",") if k] or None,
        roles=[r for r in args.roles.split(",") if r] or None,
    )
    results["loadavg"] = [round(x, 2) for x in (*began_load, *os.getloadavg())]
    for key, value in results["kinds"].items():
        print(f"{key:32s} p50 {value['p50_ms']:>8} p99 {value['p99_ms']:>8}  found {value['median_total']}")
    print("loadavg before/after", results["loadavg"])
    if args.out:
        h.write_json(args.out, results)


if __name__ == "__main__":
    main()
