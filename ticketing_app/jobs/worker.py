"""The background loop: APScheduler ticks claim due job rows and run them on a bounded thread pool.

APScheduler keeps only in-memory interval jobs (claim, renew the leases of running jobs, reclaim expired
leases, and the caller's periodic maintenance); the durable work is in PostgreSQL, so any number of worker
processes can run against one database. A LISTEN connection wakes the loop the moment a job is committed
instead of waiting for the next poll.

Leases are short (JOB_LEASE_SECONDS, at most 30 s) and renewed by a heartbeat every third of a lease while
a job runs, so a slow handler keeps its job, and a killed worker's jobs are taken over within about a lease.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.db import direct_database_url, libpq_url, session_scope
from ticketing_app.domain import JobStatus
from ticketing_app.jobs import queue
from ticketing_app.jobs.retry import RetryPolicy

log = logging.getLogger(__name__)


class PermanentJobError(Exception):
    """Retrying cannot help (e.g. an invalid address): the job is dead-lettered at once."""


class LeaseLost(Exception):
    """Another worker took the job over after this worker's lease expired; this result is discarded."""


@dataclass
class JobContext:
    """What a handler gets for each job; `finishing_transaction([ctx, ...])` marks jobs done with its writes."""

    job: queue.ClaimedJob
    worker_id: str
    completed: bool = field(default=False, init=False)
    error: Exception | None = field(default=None, init=False)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    @property
    def is_last_attempt(self) -> bool:
        return self.job.attempts >= self.job.max_attempts

    def fail(self, error: Exception) -> None:
        """Mark this job of a batch failed: it is left out of the batch's completion and retried alone."""
        self.error = error


@contextmanager
def finishing_transaction(contexts: Sequence[JobContext]) -> Iterator[Session]:
    """Commit a batch handler's writes together with 'done' for its jobs (those not failed), or nothing."""
    finishing = [ctx for ctx in contexts if ctx.error is None]
    with session_scope() as session:
        yield session
        if finishing:
            worker_id = finishing[0].worker_id
            done = queue.complete_many(session, [ctx.job.id for ctx in finishing], worker_id)
            if done != len(finishing):
                raise LeaseLost(f"{len(finishing) - done} of {len(finishing)} job(s) were taken over by another worker")
    for ctx in finishing:
        ctx.completed = True


@dataclass(frozen=True)
class BatchHandler:
    """Runs up to `size` due jobs of one kind in one call, so their reads and writes are shared.

    The handler gets a list of contexts and commits with `finishing_transaction(contexts)`. A job it cannot
    do is marked with `ctx.fail(error)` and is retried on its own; if the handler raises, every job of
    the batch is run again alone (as a batch of one), so one bad job never holds the others back.
    """

    run: Callable[[list[JobContext]], None]
    size: int | Callable[[], int] = 1

    def batch_size(self) -> int:
        return max(1, self.size() if callable(self.size) else self.size)


T = TypeVar("T")
Handler = Callable[[JobContext], None] | BatchHandler
DeadHandler = Callable[[str, dict[str, Any], str], None]
# A periodic maintenance task: (interval in seconds, function); run by each worker's scheduler.
Periodic = tuple[float, Callable[[], object]]


class Worker:
    """Claims and runs jobs with at most `concurrency` running at once."""

    def __init__(
        self,
        handlers: dict[str, Handler],
        *,
        on_dead: DeadHandler | None = None,
        concurrency: int | None = None,
        poll_seconds: float | None = None,
        lease_seconds: int | None = None,
        retry: RetryPolicy | None = None,
        worker_id: str | None = None,
        periodic: dict[str, Periodic] | None = None,
    ) -> None:
        settings = get_settings()
        self.handlers = handlers
        self.on_dead = on_dead
        self.concurrency = concurrency or settings.resolved_worker_concurrency()
        self.poll_seconds = poll_seconds or settings.worker_poll_seconds
        self.lease_seconds = lease_seconds or settings.job_lease_seconds
        self.retry = retry or RetryPolicy(settings.job_backoff_base_seconds, settings.job_backoff_max_seconds)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.periodic = dict(periodic or {})
        self._free = threading.Semaphore(self.concurrency)
        self._held: set[int] = set()  # ids of the claimed jobs this worker is running: the heartbeat renews them
        self._held_lock = threading.Lock()
        self._running = 0
        self._running_lock = threading.Lock()
        self._idle = threading.Condition(self._running_lock)
        self._again = threading.Event()
        self._wake_lock = threading.Lock()
        self._wake_pending = False  # a wake-up pass is queued and has not started yet
        self._claimer: ThreadPoolExecutor | None = None  # runs wake-up passes, one at a time
        self._stop = threading.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._listener: threading.Thread | None = None

    # ----- running one job -----

    def run_job(self, job: queue.ClaimedJob) -> str:
        """Run one claimed job and settle it: 'done', 'queued' (retry later), 'dead' or 'lost'."""
        return self.run_jobs([job])[0]

    def run_jobs(self, jobs: list[queue.ClaimedJob]) -> list[str]:
        """Run claimed jobs of one kind (several only for a BatchHandler) and settle each; outcomes in order."""
        handler = self.handlers.get(jobs[0].kind)
        contexts = [JobContext(job, self.worker_id) for job in jobs]
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {jobs[0].kind!r}")
            if isinstance(handler, BatchHandler):
                handler.run(contexts)
            else:
                assert len(contexts) == 1, "only a BatchHandler takes several jobs"
                handler(contexts[0])
        except LeaseLost as exc:
            if len(contexts) > 1:
                return self._one_by_one(contexts, exc)
            log.warning("%s", exc)
            return ["lost"]
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on the job and retried
            if len(contexts) > 1:
                return self._one_by_one(contexts, exc)
            return [self._settle_failure(jobs[0], exc)]
        return [self._settle(ctx) for ctx in contexts]

    def _one_by_one(self, contexts: list[JobContext], exc: Exception) -> list[str]:
        """A batch failed as a whole (nothing of it was committed): run each of its jobs alone."""
        log.info(
            "a batch of %s %s jobs failed (%s: %s); running them one by one",
            len(contexts),
            contexts[0].job.kind,
            type(exc).__name__,
            exc,
        )
        return [self.run_job(ctx.job) for ctx in contexts]

    def _settle(self, ctx: JobContext) -> str:
        """After a handler returned: a failed job is retried, an unfinished one is marked done here."""
        if ctx.error is not None:
            return self._settle_failure(ctx.job, ctx.error)
        if ctx.completed:
            return "done"
        if self._while_database_returns(lambda session: queue.complete(session, ctx.job.id, self.worker_id)):
            return "done"
        log.warning("job %s was taken over by another worker", ctx.job.id)
        return "lost"

    def _settle_failure(self, job: queue.ClaimedJob, exc: Exception) -> str:
        error = f"{type(exc).__name__}: {exc}"
        permanent = isinstance(exc, PermanentJobError)
        retry_in = None if permanent or job.attempts >= job.max_attempts else self.retry.delay(job.attempts)
        outcome = self._while_database_returns(
            lambda session: queue.fail(session, job, self.worker_id, error, retry_in)
        )
        log.warning("job %s (%s) attempt %s failed -> %s: %s", job.id, job.kind, job.attempts, outcome, error)
        if outcome == JobStatus.DEAD:
            self._dead_letter(job.id, job.kind, job.payload, error)
        return outcome

    def _while_database_returns(self, write: Callable[[Session], T]) -> T:
        """Run a settling write, retrying while the database is briefly unreachable (e.g. restarting).

        Without this a job running during a database restart could not record its outcome and stayed
        'running' until its lease expired. Gives up (raises) after half a lease: the lease then covers it.
        """
        deadline = time.monotonic() + self.lease_seconds / 2
        while True:
            try:
                with session_scope() as session:
                    return write(session)
            except (OperationalError, DBAPIError) as exc:
                if (
                    isinstance(exc, DBAPIError)
                    and not isinstance(exc, OperationalError)
                    and not exc.connection_invalidated
                ):
                    raise
                if time.monotonic() > deadline or self._stop.wait(0.5):
                    raise

    def _dead_letter(self, job_id: int, kind: str, payload: dict[str, Any], error: str) -> None:
        """Run the dead-letter hook once for a job that just died; its failure is only logged."""
        if self.on_dead is None:
            return
        try:
            self.on_dead(kind, payload, error)
        except Exception:
            log.exception("dead-letter hook failed for job %s", job_id)

    # ----- the loop -----

    def claim_and_dispatch(self) -> int:
        """Claim due jobs for the free slots and start them; returns how many jobs started.

        A slot runs one job, or one batch of jobs of a kind with a BatchHandler (topped up to its size).
        """
        started = 0
        while not self._stop.is_set():
            self._again.clear()
            slots = 0
            while self._free.acquire(blocking=False):
                slots += 1
            if slots == 0:
                return started
            try:
                with session_scope() as session:
                    jobs = queue.claim_jobs(session, self.worker_id, limit=slots, lease_seconds=self.lease_seconds)
                    units = self._batches(session, jobs)
            except Exception:
                for _ in range(slots):
                    self._free.release()
                raise
            for _ in range(slots - len(units)):
                self._free.release()
            for unit in units:
                self._submit(unit)
            started += sum(len(unit) for unit in units)
            if len(jobs) < slots and not self._again.is_set():
                return started
        return started

    def _batches(self, session: Session, jobs: list[queue.ClaimedJob]) -> list[list[queue.ClaimedJob]]:
        """Group claimed jobs into what each slot runs: batches for batch kinds, single jobs otherwise."""
        units: list[list[queue.ClaimedJob]] = []
        by_kind: dict[str, list[queue.ClaimedJob]] = {}
        for job in jobs:
            handler = self.handlers.get(job.kind)
            if isinstance(handler, BatchHandler) and handler.batch_size() > 1:
                by_kind.setdefault(job.kind, []).append(job)
            else:
                units.append([job])
        for kind, group in by_kind.items():
            size = self.handlers[kind].batch_size()  # type: ignore[union-attr]
            if len(group) < size:  # top the batch up with more due jobs of its kind (same transaction)
                group += queue.claim_jobs(
                    session, self.worker_id, limit=size - len(group), lease_seconds=self.lease_seconds, kind=kind
                )
            units += [group[i : i + size] for i in range(0, len(group), size)]
        return units

    def _submit(self, jobs: list[queue.ClaimedJob]) -> None:
        assert self._executor is not None
        with self._running_lock:
            self._running += 1
        with self._held_lock:
            self._held.update(job.id for job in jobs)
        self._executor.submit(self._run_and_release, jobs)

    def _run_and_release(self, jobs: list[queue.ClaimedJob]) -> None:
        try:
            self.run_jobs(jobs)
        finally:
            with self._held_lock:
                self._held.difference_update(job.id for job in jobs)
            self._free.release()
            with self._running_lock:
                self._running -= 1
                self._idle.notify_all()
            self.wake()  # a slot is free: look for more work now

    def wake(self) -> None:
        """Run a claim pass now (called on NOTIFY and when a slot frees up).

        The pass runs on a one-thread executor, not through APScheduler: rescheduling the interval job
        while a pass is running is skipped (max_instances=1, with a warning), so the wake-up could be lost.
        """
        self._again.set()
        with self._wake_lock:
            if self._wake_pending or self._claimer is None or self._stop.is_set():
                return  # a queued pass that has not started yet will see this job too
            self._wake_pending = True
        try:
            self._claimer.submit(self._wake_pass)
        except RuntimeError:  # racing with shutdown is harmless
            with self._wake_lock:
                self._wake_pending = False

    def _wake_pass(self) -> None:
        with self._wake_lock:
            self._wake_pending = False  # from now on, a new wake-up queues another pass
        self._tick()

    def _tick(self) -> None:
        try:
            self.claim_and_dispatch()
        except Exception:
            log.warning("claiming jobs failed; will retry", exc_info=log.isEnabledFor(logging.DEBUG))

    def held_jobs(self) -> list[int]:
        """Ids of the jobs this worker is running now."""
        with self._held_lock:
            return sorted(self._held)

    def _heartbeat(self) -> None:
        """Renew the leases of the jobs this worker is running (every third of a lease).

        A failure (the database is briefly away) is only logged: the next beat comes well before the lease
        runs out. A job whose lease was lost anyway is settled as 'lost' by its handler's finishing write.
        """
        held = self.held_jobs()
        if not held:
            return
        try:
            with session_scope() as session:
                renewed = queue.renew_leases(session, held, self.worker_id, self.lease_seconds)
        except Exception:  # noqa: BLE001
            log.warning("renewing the leases of %s job(s) failed; will retry", len(held))
            return
        if renewed < len(held):
            log.debug("heartbeat: %s of %s held job(s) were settled or taken over", len(held) - renewed, len(held))

    def _run_periodic(self, name: str, task: Callable[[], object]) -> None:
        try:
            task()
        except Exception:  # a maintenance task never stops the loop; it runs again next time
            log.exception("periodic task %s failed; will run again", name)

    def _reap(self) -> None:
        try:
            with session_scope() as session:
                expired = queue.reclaim_expired(session)
        except Exception:  # noqa: BLE001
            log.warning("reclaiming expired leases failed; will retry")
            return
        if expired:
            log.warning("reclaimed %s job(s) whose worker stopped answering", len(expired))
            self.wake()
        for job in expired:
            if job.status == JobStatus.DEAD:  # its last attempt vanished with its worker: dead-letter it here
                self._dead_letter(job.id, job.kind, job.payload, job.last_error)

    def _listen(self) -> None:
        """Wake the loop on NOTIFY; reconnect after a database restart.

        LISTEN needs a session of its own, so this connection goes straight to PostgreSQL
        (DATABASE_DIRECT_URL), never through PgBouncer's transaction pooling, where the next transaction may
        run on another server connection and notifications would be lost: one per worker process.
        """
        url = libpq_url(direct_database_url())
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
                    self.wake()  # catch anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake()
            except Exception:  # noqa: BLE001
                if self._stop.wait(1.0):
                    return

    def start(self) -> None:
        """Start the scheduler, the thread pool and the NOTIFY listener in background threads."""
        self._stop.clear()
        self._wake_pending = False
        # APScheduler logs every tick at INFO and every skipped overlapping tick as a WARNING; both are
        # expected here (the interval only backs up the NOTIFY wake-ups), so keep its errors only.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="job")
        self._claimer = ThreadPoolExecutor(1, thread_name_prefix="job-claim")
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.poll_seconds,
            id="claim",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.add_job(
            self._heartbeat,
            "interval",
            seconds=self.lease_seconds / 3,
            id="heartbeat",
            max_instances=1,
            coalesce=True,
        )
        # Often enough that a dead worker's jobs come back within about a lease (a cheap, indexed UPDATE).
        self._scheduler.add_job(
            self._reap,
            "interval",
            seconds=max(1.0, self.lease_seconds / 5),
            id="reap",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        for name, (seconds, task) in self.periodic.items():
            self._scheduler.add_job(
                self._run_periodic,
                "interval",
                args=(name, task),
                seconds=seconds,
                id=f"periodic:{name}",
                max_instances=1,
                coalesce=True,
                # Soon after start (a restarted worker repairs what its predecessor left), spread over processes.
                next_run_time=datetime.now(UTC) + timedelta(seconds=random.uniform(0.5, min(5.0, seconds))),
            )
        self._scheduler.start()
        self._listener = threading.Thread(target=self._listen, name="job-listener", daemon=True)
        self._listener.start()
        log.info("worker %s started (concurrency %s)", self.worker_id, self.concurrency)

    def stop(self, wait: bool = True) -> None:
        """Stop claiming; let running jobs finish when `wait`."""
        self._stop.set()
        if self._scheduler is not None and self._scheduler.running:
            # Wait for a claim pass in progress: jobs it claims must reach the pool, not stay 'running'.
            self._scheduler.shutdown(wait=True)
        if self._claimer is not None:
            self._claimer.shutdown(wait=True)
        if self._executor is not None:
            self._executor.shutdown(wait=wait)
        if self._listener is not None:
            self._listener.join(timeout=3)
        log.info("worker %s stopped", self.worker_id)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is running (tests)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout=timeout)


def drain(handlers: dict[str, Handler], on_dead: DeadHandler | None = None, *, max_rounds: int = 1000) -> int:
    """Run every due job in this thread until none is left (tests, demo data, one-off commands).

    Returns how many jobs ran; batch kinds run in batches, as in the loop.
    """
    worker = Worker(handlers, on_dead=on_dead, concurrency=1)
    done = 0
    for _ in range(max_rounds):
        with session_scope() as session:
            jobs = queue.claim_jobs(session, worker.worker_id, limit=1, lease_seconds=worker.lease_seconds)
            units = worker._batches(session, jobs)
        if not units:
            return done
        for unit in units:
            worker.run_jobs(unit)
            done += len(unit)
    return done
