"""All SQL of the job queue: enqueue, claim, finish, fail, and reclaim expired leases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Executable, func, select, text, update
from sqlalchemy.orm import Session

from ticketing_app.domain import JobStatus
from ticketing_app.models import Job

NOTIFY_CHANNEL = "ticketing_jobs"
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    delay_seconds: float = 0.0,
    max_attempts: int | None = None,
    due_since: datetime | None = None,
) -> int | None:
    """Add a job in the caller's transaction; with a dedupe key an existing job wins (returns None).

    A NOTIFY is sent too (in the same statement): PostgreSQL delivers it only when the transaction commits,
    so workers wake exactly when the job becomes visible.

    `due_since` makes the job due from an earlier moment instead of now + `delay_seconds`. Claims take the
    oldest due jobs first, so a follow-up step dated by its ticket's arrival runs before the first steps of
    newer tickets instead of waiting behind the whole backlog.
    """
    from ticketing_app.config import get_settings

    # One round trip, and a statement built once: the NOTIFY is evaluated only for a row actually inserted
    # (not for a deduplicated one).
    row = session.execute(
        _ENQUEUE,
        {
            "kind": kind,
            "payload": json.dumps(payload),
            "dedupe_key": dedupe_key,
            "max_attempts": max_attempts or get_settings().job_max_attempts,
            "due_since": due_since,
            "delay": delay_seconds,
            "channel": NOTIFY_CHANNEL,
        },
    ).first()
    return row.id if row is not None else None


def insert_job_sql(
    *,
    kind: str,
    payload: str,
    dedupe_key: str,
    run_after: str,
    source: str | None = None,
    skip_duplicates: bool = True,
) -> str:
    """The one INSERT of job rows, returning their ids: every job is written through this SQL.

    The values are SQL expressions (over `source`, a FROM clause, when given); max attempts is always the
    `:max_attempts` parameter. `skip_duplicates`: a row whose dedupe key exists already is not inserted (an
    existing job wins). Ticket intake embeds this in its own statement (services.tickets) to stay one
    round trip.
    """
    return f"""
        INSERT INTO jobs (kind, payload, dedupe_key, max_attempts, run_after)
        SELECT {kind}, {payload}, {dedupe_key}, :max_attempts, {run_after}{f" FROM {source}" if source else ""}
        {"ON CONFLICT (dedupe_key) DO NOTHING" if skip_duplicates else ""}
        RETURNING id
    """


def notify_unless_due_sql(kind: str) -> str:
    """A NOTIFY for a new job of `kind`, sent only when no other due job was queued before it.

    PostgreSQL serialises the commits of notifying transactions (a global lock on its notification queue),
    which costs a busy writer much of its throughput (see bench/README.md). A wake-up is needed only when no
    due job was queued before this one (the statement cannot see its own job row). Otherwise a worker will
    claim that earlier job and, when it finishes, its freed slot makes it claim again and find this one; the
    worker's poll interval backs that up. So under load, when jobs are queued anyway, the NOTIFY is skipped;
    on a quiet system every new job still wakes the workers at once. Needs the `:channel` parameter.
    """
    return f"""CASE WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE status = '{JobStatus.QUEUED}' AND run_after <= now())
                THEN pg_notify(:channel, '{kind}') END"""


_ENQUEUE = text(
    f"""
    WITH new_job AS ({
        insert_job_sql(
            kind=":kind",
            payload="CAST(:payload AS jsonb)",
            dedupe_key=":dedupe_key",
            run_after="coalesce(CAST(:due_since AS timestamptz), now() + make_interval(secs => :delay))",
        )
    })
    SELECT id, pg_notify(:channel, :kind) FROM new_job
    """
)


def enqueue_many(session: Session, kind: str, jobs: list[tuple[dict[str, Any], str | None, datetime | None]]) -> None:
    """`enqueue` for several jobs of one kind in one statement: (payload, dedupe_key, due_since) each.

    One NOTIFY for the lot (when at least one row was inserted): a worker's claim pass takes them all.
    """
    if not jobs:
        return
    from ticketing_app.config import get_settings

    session.execute(
        _ENQUEUE_MANY,
        {
            "kind": kind,
            "payloads": [json.dumps(payload) for payload, _, _ in jobs],
            "dedupe_keys": [key for _, key, _ in jobs],
            "due": [due for _, _, due in jobs],
            "max_attempts": get_settings().job_max_attempts,
            "channel": NOTIFY_CHANNEL,
        },
    )


_ENQUEUE_MANY = text(
    f"""
    WITH new_jobs AS ({
        insert_job_sql(
            kind=":kind",
            payload="job.payload",
            dedupe_key="job.dedupe_key",
            run_after="coalesce(job.due, now())",
            source="unnest(CAST(:payloads AS jsonb[]), CAST(:dedupe_keys AS text[]), CAST(:due AS timestamptz[]))"
            " AS job(payload, dedupe_key, due)",
        )
    })
    SELECT pg_notify(:channel, :kind) FROM (SELECT count(*) AS n FROM new_jobs) AS inserted WHERE n > 0
    """
)


def claim_jobs(
    session: Session, worker_id: str, *, limit: int, lease_seconds: int, kind: str | None = None
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs (of `kind` only, if given) for this worker; others skip the locked rows."""
    rows = session.execute(
        _CLAIM_KIND if kind is not None else _CLAIM,
        {"limit": limit, "worker": worker_id, "lease": lease_seconds, "kind": kind},
    ).all()
    return [ClaimedJob(r.id, r.kind, _as_dict(r.payload), r.attempts, r.max_attempts) for r in rows]


_CLAIM_SQL = """
    WITH due AS (
        SELECT id FROM jobs
        WHERE status = '{queued}' AND run_after <= now() {kind_filter}
        ORDER BY run_after, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs SET status = '{running}', attempts = jobs.attempts + 1,
           locked_by = :worker, locked_until = now() + make_interval(secs => :lease),
           updated_at = now()
    FROM due WHERE jobs.id = due.id
    RETURNING jobs.id, jobs.kind, jobs.payload, jobs.attempts, jobs.max_attempts
"""
_CLAIM_STATUSES = {"queued": JobStatus.QUEUED, "running": JobStatus.RUNNING}
_CLAIM = text(_CLAIM_SQL.format(kind_filter="", **_CLAIM_STATUSES))
_CLAIM_KIND = text(_CLAIM_SQL.format(kind_filter="AND kind = :kind", **_CLAIM_STATUSES))


def execute_counting(session: Session, statement: Executable, params: dict[str, Any] | None = None) -> int:
    """Run a DML statement and return how many rows it touched."""
    result: CursorResult[Any] = session.execute(statement, params)  # type: ignore[assignment]
    return result.rowcount


def _as_dict(payload: Any) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else json.loads(payload)


def _owned(job_id: int, worker_id: str) -> ColumnElement[bool]:
    # A worker may only settle a job it still holds: after its lease expired and another worker took
    # the job over, the late worker's result is discarded.
    return (Job.id == job_id) & (Job.status == JobStatus.RUNNING) & (Job.locked_by == worker_id)


def complete(session: Session, job_id: int, worker_id: str) -> bool:
    """Mark a held job done; False when the lease had been lost (see `_owned`).

    Runs once per job, so the statement is built once (building the ORM update for every job was the largest
    single item in the loop's CPU profile).
    """
    return execute_counting(session, _COMPLETE, {"id": job_id, "worker": worker_id}) == 1


_COMPLETE_SQL = f"""
    UPDATE jobs SET status = '{JobStatus.DONE}', locked_by = NULL, locked_until = NULL, finished_at = now(),
                    last_error = NULL, updated_at = now()
    WHERE {{held}} AND status = '{JobStatus.RUNNING}' AND locked_by = :worker
"""
_COMPLETE = text(_COMPLETE_SQL.format(held="id = :id"))


def complete_many(session: Session, job_ids: list[int], worker_id: str) -> int:
    """Mark held jobs done in one statement; returns how many were still held (see `_owned`)."""
    if len(job_ids) == 1:
        return 1 if complete(session, job_ids[0], worker_id) else 0
    return execute_counting(session, _COMPLETE_MANY, {"ids": job_ids, "worker": worker_id})


_COMPLETE_MANY = text(_COMPLETE_SQL.format(held="id = ANY(:ids)"))


def fail(session: Session, job: ClaimedJob, worker_id: str, error: str, retry_in: float | None) -> str:
    """Record a failure: back to the queue after `retry_in` seconds, or dead when None."""
    error = error[:MAX_ERROR_CHARS]
    if retry_in is None:
        values: dict[str, Any] = {"status": JobStatus.DEAD, "finished_at": func.now()}
    else:
        values = {"status": JobStatus.QUEUED, "run_after": func.now() + func.make_interval(0, 0, 0, 0, 0, 0, retry_in)}
    changed = execute_counting(
        session,
        update(Job)
        .where(_owned(job.id, worker_id))
        .values(locked_by=None, locked_until=None, last_error=error, **values),
    )
    return str(values["status"]) if changed == 1 else "lost"


def renew_leases(session: Session, job_ids: list[int], worker_id: str, lease_seconds: float) -> int:
    """The heartbeat: extend the leases of jobs this worker still holds; returns how many it still holds.

    A job another worker took over (after this one's lease ran out) is not touched: it stays theirs.
    """
    if not job_ids:
        return 0
    return execute_counting(session, _RENEW, {"ids": job_ids, "worker": worker_id, "lease": lease_seconds})


_RENEW = text(
    f"""
    UPDATE jobs SET locked_until = now() + make_interval(secs => :lease)
    WHERE id = ANY(:ids) AND status = '{JobStatus.RUNNING}' AND locked_by = :worker
    """
)


@dataclass(frozen=True)
class ExpiredJob:
    """A job taken back from a worker whose lease ran out: 'queued' again, or 'dead' (no attempts left)."""

    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    last_error: str


def reclaim_expired(session: Session) -> list[ExpiredJob]:
    """Jobs whose worker vanished go back to the queue (or die if they used all attempts)."""
    rows = session.execute(
        text(
            f"""
            UPDATE jobs SET
                status = CASE WHEN attempts >= max_attempts THEN '{JobStatus.DEAD}' ELSE '{JobStatus.QUEUED}' END,
                finished_at = CASE WHEN attempts >= max_attempts THEN now() ELSE NULL END,
                last_error = coalesce(last_error || E'\\n', '') || 'lease expired (worker ' ||
                             coalesce(locked_by, '?') || ' stopped answering)',
                locked_by = NULL, locked_until = NULL, run_after = now(), updated_at = now()
            WHERE status = '{JobStatus.RUNNING}' AND locked_until < now()
            RETURNING id, kind, payload, status, last_error
            """
        )
    ).all()
    return [ExpiredJob(r.id, r.kind, _as_dict(r.payload), r.status, r.last_error) for r in rows]


def retry_dead(session: Session, job_id: int) -> bool:
    """Put a dead job back in the queue with a fresh set of attempts (an admin's retry button)."""
    changed = execute_counting(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.DEAD)
        .values(status=JobStatus.QUEUED, attempts=0, run_after=func.now(), finished_at=None),
    )
    if changed == 1:
        session.execute(text("SELECT pg_notify(:c, 'retry')"), {"c": NOTIFY_CHANNEL})
    return changed == 1


# Above this many rows (the planner's estimate) the count of done jobs is estimated, not counted.
EXACT_DONE_COUNT_LIMIT = 200_000


def counts_by_status(session: Session) -> tuple[dict[str, int], bool]:
    """Jobs per status, and whether the `done` figure is an estimate.

    Queued, running and dead jobs are counted exactly (few, and what an admin acts on; ix_jobs_status_kind
    finds them). Done jobs are the bulk of a busy table (a million before retention catches up): counting them
    scanned it all and made the admin overview slow, so above EXACT_DONE_COUNT_LIMIT rows the planner's row
    estimate (kept by autovacuum) minus the exact others stands in for it.
    """
    live = [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.DEAD]
    rows = session.execute(select(Job.status, func.count()).where(Job.status.in_(live)).group_by(Job.status)).all()
    counts = {status: count for status, count in rows}
    estimate = session.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE oid = 'jobs'::regclass")) or 0
    if estimate <= EXACT_DONE_COUNT_LIMIT:
        done = session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.DONE)) or 0
        estimated = False
    else:
        done, estimated = max(0, int(estimate) - sum(counts.values())), True
    if done:
        counts[JobStatus.DONE] = done
    return counts, estimated


@dataclass(frozen=True)
class DeadJob:
    id: int
    kind: str
    last_error: str
    finished_at: datetime


def dead_jobs_between(session: Session, start: datetime, end: datetime, *, limit: int) -> tuple[list[DeadJob], int]:
    """Jobs dead-lettered in [start, end), oldest first (at most `limit`), and how many there were in all."""
    rows = session.execute(_DEAD_BETWEEN, {"start": start, "end": end, "limit": limit}).all()
    total = rows[0].total if rows else 0
    return [DeadJob(r.id, r.kind, r.last_error or "", r.finished_at) for r in rows], total


_DEAD_BETWEEN = text(
    f"""
    SELECT id, kind, last_error, finished_at, count(*) OVER () AS total FROM jobs
    WHERE status = '{JobStatus.DEAD}' AND finished_at >= :start AND finished_at < :end
    ORDER BY finished_at, id
    LIMIT :limit
    """
)
