"""Retention: old finished jobs, delivered e-mails, ended throttle counters, dealt-with inbound mails and expired
revoked tokens are deleted (periodically, in each worker).

Dead jobs, failed e-mails and inbound mails that failed are kept: they wait for a person. Deletes go in small
batches, each its own short transaction, skipping rows another worker is deleting at the same moment, so the
pass never holds many locks or a long transaction, and any number of workers may run it together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text

from ticketing_app.config import Settings, get_settings
from ticketing_app.db import session_scope
from ticketing_app.domain import DELIVERED_EMAIL_STATUSES, InboundStatus, JobStatus
from ticketing_app.jobs import queue

log = logging.getLogger(__name__)

BATCH = 1000
MAX_BATCHES = 200  # per table and pass: a huge backlog is worked off over several passes


@dataclass(frozen=True)
class Rule:
    table: str
    days_setting: str | None  # None: rows go as soon as the condition holds (it names no age)
    condition: str  # which rows may go, and by which timestamp (older than :age)
    key: str = "id"  # the row's key columns


RULES = (
    Rule("jobs", "retention_done_jobs_days", f"status = '{JobStatus.DONE}' AND finished_at < now() - :age"),
    Rule(
        "emails",
        "retention_sent_emails_days",
        f"status IN ({', '.join(repr(str(s)) for s in DELIVERED_EMAIL_STATUSES)}) AND sent_at < now() - :age",
    ),
    # A throttle counter whose window and block ended long ago counts nothing any more (services/throttle.py).
    Rule(
        "throttle_counters",
        "retention_throttle_counters_days",
        "window_start < now() - :age AND (blocked_until IS NULL OR blocked_until < now())",
        key="bucket, key",
    ),
    # Presence of ticket pages closed long ago (services/presence.py): nobody reads rows this old.
    Rule("ticket_viewers", None, "seen_at < now() - interval '1 hour'", key="ticket_id, user_id"),
    # Inbound mails, raw bytes and all, once dealt with (their tickets, comments and files stay); failed ones stay.
    Rule(
        "inbound_emails",
        "retention_inbound_emails_days",
        f"status <> '{InboundStatus.RECEIVED}' AND status <> '{InboundStatus.FAILED}' AND processed_at < now() - :age",
    ),
    # A revoked token past its expiry would be refused anyway.
    Rule("revoked_tokens", None, "expires_at < now()", key="jti"),
)


def _delete_sql(rule: Rule) -> str:
    return f"""
        DELETE FROM {rule.table} WHERE ({rule.key}) IN (
            SELECT {rule.key} FROM {rule.table} WHERE {rule.condition} LIMIT :batch FOR UPDATE SKIP LOCKED
        )
    """


def purge(settings: Settings | None = None, *, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Delete what is past its retention (0 days: keep forever); returns how many rows went, per table."""
    settings = settings or get_settings()
    deleted: dict[str, int] = {}
    for rule in RULES:
        days = float(getattr(settings, rule.days_setting)) if rule.days_setting else None
        deleted[rule.table] = 0
        if days is not None and days <= 0:
            continue
        statement = text(_delete_sql(rule)).bindparams(batch=batch)
        if days is not None:
            statement = statement.bindparams(age=timedelta(days=days))
        for _ in range(max_batches):
            with session_scope() as session:
                count = queue.execute_counting(session, statement)
            deleted[rule.table] += count
            if count < batch:
                break
    if any(deleted.values()):
        log.info("retention deleted %s", deleted)
    return deleted
