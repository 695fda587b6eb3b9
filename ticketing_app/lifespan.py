"""What the web process does around serving: migrate the schema, and run the job loop in-process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from ticketing_app.config import get_settings

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def app_lifespan() -> AsyncIterator[None]:
    from ticketing_app.migrations import upgrade_database

    # Safe with many processes starting at once: migrations run under an advisory lock.
    await asyncio.to_thread(upgrade_database)
    freeze_startup_objects()
    worker = None
    starting: asyncio.Task[None] | None = None
    stop_listener = None
    if get_settings().worker_in_app:
        from ticketing_app.worker_main import build_worker, start_smtp_listener, warm_then_start

        worker = build_worker()
        # The models load beside serving (a few seconds), and the job loop starts once they are read.
        starting = asyncio.create_task(asyncio.to_thread(warm_then_start, worker))
        starting.add_done_callback(_log_failure)
        stop_listener = start_smtp_listener()
    try:
        yield
    finally:
        if stop_listener is not None:
            await asyncio.to_thread(stop_listener)
        if starting is not None:
            await asyncio.wait([starting])  # a stop during the warm-up waits for the start: nothing starts after it
        if worker is not None:
            await asyncio.to_thread(worker.stop, True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the in-app job loop did not start", exc_info=error)


def freeze_startup_objects() -> None:
    """Put everything alive after start-up (modules, classes, the app's routes and pages, ~130,000 objects) out of
    the cyclic garbage collector's reach. A full collection otherwise walks all of it now and then, in the middle of
    a request: one paused a search for 105 ms at a million tickets (bench/README.md, "Search"), against 3-4 ms
    once frozen. What is allocated afterwards is collected as before."""
    gc.collect()
    gc.freeze()
