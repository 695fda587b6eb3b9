"""When to try a failed job again."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; `attempt` counts from 1."""

    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        # Half fixed, half random: never immediately, and never all retries at the same instant.
        return float(ceiling / 2 + (rng or random).uniform(0, ceiling / 2))
