"""Pick the triage provider from settings: Gemini with an offline fallback, or offline alone."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from ticketing_app.ai.offline import OfflineTriageProvider
from ticketing_app.ai.types import TriageError, TriageProvider, TriageRequest, TriageResult
from ticketing_app.config import Settings, get_settings

if TYPE_CHECKING:
    from ticketing_app.ai.gemini import GeminiTriageProvider

log = logging.getLogger(__name__)


class FallbackTriage:
    """Ask the primary provider; when it fails (after its own retries), answer offline and say so."""

    def __init__(self, primary: TriageProvider, fallback: TriageProvider) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.remote = getattr(primary, "remote", True)

    def triage(self, request: TriageRequest) -> tuple[TriageResult, str | None]:
        """(result, the primary's error when the fallback answered)."""
        try:
            return self.primary.triage(request), None
        except TriageError as exc:
            log.warning("%s triage failed, using %s: %s", self.primary.name, self.fallback.name, exc)
            return self.fallback.triage(request), str(exc)[:500]


def build_triage(settings: Settings) -> FallbackTriage | TriageProvider:
    if not settings.gemini_api_key:
        return OfflineTriageProvider()
    from ticketing_app.ai.gemini import GeminiTriageProvider

    gemini = GeminiTriageProvider(
        api_key=settings.gemini_api_key,
        model=settings.gemini_model,
        base_url=settings.gemini_base_url,
        timeout_seconds=settings.gemini_timeout_seconds,
        attempts=settings.gemini_attempts,
        max_output_tokens=settings.gemini_max_output_tokens,
        thinking_budget=settings.gemini_thinking_budget,
    )
    return FallbackTriage(gemini, OfflineTriageProvider(name="offline-fallback"))


@lru_cache
def default_triage() -> FallbackTriage | TriageProvider:
    return build_triage(get_settings())


def run_triage(request: TriageRequest) -> tuple[TriageResult, str | None]:
    """Triage with the configured provider; (result, error of a failed primary or None)."""
    provider = default_triage()
    if isinstance(provider, FallbackTriage):
        return provider.triage(request)
    return provider.triage(request), None


def warm_up() -> None:
    """Load what triage reads (the sentence encoder, and the offline model where it may answer) before any job
    is claimed, so the first ticket after a worker starts does not wait seconds for it."""
    from ticketing_app.ai.embedding import get_embedder
    from ticketing_app.ai.triage_model import get_model

    get_embedder().load()  # every triage job embeds its tickets for similar tickets, whatever the provider
    provider = default_triage()
    if isinstance(provider, OfflineTriageProvider | FallbackTriage):
        get_model()


# With a local provider a triage call is a few milliseconds of CPU, so a backlog is triaged in batches
# (shared reads and one commit). A remote model is called one ticket per worker thread instead: the calls
# then overlap, and one slow answer never holds back the rest of a batch.
LOCAL_TRIAGE_BATCH = 25


def triage_batch_size() -> int:
    """How many triage jobs a worker slot takes at once with the configured provider."""
    return 1 if getattr(default_triage(), "remote", True) else LOCAL_TRIAGE_BATCH


def gemini_writer() -> GeminiTriageProvider | None:
    """The configured Gemini client, for free-text answers (reply drafts); None without GEMINI_API_KEY."""
    provider = default_triage()
    primary = provider.primary if isinstance(provider, FallbackTriage) else None
    from ticketing_app.ai.gemini import GeminiTriageProvider

    return primary if isinstance(primary, GeminiTriageProvider) else None
