"""The standalone worker command: `python -m ticketing_app.worker_main` (run as many as you like)."""

from __future__ import annotations

import logging
import signal
import threading

from ticketing_app.jobs.worker import Worker


def build_worker(**overrides: object) -> Worker:
    """A worker wired to the ticket pipeline's handlers, with its periodic repairs and retention."""
    from ticketing_app.config import get_settings
    from ticketing_app.jobs import retention
    from ticketing_app.jobs.handlers import HANDLERS, on_dead, reconcile

    settings = get_settings()
    overrides.setdefault(
        "periodic",
        {
            "reconcile": (settings.reconcile_seconds, reconcile),
            "retention": (settings.retention_interval_minutes * 60, retention.purge),
        },
    )
    return Worker(HANDLERS, on_dead=on_dead, **overrides)  # type: ignore[arg-type]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ticketing_app.migrations import upgrade_database

    upgrade_database()
    worker = build_worker()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    stop.wait()
    worker.stop(wait=True)


if __name__ == "__main__":
    main()
