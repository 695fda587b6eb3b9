"""RetryPolicy: exponential backoff with jitter, capped, never immediate."""

from __future__ import annotations

import random

import pytest

from ticketing_app.jobs.retry import RetryPolicy


class _FixedRng(random.Random):
    """uniform() always returns one end of the range."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 32.0), (9, 512.0), (10, 600.0), (11, 600.0), (50, 600.0)],
)
def test_delay_stays_between_half_the_ceiling_and_the_ceiling(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=600.0)
    assert policy.delay(attempt, _FixedRng("low")) == pytest.approx(ceiling / 2)
    assert policy.delay(attempt, _FixedRng("high")) == pytest.approx(ceiling)
    rng = random.Random(attempt)
    for _ in range(200):
        assert ceiling / 2 <= policy.delay(attempt, rng) <= ceiling


def test_delay_grows_exponentially_until_the_cap() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=30.0)
    lows = [policy.delay(a, _FixedRng("low")) for a in range(1, 9)]
    assert lows == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0])
    highs = [policy.delay(a, _FixedRng("high")) for a in range(1, 9)]
    assert highs == pytest.approx([1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])


def test_cap_holds_for_huge_attempt_numbers() -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=600.0)
    rng = random.Random(1)
    for attempt in (60, 500, 1000):
        assert 300.0 <= policy.delay(attempt, rng) <= 600.0


@pytest.mark.parametrize("attempt", [0, -3])
def test_attempt_zero_or_negative_is_treated_as_the_first(attempt: int) -> None:
    policy = RetryPolicy(base_seconds=2.0, max_seconds=600.0)
    assert 1.0 <= policy.delay(attempt, random.Random(2)) <= 2.0


def test_jitter_is_never_zero_and_spreads_retries() -> None:
    policy = RetryPolicy(base_seconds=0.05, max_seconds=0.2)
    rng = random.Random(42)
    delays = [policy.delay(1, rng) for _ in range(500)]
    assert min(delays) >= 0.025 > 0
    assert max(delays) <= 0.05
    # Full jitter in the upper half: retries of many failed jobs do not all fire at the same instant.
    assert len({round(d, 6) for d in delays}) > 400
    assert max(delays) - min(delays) > 0.02


def test_default_rng_is_used_when_none_given() -> None:
    policy = RetryPolicy()
    values = {policy.delay(3) for _ in range(50)}
    assert all(4.0 <= v <= 8.0 for v in values)
    assert len(values) > 1


def test_defaults_match_the_settings_defaults() -> None:
    from ticketing_app.config import Settings

    settings = Settings(_env_file=None)
    assert RetryPolicy() == RetryPolicy(settings.job_backoff_base_seconds, settings.job_backoff_max_seconds)
