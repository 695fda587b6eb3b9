"""Retention: old finished jobs, delivered e-mails and failed log-ins are deleted (periodically, in each worker).

Dead jobs and failed e-mails are kept: they wait for a person. Deletes go in small batches, each its own
short transaction, skipping rows another worker is deleting at the same moment, so the pass never holds
many locks or a long transaction, and any number of workers may run it together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from ticketing_app.config import Settings, get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import DELIVERED_EMAIL_STATUSES, JobStatus
from ticketing_app.jobs import queue

log = logging.getLogger(__name__)

BATCH = 1000
MAX_BATCHES = 200  # per table and pass: a huge backlog is worked off over several passes


@dataclass(frozen=True)
class Rule:
    table: str
    days_setting: str
    condition: str  # which rows may go, and by which timestamp (older than :days days)


RULES = (
    Rule("jobs", "retention_done_jobs_days", f"status = '{JobStatus.DONE}' AND finished_at < now() - :age"),
    Rule(
        "emails",
        "retention_sent_emails_days",
        f"status IN ({', '.join(repr(str(s)) for s in DELIVERED_EMAIL_STATUSES)}) AND sent_at < now() - :age",
    ),
    Rule("login_attempts", "retention_login_attempts_days", "created_at < now() - :age"),
)


def _delete_sql(rule: Rule) -> str:
    return f"""
        DELETE FROM {rule.table} WHERE id IN (
            SELECT id FROM {rule.table} WHERE {rule.condition} LIMIT :batch FOR UPDATE SKIP LOCKED
        )
    """


def purge(settings: Settings | None = None, *, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Delete what is past its retention (0 days: keep forever); returns how many rows went, per table."""
    settings = settings or get_settings()
    deleted: dict[str, int] = {}
    for rule in RULES:
        days = float(getattr(settings, rule.days_setting))
        deleted[rule.table] = 0
        if days <= 0:
            continue
        statement = text(_delete_sql(rule)).bindparams(age=timedelta(days=days), batch=batch)
        for _ in range(max_batches):
            with session_scope() as session:
                count = queue.execute_counting(session, statement)
            deleted[rule.table] += count
            if count < batch:
                break
    if any(deleted.values()):
        log.info("retention deleted %s", deleted)
    return deleted
