"""Skill names: one normal form for storage and one canonical form for matching."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_SKILLS = 30
MAX_SKILL_LENGTH = 50

# Spellings that mean the same skill. Matching compares canonical forms only: no substrings, no regex.
SKILL_SYNONYMS: dict[str, str] = {
    "mfa": "2fa",
    "two-factor": "2fa",
    "two factor": "2fa",
    "two-factor authentication": "2fa",
    "postgresql": "postgres",
    "psql": "postgres",
    "pg": "postgres",
    "javascript": "js",
    "ecmascript": "js",
    "typescript": "ts",
    "k8s": "kubernetes",
    "golang": "go",
    "py": "python",
    "single sign-on": "sso",
    "single sign on": "sso",
    "payment": "payments",
    "invoice": "invoicing",
    "invoices": "invoicing",
    "refund": "refunds",
    "webhook": "webhooks",
    "api": "apis",
    "rest api": "apis",
    "e-mail": "email",
}

_SPACES = re.compile(r"\s+")


class SkillError(ValueError):
    """A skill list an admin typed breaks the rules; the message says which rule."""


def normalize_skill(value: str) -> str:
    """Trim, lower-case and collapse inner white space: ' Node  JS ' -> 'node js'."""
    return _SPACES.sub(" ", value.strip().lower())


def canonical_skill(value: str) -> str:
    """The form two skills are compared in (synonyms folded)."""
    name = normalize_skill(value)
    return SKILL_SYNONYMS.get(name, name)


def normalize_skills(values: Iterable[str], *, strict: bool = True) -> list[str]:
    """Normalise a skill list, keeping first occurrences in order.

    strict=True (admin input): raise SkillError on a skill that is too long or a list that is too long.
    strict=False (AI output): drop what breaks the rules and cut the list at MAX_SKILLS.
    """
    result: list[str] = []
    seen: set[str] = set()
    for raw in values:
        if not isinstance(raw, str):
            if strict:
                raise SkillError("Each skill must be text.")
            continue
        name = normalize_skill(raw)
        if not name:
            continue
        if len(name) > MAX_SKILL_LENGTH or any(ch < " " for ch in name):
            if strict:
                raise SkillError(
                    f"Skill '{name[:60]}' is too long or has control characters "
                    f"(at most {MAX_SKILL_LENGTH} characters)."
                )
            continue
        key = canonical_skill(name)
        if key in seen:
            continue
        seen.add(key)
        result.append(name)
    if len(result) > MAX_SKILLS:
        if strict:
            raise SkillError(f"At most {MAX_SKILLS} skills are allowed (got {len(result)}).")
        result = result[:MAX_SKILLS]
    return result


def matched_skills(required: Iterable[str], offered: Iterable[str]) -> list[str]:
    """The required skills (as written) that the offered skills cover, by canonical form."""
    offered_keys = {canonical_skill(s) for s in offered}
    return [s for s in required if canonical_skill(s) in offered_keys]
