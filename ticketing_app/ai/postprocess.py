"""What every provider's answer goes through before it is stored (offline model and Gemini alike).

- Skills are mapped onto the moderators' skill vocabulary: the same canonical skill (synonyms folded), a
  phrase that contains a vocabulary entry or is contained in one, a close spelling, a known neighbour
  ("authentication" -> "account access"), then the nearest vocabulary entry by sentence embedding above a
  similarity floor; the rest is dropped, since no moderator could be routed on it.
- "high" needs evidence of impact in the text (many affected, an outage, blocked work, data loss, a
  security incident, money lost): without it the priority becomes the offline model's reading of the
  text with instructions and alarm words removed, which calls such a text "high" only above a stricter bar
  (`plain_high_threshold`, chosen by cross-validation in training).
- A ticket that tries to instruct the triage gets the offline model's category and priority when a
  provider that read the raw text (Gemini) disagrees with them: the instructions are allowed to change
  nothing the content does not support.
"""

from __future__ import annotations

import difflib
import re

from ticketing_app.ai.offline import Analysis, analyse, model_opinion
from ticketing_app.ai.types import MAX_NOTES_CHARS, TriageRequest, TriageResult
from ticketing_app.domain import Priority
from ticketing_app.skills import canonical_skill, normalize_skill

MAX_SKILLS_OUT = 10
CLOSE_SPELLING = 0.85  # difflib ratio: "webhoks" -> "webhooks"
EMBEDDING_FLOOR = 0.65  # cosine of USE vectors: "reporting" -> "reports" (0.89); "stripe" -> "billing" (0.43) is not
OFFLINE_CATEGORY_FLOOR = 0.5

# Words models use for a skill, and the vocabulary concept they stand for (used only when that concept is in
# the vocabulary, in its spelling there).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "authentication": ("account access", "sso", "passwords"),
    "login": ("account access", "passwords"),
    "identity": ("account access", "sso"),
    "accounts": ("account access",),
    "iam": ("account access",),
    "saml": ("sso",),
    "okta": ("sso",),
    "oauth": ("sso", "apis"),
    "password reset": ("passwords",),
    "finance": ("billing",),
    "subscriptions": ("billing",),
    "stripe": ("payments", "billing"),
    "paypal": ("payments", "billing"),
    "credit card": ("payments",),
    "chargeback": ("payments", "refunds"),
    "tax": ("invoicing",),
    "vat": ("invoicing",),
    "database": ("postgres", "data"),
    "databases": ("postgres", "data"),
    "sql": ("postgres",),
    "integrations": ("apis", "webhooks"),
    "integration": ("apis", "webhooks"),
    "rest": ("apis",),
    "api integration": ("apis",),
    "infosec": ("security",),
    "appsec": ("security",),
    "vulnerability": ("security",),
    "incident management": ("incident response",),
    "incident handling": ("incident response",),
    "forensics": ("incident response", "security"),
    "reliability": ("performance",),
    "sre": ("performance",),
    "latency": ("performance",),
    "infrastructure": ("performance",),
    "reporting": ("reports",),
    "analytics": ("reports", "data"),
    "data import": ("imports",),
    "csv import": ("imports",),
    "data export": ("exports",),
    "csv export": ("exports",),
    "data recovery": ("data",),
    "backups": ("data",),
}
_WORDS = re.compile(r"[^\w]+")


def _key(value: str) -> str:
    """Canonical form, lightly singularised: 'Webhook' and 'webhooks' compare equal."""
    key = canonical_skill(value)
    return key[:-1] if len(key) > 3 and key.endswith("s") and not key.endswith("ss") else key


def _phrase(value: str) -> str:
    """' word word ', each word in canonical form ('PostgreSQL database' -> ' postgres database ')."""
    return " " + " ".join(canonical_skill(w) for w in _WORDS.split(normalize_skill(value)) if w) + " "


def map_skill(skill: str, vocabulary: tuple[str, ...], vectors: object | None = None) -> str | None:
    """The vocabulary entry (its spelling) a provider's skill stands for, or None."""
    by_key = {_key(entry): entry for entry in reversed(vocabulary)}
    key = _key(skill)
    if key in by_key:
        return by_key[key]
    phrase = _phrase(skill)
    for entry in vocabulary:  # "postgres replication" -> "postgres"; "api" -> "rest apis"
        entry_phrase = _phrase(entry)
        if entry_phrase in phrase or (len(phrase) > 4 and phrase in entry_phrase):
            return entry
    close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=CLOSE_SPELLING)
    if close:
        return by_key[close[0]]
    for neighbour in NEIGHBOURS.get(normalize_skill(skill), ()):
        if _key(neighbour) in by_key:
            return by_key[_key(neighbour)]
    return _nearest(skill, vocabulary)


def _nearest(skill: str, vocabulary: tuple[str, ...]) -> str | None:
    from ticketing_app.ai.embedding import get_embedder

    embedder = get_embedder()
    similarities = embedder.encode(list(vocabulary)) @ embedder.encode_one(skill)
    best = int(similarities.argmax())
    return vocabulary[best] if float(similarities[best]) >= EMBEDDING_FLOOR else None


def map_skills(skills: list[str], vocabulary: tuple[str, ...]) -> list[str]:
    """The skills as vocabulary entries, in order, without duplicates; unknown ones dropped. Without a
    vocabulary there is nothing to map onto: the skills stay as they are."""
    if not vocabulary:
        return skills
    mapped: list[str] = []
    for skill in skills:
        entry = map_skill(skill, vocabulary)
        if entry is not None and all(_key(entry) != _key(m) for m in mapped):
            mapped.append(entry)
    return mapped[:MAX_SKILLS_OUT]


def _note(notes: str, line: str) -> str:
    text = f"{notes}\n{line}" if notes else line
    return text if len(text) <= MAX_NOTES_CHARS else text[: MAX_NOTES_CHARS - 1] + "\u2026"


def finish(
    request: TriageRequest, result: TriageResult, analysis: Analysis | None = None, *, staff_priority: bool = False
) -> TriageResult:
    """Apply the shared post-processing (module docstring) to a provider's validated result. `staff_priority`:
    the priority comes from staff's correction of a similar ticket, which needs no more evidence."""
    a = analysis if analysis is not None else analyse(request)
    update: dict[str, object] = {"required_skills": map_skills(result.required_skills, request.skill_vocabulary)}
    notes = result.helpful_notes
    category, priority = result.category, Priority(result.priority)
    own = result.provider.startswith("offline")  # the offline model already read the cleaned text
    unsupported_high = (
        priority == Priority.HIGH
        and not own  # the offline model already held "high" without evidence to its stricter bar
        and not staff_priority
        and not a.evidence.supports_high()
        and a.rule_priority != Priority.HIGH
    )
    # The model's reading is needed only to overrule another provider (and then costs one embedding).
    opinion = model_opinion(a) if not own and (a.injection or unsupported_high) else None
    if a.injection and opinion is not None:
        offline_category, confidence = opinion.category, opinion.categories[opinion.category]
        allowed = {c.casefold(): c for c in request.categories}
        if (
            confidence >= OFFLINE_CATEGORY_FLOOR
            and offline_category in allowed
            and allowed[offline_category] != category
        ):
            category = allowed[offline_category]
            notes = _note(notes, f"Category set to {category}: the ticket's instructions to the triage were ignored.")
        offline_priority = Priority(opinion.priority)
        if offline_priority.rank > priority.rank:  # rank 0 is high: only ever lowered
            priority = offline_priority
            notes = _note(notes, f"Priority set to {priority}: the ticket's instructions to the triage were ignored.")
    if priority == Priority.HIGH and unsupported_high:  # (still high: instructions did not lower it)
        # The offline model's reading of the cleaned text, which holds "high" without evidence to a higher bar.
        priority = Priority(opinion.priority) if opinion is not None else Priority.MEDIUM
    if priority != Priority.HIGH and unsupported_high and result.priority == Priority.HIGH and not a.injection:
        notes = _note(
            notes,
            f"Priority lowered to {priority}: the text shows no impact that makes it high (many affected, an "
            "outage, blocked work, data loss, a security incident, money lost).",
        )
    if category != result.category:
        update["category"] = category
    if priority != result.priority:
        update["priority"] = priority
    if notes != result.helpful_notes:
        update["helpful_notes"] = notes
    return TriageResult.model_validate({**result.model_dump(), **update})
