"""What the web process does around serving: migrate the schema, and run the job loop in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from ticketing_app.config import get_settings

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def app_lifespan() -> AsyncIterator[None]:
    from ticketing_app.migrations import upgrade_database

    # Safe with many processes starting at once: migrations run under an advisory lock.
    await asyncio.to_thread(upgrade_database)
    worker = None
    if get_settings().worker_in_app:
        from ticketing_app.worker_main import build_worker

        worker = build_worker()
        worker.start()
    try:
        yield
    finally:
        if worker is not None:
            await asyncio.to_thread(worker.stop, True)
