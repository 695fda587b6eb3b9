"""The standalone worker command: `python -m ticketing_app.worker_main` (run as many as you like)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from ticketing_app.jobs.worker import Periodic, Worker

log = logging.getLogger("ticketing_app.worker_main")


def build_worker(**overrides: object) -> Worker:
    """A worker wired to the ticket pipeline's handlers, with its periodic repairs and retention."""
    from ticketing_app.config import get_settings
    from ticketing_app.jobs import digest, retention
    from ticketing_app.jobs.handlers import HANDLERS, on_dead, reconcile
    from ticketing_app.services import sla

    settings = get_settings()
    periodic: dict[str, Periodic] = {
        "reconcile": (settings.reconcile_seconds, reconcile),
        "retention": (settings.retention_interval_minutes * 60, retention.purge),
        "sla": (settings.sla_check_seconds, sla.check_deadlines),
    }
    if settings.admin_digest_hours > 0:
        periodic["admin_digest"] = (digest.check_interval(settings.admin_digest_hours), digest.schedule)
    if settings.imap_host:  # IMAP polling (README "Mail comes in"); every worker may poll: Message-IDs dedupe
        from ticketing_app.mail.listener import poll_imap

        periodic["imap"] = (settings.imap_poll_seconds, poll_imap)
    overrides.setdefault("periodic", periodic)
    return Worker(HANDLERS, on_dead=on_dead, **overrides)  # type: ignore[arg-type]


def warm_then_start(worker: Worker) -> None:
    """Read the AI models (ai.select.warm_up), then start claiming jobs: the first ticket after a start must not
    wait seconds for a model load. A model that cannot be read does not keep the worker from mail and routing;
    the triage then loads it (or fails and retries) on its first ticket."""
    from ticketing_app.ai.select import warm_up

    try:
        warm_up()
    except Exception:
        log.exception("reading the AI models at start-up failed; the first triage tries again")
    worker.start()


def start_smtp_listener() -> Callable[[], None] | None:
    """The inbound SMTP listener when INBOUND_SMTP_PORT is set; returns how to stop it (None: not running).

    Several workers on one host cannot share the port: the first one listens, the others log it and go on.
    """
    from ticketing_app.config import get_settings

    if not get_settings().inbound_smtp_port:
        return None
    from ticketing_app.mail.listener import InboundSmtpListener

    try:
        listener = InboundSmtpListener().start()
    except (OSError, RuntimeError) as exc:
        log.warning("inbound SMTP listener not started (%s); another process may hold the port", exc)
        return None
    return listener.stop


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
    warm_then_start(worker)
    stop_listener = start_smtp_listener()
    stop.wait()
    if stop_listener is not None:
        stop_listener()
    worker.stop(wait=True)


def mail_in() -> int:
    """`cli mail-in`: the inbound SMTP listener and IMAP polling, in the foreground until Ctrl-C / SIGTERM.

    Only stores mails; workers process them.
    """
    from ticketing_app.config import get_settings
    from ticketing_app.mail.listener import poll_imap

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if not settings.inbound_smtp_port and not settings.imap_host:
        log.error("nothing to do: set INBOUND_SMTP_PORT (SMTP listener) and/or IMAP_HOST (IMAP polling)")
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not _migrated(stop):
        return 0
    stop_listener = start_smtp_listener()
    if settings.inbound_smtp_port and stop_listener is None:
        return 1
    try:
        while not stop.is_set():
            if settings.imap_host:
                try:
                    poll_imap(settings)
                except Exception:
                    log.exception("IMAP poll failed; trying again in %s s", settings.imap_poll_seconds)
            stop.wait(settings.imap_poll_seconds if settings.imap_host else 3600)
    finally:
        if stop_listener is not None:
            stop_listener()
    return 0


if __name__ == "__main__":
    main()
