"""Throttles kept in PostgreSQL (`throttle_counters`), so that every limit holds across all processes.

Two kinds of counter, both one row per (bucket, key) and one statement per update:

- a fixed window (`hit`, `hits_sql`): the hits since `window_start`; a hit past the window starts a new one.
  Counted before the action, in the same statement as the check, so a burst cannot slip past it;
- a block with growing delays (`record_failure`): failures within a day; from the limit on, each failure
  blocks the key for LOGIN_WINDOW_MINUTES, doubled for each failure past the limit, up to
  LOGIN_BLOCK_MAX_MINUTES.

The policy (which bucket, which key, which limit) is the callers': services/accounts.py (log-in, sign-up) and
services/tickets.py (tickets, comments). See README "Throttling".
"""

from __future__ import annotations

import math
import random

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import ThrottleBucket
from ticketing_app.errors import TooManyAttempts
from ticketing_app.models import ThrottleCounter

PAIR_MEMORY_SECONDS = 24 * 3600  # a (e-mail, address) pair's failures are forgotten a day after the first
SWEEP_CHANCE = 0.01  # share of sign-ups and log-ins that also delete counters nobody needs any more


def hits_sql(source: str) -> str:
    """Count one hit for each (bucket, key) row of `source` (a FROM clause), in a fixed window of `:window`
    seconds; RETURNING bucket, hits (this one included) and the seconds until the window ends."""
    window = "make_interval(secs => CAST(:window AS double precision))"
    fresh = f"c.window_start > now() - {window}"
    return f"""
        INSERT INTO throttle_counters AS c (bucket, key, window_start, hits)
        SELECT bucket, key, now(), 1 FROM {source}
        ON CONFLICT (bucket, key) DO UPDATE SET
            hits = CASE WHEN {fresh} THEN c.hits + 1 ELSE 1 END,
            window_start = CASE WHEN {fresh} THEN c.window_start ELSE now() END
        RETURNING c.bucket, c.hits,
            GREATEST(1, CEIL(EXTRACT(EPOCH FROM c.window_start + {window} - now())))::int
                AS retry_after
    """


_HIT = text(hits_sql("(SELECT CAST(:bucket AS varchar) AS bucket, CAST(:key AS varchar) AS key) AS one"))


def too_many(message: str, retry_after: int) -> TooManyAttempts:
    """A 429 that says how long to wait, in words and in the Retry-After header."""
    retry_after = max(1, int(retry_after))
    if retry_after < 60:
        wait = f"{retry_after} second{'s' if retry_after > 1 else ''}"
    else:
        minutes = math.ceil(retry_after / 60)
        wait = f"{minutes} minute{'s' if minutes > 1 else ''}"
    return TooManyAttempts(f"{message} Try again in {wait}.", retry_after_seconds=retry_after)


def hit(
    session: Session, bucket: ThrottleBucket, key: str | None, *, limit: int, window_seconds: int, message: str
) -> None:
    """Count one hit; TooManyAttempts when it is more than `limit` in the window (limit 0: no limit; key None:
    not counted, e.g. an address for a call that came from no client, such as the CLI or the demo data)."""
    if limit <= 0 or key is None:
        return
    row = session.execute(_HIT, {"bucket": bucket, "key": key[:400], "window": window_seconds}).one()
    if row.hits > limit:
        raise too_many(message, row.retry_after)


def give_back(session: Session, bucket: ThrottleBucket, key: str | None) -> None:
    """Take one hit back (an attempt that turned out to be legitimate)."""
    if key is None:
        return
    session.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.bucket == bucket, ThrottleCounter.key == key[:400])
        .values(hits=func.greatest(ThrottleCounter.hits - 1, 0))
    )


def hits_within(session: Session, bucket: ThrottleBucket, key: str, window_seconds: int) -> int:
    """The hits of a fixed-window counter, 0 when its window is over."""
    return (
        session.scalar(
            select(ThrottleCounter.hits).where(
                ThrottleCounter.bucket == bucket,
                ThrottleCounter.key == key[:400],
                ThrottleCounter.window_start > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, window_seconds),
            )
        )
        or 0
    )


def blocked_for(session: Session, bucket: ThrottleBucket, key: str) -> int:
    """Seconds left of the key's block; 0 when it is not blocked."""
    seconds = session.scalar(
        select(func.extract("epoch", ThrottleCounter.blocked_until - func.now())).where(
            ThrottleCounter.bucket == bucket,
            ThrottleCounter.key == key[:400],
            ThrottleCounter.blocked_until > func.now(),
        )
    )
    return max(1, math.ceil(seconds)) if seconds is not None else 0


_FAILURE = text(
    """
    INSERT INTO throttle_counters AS c (bucket, key, window_start, hits, blocked_until)
    VALUES (:bucket, :key, now(), 1, CASE WHEN :limit <= 1 THEN now() + make_interval(secs => :base) END)
    ON CONFLICT (bucket, key) DO UPDATE SET
        hits = CASE WHEN c.window_start > now() - make_interval(secs => :memory) THEN c.hits + 1 ELSE 1 END,
        window_start = CASE WHEN c.window_start > now() - make_interval(secs => :memory)
                            THEN c.window_start ELSE now() END,
        blocked_until = CASE
            WHEN c.window_start <= now() - make_interval(secs => :memory) THEN
                CASE WHEN :limit <= 1 THEN now() + make_interval(secs => :base) END
            WHEN c.hits + 1 >= :limit THEN
                now() + make_interval(secs => LEAST(:cap, :base * power(2, LEAST(c.hits + 1 - :limit, 30))))
            ELSE c.blocked_until
        END
    """
)


def record_failure(
    session: Session, bucket: ThrottleBucket, key: str, *, limit: int, base_seconds: int, cap_seconds: int
) -> None:
    """One more failure for `key`: from the `limit`-th on, block it for base_seconds, doubled per failure
    past the limit, at most cap_seconds. Failures are remembered for a day from the first."""
    session.execute(
        _FAILURE,
        {
            "bucket": bucket,
            "key": key[:400],
            "limit": limit,
            "base": float(base_seconds),
            "cap": float(max(cap_seconds, base_seconds)),
            "memory": float(PAIR_MEMORY_SECONDS),
        },
    )


def clear(session: Session, bucket: ThrottleBucket, key: str) -> None:
    session.execute(delete(ThrottleCounter).where(ThrottleCounter.bucket == bucket, ThrottleCounter.key == key[:400]))


def maybe_sweep(session: Session) -> None:
    """Now and then, delete counters whose window, memory and block are all over (they would only restart)."""
    if random.random() >= SWEEP_CHANCE:  # not security: only how often we tidy up
        return
    longest = max(PAIR_MEMORY_SECONDS, 3600, get_settings().rate_window_seconds)
    session.execute(
        delete(ThrottleCounter).where(
            ThrottleCounter.window_start < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, longest),
            or_(ThrottleCounter.blocked_until.is_(None), ThrottleCounter.blocked_until < func.now()),
        )
    )
