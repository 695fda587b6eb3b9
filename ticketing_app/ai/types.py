"""The triage contract every provider honours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ticketing_app.domain import PRIORITIES_LOW_TO_HIGH, Category, literal
from ticketing_app.skills import normalize_skills

if TYPE_CHECKING:  # a Literal built at run time is no type to a checker: the enum is, and its values are str
    from ticketing_app.domain import Priority as Priority
else:
    Priority = literal(PRIORITIES_LOW_TO_HIGH)

DEFAULT_CATEGORIES: tuple[str, ...] = tuple(str(category) for category in Category)

MAX_SUMMARY_CHARS = 400
MAX_NOTES_CHARS = 4000


class TriageRequest(BaseModel):
    """What a provider is given: the ticket text as data, plus the allowed vocabularies."""

    model_config = ConfigDict(frozen=True)

    title: str
    description: str
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    skill_vocabulary: tuple[str, ...] = ()


class TriageResult(BaseModel):
    """A provider's decision, already validated and normalised."""

    category: str
    priority: Priority
    required_skills: list[str] = Field(default_factory=list)
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS)
    helpful_notes: str = Field(default="", max_length=MAX_NOTES_CHARS)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    provider: str

    @field_validator("required_skills")
    @classmethod
    def _normalise_skills(cls, value: list[str]) -> list[str]:
        return normalize_skills(value, strict=False)


class TriageError(Exception):
    """The provider could not produce a usable result (after its own retries)."""


class TriageProvider(Protocol):
    """Anything that can triage a ticket. Implementations must be safe to call from worker threads."""

    name: str
    remote: bool  # a network service (called one ticket per thread) rather than in-process code

    def triage(self, request: TriageRequest) -> TriageResult:
        """Return a validated result or raise TriageError."""
        ...
