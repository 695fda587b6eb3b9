"""The admins' periodic digest: tickets left unassigned and jobs dead-lettered, once per ADMIN_DIGEST_HOURS.

Every worker runs `schedule` every few minutes; it enqueues the current period's digest job under a dedupe
key naming the period, so however many workers run, each period's digest is queued (and sent) once. Periods
are aligned to the epoch (24 h: each day from 00:00 UTC), and the digest of a period reports the period
before it: the jobs that died in it, and the tickets still unassigned when it ended.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import JobKind
from ticketing_app.jobs import queue
from ticketing_app.jobs.worker import JobContext, finishing_transaction
from ticketing_app.services import notifications

log = logging.getLogger(__name__)

# How often each worker checks that the current period's digest is queued (a cheap INSERT ... ON CONFLICT).
CHECK_SECONDS = 300.0


def period_start(now: datetime, hours: int) -> datetime:
    """The start of the period `now` falls in (periods of `hours`, aligned to the epoch)."""
    seconds = hours * 3600
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


def check_interval(hours: int) -> float:
    """How often workers run `schedule`: every few minutes, more often for short periods."""
    return min(CHECK_SECONDS, max(1.0, hours * 3600 / 4))


def schedule(now: datetime | None = None) -> bool:
    """Queue this period's digest unless some worker did already; True when this call queued it."""
    hours = get_settings().admin_digest_hours
    if hours <= 0:
        return False
    start = period_start(now or datetime.now(UTC), hours)
    with session_scope() as session:
        job_id = queue.enqueue(
            session,
            JobKind.ADMIN_DIGEST,
            {"from": (start - timedelta(hours=hours)).isoformat(), "until": start.isoformat()},
            dedupe_key=f"{JobKind.ADMIN_DIGEST}:{start.isoformat()}",
        )
    return job_id is not None


def handle_admin_digest(ctx: JobContext) -> None:
    """Compose and queue the period's digest for every active admin (nothing when there is nothing to say);
    the mails commit together with the job's completion, so a retry never sends a digest twice."""
    start = datetime.fromisoformat(ctx.payload["from"])
    end = datetime.fromisoformat(ctx.payload["until"])
    with finishing_transaction([ctx]) as session:
        queued = notifications.admin_digest(session, start, end)
    if queued:
        log.info("admin digest for %s..%s queued for %s admin(s)", start, end, len(queued))
