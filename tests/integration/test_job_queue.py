"""The durable job queue on real PostgreSQL: enqueue, dedupe, claim, retry, dead letters, leases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from ticketing_app.db import database_url, session_scope
from ticketing_app.jobs import queue
from ticketing_app.jobs.retry import RetryPolicy
from ticketing_app.jobs.worker import BatchHandler, JobContext, PermanentJobError, Worker, drain, finishing_transaction
from ticketing_app.models import Job

FAST = RetryPolicy(base_seconds=0.02, max_seconds=0.05)


def job_row(job_id: int) -> Job:
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def add_job(kind: str = "noop", payload: dict[str, Any] | None = None, **kwargs: Any) -> int:
    with session_scope() as s:
        job_id = queue.enqueue(s, kind, payload or {}, **kwargs)
    assert job_id is not None
    return job_id


def all_jobs() -> list[Job]:
    with session_scope() as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def claim(worker_id: str, limit: int = 10, lease_seconds: int = 60) -> list[queue.ClaimedJob]:
    with session_scope() as s:
        return queue.claim_jobs(s, worker_id, limit=limit, lease_seconds=lease_seconds)


def expire_lease(job_id: int) -> None:
    """The worker holding the job stopped answering: its lease is over."""
    with session_scope() as s:
        s.execute(text("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = :id"), {"id": job_id})


class DeadLetters:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, str]] = []

    def __call__(self, kind: str, payload: dict, error: str) -> None:
        self.calls.append((kind, payload, error))


@pytest.fixture()
def listener(clean_db: str) -> Iterator[psycopg.Connection]:
    url = database_url().replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"LISTEN {queue.NOTIFY_CHANNEL}")
        yield conn


def notifications(conn: psycopg.Connection, timeout: float = 0.3) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=timeout)]


# ----- enqueue -----


def test_enqueue_is_part_of_the_callers_transaction(clean_db: str) -> None:
    with pytest.raises(RuntimeError), session_scope() as s:
        assert queue.enqueue(s, "triage", {"ticket_id": 1}) is not None
        raise RuntimeError("the caller's work failed")
    assert all_jobs() == []

    job_id = add_job("triage", {"ticket_id": 1})
    job = job_row(job_id)
    assert (job.kind, job.payload, job.status, job.attempts) == ("triage", {"ticket_id": 1}, "queued", 0)
    assert job.max_attempts == 6  # JOB_MAX_ATTEMPTS default
    assert job.locked_by is None and job.finished_at is None


def test_notify_is_delivered_only_when_the_transaction_commits(listener: psycopg.Connection) -> None:
    with session_scope() as s:
        queue.enqueue(s, "triage", {"ticket_id": 1})
        s.flush()
        assert notifications(listener) == []  # not yet visible, so no wake-up yet
    assert notifications(listener) == ["triage"]

    with pytest.raises(RuntimeError), session_scope() as s:
        queue.enqueue(s, "assign", {"ticket_id": 1})
        raise RuntimeError("rolled back")
    assert notifications(listener) == []


def test_a_new_ticket_wakes_the_workers_only_when_nothing_due_is_queued(listener, factory) -> None:
    """Intake skips its NOTIFY while due jobs wait (services/tickets.py says why): the worker that takes
    them claims again when it frees a slot."""
    requester = factory.user()
    assert [job.kind for job in claim("w0")] == ["send_email"]  # the welcome mail: now nothing is queued
    notifications(listener)
    factory.ticket(requester, "First")
    assert notifications(listener) == ["triage"]  # an empty queue: wake up
    factory.ticket(requester, "Second")
    assert notifications(listener) == []  # the first triage job is still queued and due
    assert len(claim("w1")) == 2  # both running now: nothing queued
    factory.ticket(requester, "Third")
    assert notifications(listener) == ["triage"]
    with session_scope() as s:  # a job queued only for later (a retry's back-off) is not "due"
        s.execute(text("UPDATE jobs SET run_after = now() + interval '1 hour' WHERE status = 'queued'"))
    factory.ticket(requester, "Fourth")
    assert notifications(listener) == ["triage"]


def test_dedupe_key_keeps_the_first_job(listener: psycopg.Connection) -> None:
    first = add_job("assign", {"ticket_id": 7}, dedupe_key="assign:7")
    notifications(listener)
    with session_scope() as s:
        assert queue.enqueue(s, "assign", {"ticket_id": 7, "again": True}, dedupe_key="assign:7") is None
    assert notifications(listener) == []  # nothing new: nobody is woken
    other = add_job("assign", {"ticket_id": 8}, dedupe_key="assign:8")
    plain = [add_job("assign", {"ticket_id": 7}), add_job("assign", {"ticket_id": 7})]
    assert len({first, other, *plain}) == 4
    assert job_row(first).payload == {"ticket_id": 7}

    # The key stays taken after the job is done: a re-delivered step never queues its successor twice.
    [claimed] = [j for j in claim("w1") if j.id == first]
    with session_scope() as s:
        assert queue.complete(s, claimed.id, "w1")
    with session_scope() as s:
        assert queue.enqueue(s, "assign", {"ticket_id": 7}, dedupe_key="assign:7") is None


def test_dedupe_key_in_two_concurrent_transactions(clean_db: str) -> None:
    results: list[int | None] = []
    barrier = threading.Barrier(2)

    def add() -> None:
        with session_scope() as s:
            barrier.wait()
            results.append(queue.enqueue(s, "assign", {"ticket_id": 1}, dedupe_key="assign:1"))
            time.sleep(0.1)

    threads = [threading.Thread(target=add) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results.count(None) == 1
    assert len(all_jobs()) == 1


def test_max_attempts_and_delay_are_stored(clean_db: str) -> None:
    job_id = add_job(max_attempts=2, delay_seconds=30)
    job = job_row(job_id)
    assert job.max_attempts == 2
    assert job.run_after > datetime.now(UTC) + timedelta(seconds=25)


# ----- claiming -----


def test_claim_leases_due_jobs_in_order(clean_db: str) -> None:
    ids = [add_job(payload={"n": n}) for n in range(3)]
    jobs = claim("worker-a", limit=2, lease_seconds=60)
    assert [j.id for j in jobs] == ids[:2]
    assert [j.payload for j in jobs] == [{"n": 0}, {"n": 1}]
    assert all(j.attempts == 1 and j.max_attempts == 6 for j in jobs)
    row = job_row(ids[0])
    assert row.status == "running" and row.locked_by == "worker-a"
    assert row.locked_until is not None
    assert timedelta(seconds=50) < row.locked_until - datetime.now(UTC) <= timedelta(seconds=61)
    assert [j.id for j in claim("worker-b")] == [ids[2]]
    assert claim("worker-c") == []


def test_two_claimers_in_two_open_transactions_get_disjoint_jobs(clean_db: str) -> None:
    ids = {add_job(payload={"n": n}) for n in range(5)}
    with session_scope() as first:
        mine = queue.claim_jobs(first, "worker-a", limit=3, lease_seconds=60)
        # `first` still holds its row locks (not committed): the second claimer skips them instead of waiting.
        started = time.monotonic()
        with session_scope() as second:
            theirs = queue.claim_jobs(second, "worker-b", limit=10, lease_seconds=60)
        assert time.monotonic() - started < 1.0
    assert len(mine) == 3 and len(theirs) == 2
    assert {j.id for j in mine}.isdisjoint({j.id for j in theirs})
    assert {j.id for j in mine} | {j.id for j in theirs} == ids
    assert {j.locked_by for j in all_jobs()} == {"worker-a", "worker-b"}


def test_many_concurrent_claimers_claim_each_job_exactly_once(clean_db: str) -> None:
    with session_scope() as s:
        ids = {queue.enqueue(s, "noop", {"n": n}) for n in range(60)}
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(6)

    def claimer(name: str) -> None:
        barrier.wait()
        got = claimed.setdefault(name, [])
        while True:
            jobs = claim(name, limit=2)
            if not jobs:
                return
            got.extend(j.id for j in jobs)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [job_id for got in claimed.values() for job_id in got]
    assert sorted(every) == sorted(ids)  # each exactly once
    assert all(j.attempts == 1 for j in all_jobs())


def test_run_after_is_respected(clean_db: str) -> None:
    later = add_job(payload={"when": "later"}, delay_seconds=0.6)
    now = add_job(payload={"when": "now"})
    assert [j.id for j in claim("w")] == [now]
    assert claim("w") == []
    time.sleep(0.7)
    assert [j.id for j in claim("w")] == [later]


# ----- running, failing, dead letters -----


def run_claimed(worker: Worker) -> list[str]:
    """Claim whatever is due for `worker` and run it in this thread."""
    outcomes = []
    with session_scope() as s:
        jobs = queue.claim_jobs(s, worker.worker_id, limit=10, lease_seconds=worker.lease_seconds)
    for job in jobs:
        outcomes.append(worker.run_job(job))
    return outcomes


def test_success_marks_the_job_done(clean_db: str) -> None:
    seen: list[dict] = []
    worker = Worker({"noop": lambda ctx: seen.append(ctx.payload)}, worker_id="w")
    job_id = add_job(payload={"x": 1})
    assert run_claimed(worker) == ["done"]
    assert seen == [{"x": 1}]
    job = job_row(job_id)
    assert (job.status, job.attempts, job.locked_by, job.locked_until) == ("done", 1, None, None)
    assert job.finished_at is not None


def test_failure_is_requeued_with_backoff_and_last_error(clean_db: str) -> None:
    def boom(ctx: JobContext) -> None:
        raise ValueError(f"boom on attempt {ctx.job.attempts}")

    worker = Worker({"noop": boom}, retry=RetryPolicy(base_seconds=1.0, max_seconds=1.0), worker_id="w")
    job_id = add_job()
    before = datetime.now(UTC)
    assert run_claimed(worker) == ["queued"]
    job = job_row(job_id)
    assert job.status == "queued" and job.attempts == 1
    assert job.last_error == "ValueError: boom on attempt 1"
    assert job.locked_by is None and job.locked_until is None
    # Backoff: between half the ceiling (0.5 s) and the ceiling (1 s) from now, not immediately.
    assert before + timedelta(seconds=0.45) <= job.run_after <= datetime.now(UTC) + timedelta(seconds=1.05)
    assert claim("someone") == []


def test_failures_until_max_attempts_then_dead_and_on_dead_once(clean_db: str) -> None:
    attempts: list[int] = []

    def boom(ctx: JobContext) -> None:
        attempts.append(ctx.job.attempts)
        assert ctx.is_last_attempt == (ctx.job.attempts == 3)
        raise ConnectionError("mail server down")

    dead = DeadLetters()
    worker = Worker({"send_email": boom}, on_dead=dead, retry=FAST, worker_id="w")
    job_id = add_job("send_email", {"email_id": 5}, max_attempts=3)
    outcomes: list[str] = []
    deadline = time.monotonic() + 5
    while job_row(job_id).status != "dead" and time.monotonic() < deadline:
        outcomes += run_claimed(worker)
        time.sleep(0.01)
    assert outcomes == ["queued", "queued", "dead"]
    assert attempts == [1, 2, 3]
    job = job_row(job_id)
    assert job.status == "dead" and job.attempts == 3 and job.finished_at is not None
    assert job.last_error == "ConnectionError: mail server down"
    assert dead.calls == [("send_email", {"email_id": 5}, "ConnectionError: mail server down")]
    time.sleep(0.1)
    assert run_claimed(worker) == []  # dead jobs are never claimed again
    assert len(dead.calls) == 1


def test_permanent_error_and_unknown_kind_die_at_once(clean_db: str) -> None:
    def invalid(ctx: JobContext) -> None:
        raise PermanentJobError("550 no such user")

    dead = DeadLetters()
    worker = Worker({"send_email": invalid}, on_dead=dead, retry=FAST, worker_id="w")
    a = add_job("send_email", {"email_id": 1})
    b = add_job("mystery", {"x": 1})
    assert run_claimed(worker) == ["dead", "dead"]
    assert job_row(a).attempts == 1 and job_row(a).last_error == "PermanentJobError: 550 no such user"
    assert "no handler for job kind 'mystery'" in job_row(b).last_error
    assert [c[0] for c in dead.calls] == ["send_email", "mystery"]


def test_a_failing_dead_letter_hook_does_not_break_the_worker(clean_db: str) -> None:
    def hook(kind: str, payload: dict, error: str) -> None:
        raise RuntimeError("hook is broken")

    worker = Worker({"noop": lambda ctx: 1 / 0}, on_dead=hook, worker_id="w")
    job_id = add_job(max_attempts=1)
    assert run_claimed(worker) == ["dead"]
    assert job_row(job_id).status == "dead"


def test_long_errors_are_cut(clean_db: str) -> None:
    def verbose(ctx: JobContext) -> None:
        raise ValueError("x" * 10_000)

    worker = Worker({"noop": verbose}, worker_id="w")
    job_id = add_job(max_attempts=1)
    run_claimed(worker)
    assert len(job_row(job_id).last_error) == queue.MAX_ERROR_CHARS


def test_retry_dead_puts_the_job_back_with_fresh_attempts(listener: psycopg.Connection) -> None:
    calls: list[int] = []

    def flaky(ctx: JobContext) -> None:
        calls.append(ctx.job.attempts)
        if len(calls) == 1:
            raise ValueError("first time fails")

    dead = DeadLetters()
    worker = Worker({"noop": flaky}, on_dead=dead, worker_id="w")
    job_id = add_job(max_attempts=1)
    assert run_claimed(worker) == ["dead"]
    notifications(listener)
    with session_scope() as s:
        assert queue.retry_dead(s, job_id)
        assert not queue.retry_dead(s, job_id)  # already queued again
    assert notifications(listener) == ["retry"]
    job = job_row(job_id)
    assert (job.status, job.attempts, job.finished_at) == ("queued", 0, None)
    assert run_claimed(worker) == ["done"]
    assert calls == [1, 1]
    with session_scope() as s:
        assert not queue.retry_dead(s, job_id)  # a done job is not "retried"
        assert not queue.retry_dead(s, 999_999)
    assert len(dead.calls) == 1


def test_counts_by_status(clean_db: str) -> None:
    with session_scope() as s:
        assert queue.counts_by_status(s) == ({}, False)
    add_job()
    add_job(delay_seconds=60)
    claim("w", limit=1)
    with session_scope() as s:
        assert queue.counts_by_status(s) == ({"queued": 1, "running": 1}, False)


def test_drain_runs_follow_up_jobs_until_none_is_due(clean_db: str) -> None:
    def first(ctx: JobContext) -> None:
        with finishing_transaction([ctx]) as s:
            queue.enqueue(s, "second", {"from": ctx.job.id})

    seen: list[dict] = []
    job_id = add_job("first")
    assert drain({"first": first, "second": lambda ctx: seen.append(ctx.payload)}) == 2
    assert seen == [{"from": job_id}]
    assert {j.status for j in all_jobs()} == {"done"}


# ----- leases -----


def test_finishing_transaction_commits_writes_with_job_done(clean_db: str) -> None:
    def handler(ctx: JobContext) -> None:
        with finishing_transaction([ctx]) as s:
            queue.enqueue(s, "next", {"after": ctx.job.id})

    worker = Worker({"noop": handler}, worker_id="w")
    job_id = add_job()
    assert run_claimed(worker) == ["done"]
    assert [(j.kind, j.status) for j in all_jobs()] == [("noop", "done"), ("next", "queued")]
    assert job_row(job_id).finished_at is not None


def test_finishing_transaction_rolls_back_writes_when_the_handler_fails_after_them(clean_db: str) -> None:
    def handler(ctx: JobContext) -> None:
        with finishing_transaction([ctx]) as s:
            queue.enqueue(s, "next", {})
            raise ValueError("half way")

    worker = Worker({"noop": handler}, retry=FAST, worker_id="w")
    add_job()
    assert run_claimed(worker) == ["queued"]
    assert [j.kind for j in all_jobs()] == ["noop"]


def test_reclaim_expired_only_touches_expired_leases(clean_db: str) -> None:
    fresh, stale, queued = add_job(), add_job(), add_job()
    claim("w1", limit=2)
    expire_lease(stale)
    with session_scope() as s:
        [expired] = queue.reclaim_expired(s)
    assert (expired.id, expired.kind, expired.status) == (stale, "noop", "queued")
    assert job_row(fresh).status == "running"
    row = job_row(stale)
    assert (row.status, row.locked_by, row.attempts) == ("queued", None, 1)
    assert "lease expired (worker w1 stopped answering)" in row.last_error
    assert job_row(queued).status == "queued"
    with session_scope() as s:
        assert queue.reclaim_expired(s) == []


def test_lease_expiry_hands_the_job_to_another_worker_and_discards_the_late_result(clean_db: str) -> None:
    a_may_finish = threading.Event()
    a_result: list[str] = []

    def slow_on_a(ctx: JobContext) -> None:
        if ctx.worker_id == "worker-a":
            assert a_may_finish.wait(5)
        with finishing_transaction([ctx]) as s:
            queue.enqueue(s, "follow_up", {"by": ctx.worker_id})

    dead = DeadLetters()
    worker_a = Worker({"triage": slow_on_a}, on_dead=dead, worker_id="worker-a")
    worker_b = Worker({"triage": slow_on_a}, on_dead=dead, worker_id="worker-b")
    job_id = add_job("triage", {"ticket_id": 1})
    [job_a] = claim("worker-a")
    thread = threading.Thread(target=lambda: a_result.append(worker_a.run_job(job_a)))
    thread.start()

    # worker-a hangs past its lease; the reaper gives the job back and worker-b takes it over.
    expire_lease(job_id)
    with session_scope() as s:
        assert [j.id for j in queue.reclaim_expired(s)] == [job_id]
    [job_b] = claim("worker-b")
    assert job_b.id == job_id and job_b.attempts == 2
    assert worker_b.run_job(job_b) == "done"

    # worker-a wakes up: complete() says the lease is gone and its writes are rolled back.
    a_may_finish.set()
    thread.join(5)
    assert a_result == ["lost"]
    with session_scope() as s:
        assert not queue.complete(s, job_id, "worker-a")
        assert queue.fail(s, job_a, "worker-a", "late error", 1.0) == "lost"
    job = job_row(job_id)
    assert (job.status, job.attempts, job.last_error) == ("done", 2, None)
    follow_ups = [j for j in all_jobs() if j.kind == "follow_up"]
    assert [j.payload for j in follow_ups] == [{"by": "worker-b"}]
    assert dead.calls == []


def test_late_complete_without_finishing_transaction_returns_false(clean_db: str) -> None:
    job_id = add_job()
    [job] = claim("worker-a")
    expire_lease(job_id)
    with session_scope() as s:
        queue.reclaim_expired(s)
    with session_scope() as s:
        assert not queue.complete(s, job.id, "worker-a")
    assert job_row(job_id).status == "queued"
    # A plain handler (no finishing_transaction) finishing late is reported as lost too.
    worker_a = Worker({"noop": lambda ctx: None}, worker_id="worker-a")
    assert worker_a.run_job(job) == "lost"
    assert job_row(job_id).status == "queued"


def test_expired_lease_on_the_last_attempt_is_dead_lettered_once(clean_db: str) -> None:
    dead = DeadLetters()
    job_id = add_job("triage", {"ticket_id": 3}, max_attempts=1)
    claim("vanished-worker")
    expire_lease(job_id)
    reapers = [Worker({}, on_dead=dead, worker_id=f"reaper-{i}") for i in range(2)]
    for reaper in reapers:
        reaper._reap()
    job = job_row(job_id)
    assert job.status == "dead" and job.finished_at is not None
    assert "lease expired" in job.last_error
    # The dead-letter hook runs for it (e.g. a dead triage still routes its ticket), exactly once.
    assert len(dead.calls) == 1
    kind, payload, error = dead.calls[0]
    assert (kind, payload) == ("triage", {"ticket_id": 3})
    assert "lease expired" in error


# ----- batches -----


def test_enqueue_many_inserts_once_per_dedupe_key_with_one_notify(listener: psycopg.Connection) -> None:
    due = datetime.now(UTC) - timedelta(minutes=5)
    with session_scope() as s:
        queue.enqueue_many(s, "assign", [({"ticket_id": 1}, "assign:1", due), ({"ticket_id": 2}, "assign:2", None)])
    assert notifications(listener) == ["assign"]
    with session_scope() as s:  # both exist already: nothing inserted, no wake-up
        queue.enqueue_many(s, "assign", [({"ticket_id": 1}, "assign:1", None), ({"ticket_id": 2}, "assign:2", None)])
    assert notifications(listener) == []
    rows = all_jobs()
    assert [(j.kind, j.payload, j.dedupe_key, j.status) for j in rows] == [
        ("assign", {"ticket_id": 1}, "assign:1", "queued"),
        ("assign", {"ticket_id": 2}, "assign:2", "queued"),
    ]
    assert abs((rows[0].run_after - due).total_seconds()) < 0.01  # dated as asked
    assert rows[1].run_after > due


def test_a_batch_handler_gets_due_jobs_of_its_kind_together_and_fail_retries_one(clean_db: str) -> None:
    seen: list[list[int]] = []

    def handle(contexts: list[JobContext]) -> None:
        seen.append([ctx.payload["n"] for ctx in contexts])
        for ctx in contexts:
            if ctx.payload["n"] == 3:
                ctx.fail(RuntimeError("number three is broken"))
        with finishing_transaction(contexts) as s:
            s.execute(text("SELECT 1"))

    ids = [add_job("batchy", {"n": n}) for n in range(7)]
    other = add_job("single", {})
    singles: list[int] = []
    worker = Worker(
        {"batchy": BatchHandler(handle, size=5), "single": lambda ctx: singles.append(ctx.job.id)}, retry=FAST
    )
    assert drain(worker.handlers) == 8
    assert seen == [[0, 1, 2, 3, 4], [5, 6]] and singles == [other]
    rows = {j.id: j for j in all_jobs()}
    assert {rows[i].status for i in ids if i != ids[3]} == {"done"}
    assert rows[ids[3]].status == "queued" and rows[ids[3]].attempts == 1
    assert "number three is broken" in rows[ids[3]].last_error
    assert all(rows[i].locked_by is None for i in ids)


def test_the_loop_claims_batches_for_its_free_slots(clean_db: str) -> None:
    sizes: list[int] = []
    lock = threading.Lock()

    def handle(contexts: list[JobContext]) -> None:
        with lock:
            sizes.append(len(contexts))
        time.sleep(0.05)

    for n in range(40):
        add_job("batchy", {"n": n})
    worker = Worker({"batchy": BatchHandler(handle, size=8)}, concurrency=2, poll_seconds=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while sum(sizes) < 40:
            assert time.monotonic() < deadline, sizes
            time.sleep(0.02)
        assert worker.wait_idle(5)
    finally:
        worker.stop()
    assert sum(sizes) == 40 and max(sizes) <= 8 and len(sizes) <= 10, sizes  # not 40 single calls
    assert {j.status for j in all_jobs()} == {"done"}
