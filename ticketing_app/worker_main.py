"""The standalone worker command: `python -m ticketing_app.worker_main` (run as many as you like)."""

from __future__ import annotations

import logging
import signal
import threading

from ticketing_app.jobs.worker import Worker

log = logging.getLogger("ticketing_app.worker_main")


def build_worker(**overrides: object) -> Worker:
    """A worker wired to the ticket pipeline's handlers, with its periodic repairs and retention."""
    from ticketing_app.config import get_settings
    from ticketing_app.jobs import retention
    from ticketing_app.jobs.handlers import HANDLERS, on_dead, reconcile
    from ticketing_app.services import sla

    settings = get_settings()
    overrides.setdefault(
        "periodic",
        {
            "reconcile": (settings.reconcile_seconds, reconcile),
            "retention": (settings.retention_interval_minutes * 60, retention.purge),
            "sla": (settings.sla_check_seconds, sla.check_deadlines),
        },
    )
    return Worker(HANDLERS, on_dead=on_dead, **overrides)  # type: ignore[arg-type]


def _migrated(stop: threading.Event) -> bool:
    """Migrate, waiting while the database cannot be reached (a worker started with or during a database
    restart waits for it instead of exiting); False when told to stop meanwhile."""
    from sqlalchemy.exc import OperationalError

    from ticketing_app.migrations import upgrade_database

    while True:
        try:
            upgrade_database()
            return True
        except OperationalError as exc:
            log.warning("database not reachable yet (%s); retrying", str(exc).splitlines()[0][:200])
            if stop.wait(1.0):
                return False


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not _migrated(stop):
        return
    worker = build_worker()
    worker.start()
    stop.wait()
    worker.stop(wait=True)


if __name__ == "__main__":
    main()
