"""A bench-only worker process: the production Worker and handlers, with the triage provider swapped.

    python -m bench.worker_entry --provider offline|instant|sleep [--latency 0.8]

`offline` is the app's own offline provider; `instant` answers at once, and so does the encoder that embeds each
ticket for similar tickets (what is left is the loop's own cost, storing the vector included); `instant-remote`
too, but is treated like a remote model (its triage jobs are not batched); `sleep` answers after `--latency`
seconds (simulating Gemini, remote). The provider is injected by replacing ticketing_app.ai.select.default_triage
(and services.embeddings.embed) before the worker starts: no production code changes.

Protocol on stdio: prints one JSON line when ready (imports done, a connection open), starts working when it
reads a line on stdin, stops cleanly on SIGTERM and prints one JSON line of its own statistics.
Concurrency, pool size and the rest come from the app's usual settings (WORKER_CONCURRENCY, DB_POOL_SIZE...).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
import zlib
from pathlib import Path

from ticketing_app.ai.types import TriageRequest, TriageResult


class FakeTriage:
    """A deterministic provider that answers after a fixed delay (0 = at once).

    `remote` says how the worker treats it (ticketing_app.ai.select.triage_batch_size): a local provider's
    triage jobs are batched, a remote one (like Gemini) gets one call per worker thread.
    """

    def __init__(self, latency: float, name: str, *, remote: bool) -> None:
        self.latency = latency
        self.name = name
        self.remote = remote

    def triage(self, request: TriageRequest) -> TriageResult:
        if self.latency > 0:
            time.sleep(self.latency)
        h = zlib.crc32(f"{request.title}\n{request.description}".encode())
        vocabulary = request.skill_vocabulary
        skills = sorted({vocabulary[h % len(vocabulary)], vocabulary[(h // 7) % len(vocabulary)]}) if vocabulary else []
        return TriageResult(
            category=request.categories[h % len(request.categories)],
            priority=("low", "medium", "high")[h % 3],
            required_skills=skills,
            summary=request.title[:200],
            helpful_notes="Benchmark provider: no real analysis.",
            confidence=0.9,
            provider=self.name,
        )


def instant_embeddings(rows):
    """Stand-in for services.embeddings.embed with the instant providers: a unit vector per ticket from its text's
    hash, at once. The encoder's own cost is AI work (measured with the offline provider and by the triage bench);
    storing the vector stays in the loop's cost."""
    import numpy as np

    from ticketing_app.ai.embedding import DIMENSIONS

    out = {}
    for ticket_id, title, description in rows:
        vector = np.random.default_rng(zlib.crc32(f"{title}\n{description}".encode())).standard_normal(DIMENSIONS)
        out[ticket_id] = (vector / np.linalg.norm(vector)).astype(np.float32)
    return out


def make_provider(kind: str, latency: float):
    if kind == "offline":
        from ticketing_app.ai.offline import OfflineTriageProvider

        return OfflineTriageProvider()
    if kind == "instant":
        return FakeTriage(0.0, "bench-instant", remote=False)
    if kind == "instant-remote":  # zero latency, but handled like a remote model (triage not batched)
        return FakeTriage(0.0, "bench-instant-remote", remote=True)
    return FakeTriage(latency, f"bench-sleep-{int(latency * 1000)}ms", remote=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_entry")
    parser.add_argument("--provider", choices=("offline", "instant", "instant-remote", "sleep"), default="offline")
    parser.add_argument("--latency", type=float, default=0.8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from ticketing_app.ai import select

    provider = make_provider(args.provider, args.latency)
    select.default_triage = lambda: provider  # run_triage looks this name up on every call
    if args.provider.startswith("instant"):  # the AI answers at once: the similar-tickets encoder too
        from ticketing_app.services import embeddings

        embeddings.embed = instant_embeddings

    from sqlalchemy import event

    from ticketing_app.db import get_engine, ping
    from ticketing_app.worker_main import build_worker

    worker = build_worker()
    select.warm_up()  # as worker_main does: models are read before "ready", not inside the timed drain
    ping()
    statements, commits = itertools.count(), itertools.count()  # next() is atomic: safe from job threads
    event.listen(get_engine(), "before_cursor_execute", lambda *_: next(statements))
    event.listen(get_engine(), "commit", lambda *_: next(commits))
    print(
        json.dumps({"ready": True, "pid": os.getpid(), "concurrency": worker.concurrency, "provider": provider.name}),
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not sys.stdin.readline():
        return
    worker.start()
    stop.wait()
    worker.stop(wait=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "maxrss_mib": _peak_rss_mib(),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "statements": next(statements),
                "commits": next(commits),
            }
        ),
        flush=True,
    )


def _peak_rss_mib() -> float | None:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across exec from the parent, so a
    worker started by a big bench process would report the bench's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


if __name__ == "__main__":
    main()
