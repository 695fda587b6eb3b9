"""Skill names: normalisation (strict for admins, lenient for AI output), synonyms, exact matching."""

from __future__ import annotations

import pytest

from ticketing_app.skills import (
    MAX_SKILL_LENGTH,
    MAX_SKILLS,
    SkillError,
    canonical_skill,
    matched_skills,
    normalize_skill,
    normalize_skills,
)

# ----- normalize_skill / normalize_skills -----


def test_normalize_skill_trims_lowercases_and_collapses_spaces() -> None:
    assert normalize_skill("  Node   JS ") == "node js"
    assert normalize_skill("PostgreSQL") == "postgresql"
    assert normalize_skill("\tSingle\nSign-On ") == "single sign-on"


@pytest.mark.parametrize("strict", [True, False])
def test_normalize_skills_keeps_first_occurrence_order_and_drops_blanks(strict: bool) -> None:
    assert normalize_skills([" Billing", "", "   ", "Payments ", "SSO"], strict=strict) == [
        "billing",
        "payments",
        "sso",
    ]


@pytest.mark.parametrize("strict", [True, False])
def test_normalize_skills_dedupes_by_canonical_form(strict: bool) -> None:
    # "MFA" and "2fa" are one skill; "Postgres" and "postgresql" too. The first spelling is kept.
    values = ["MFA", "billing", "2FA", "BILLING", "Postgres", "postgresql", "two-factor", "JS", "JavaScript"]
    assert normalize_skills(values, strict=strict) == ["mfa", "billing", "postgres", "js"]


def test_normalize_skills_accepts_exactly_the_limits() -> None:
    skills = [f"skill {i}" for i in range(MAX_SKILLS)]
    assert normalize_skills(skills) == skills
    longest = "x" * MAX_SKILL_LENGTH
    assert normalize_skills([longest]) == [longest]
    # Length is measured after trimming and collapsing white space.
    assert normalize_skills(["  " + "y" * MAX_SKILL_LENGTH + "  "]) == ["y" * MAX_SKILL_LENGTH]


def test_strict_rejects_more_than_30_skills() -> None:
    with pytest.raises(SkillError, match=str(MAX_SKILLS)):
        normalize_skills([f"skill {i}" for i in range(MAX_SKILLS + 1)])


def test_strict_counts_after_dedupe() -> None:
    # 31 entries, but two of them are the same skill: 30 distinct skills are fine.
    values = [f"skill {i}" for i in range(MAX_SKILLS)] + ["SKILL 0"]
    assert len(normalize_skills(values)) == MAX_SKILLS


def test_lenient_cuts_the_list_at_30() -> None:
    values = [f"skill {i}" for i in range(45)]
    assert normalize_skills(values, strict=False) == values[:MAX_SKILLS]


def test_strict_rejects_a_skill_longer_than_50_characters() -> None:
    with pytest.raises(SkillError, match="too long"):
        normalize_skills(["billing", "z" * (MAX_SKILL_LENGTH + 1)])


def test_lenient_drops_a_skill_longer_than_50_characters() -> None:
    assert normalize_skills(["billing", "z" * (MAX_SKILL_LENGTH + 1), "sso"], strict=False) == ["billing", "sso"]


@pytest.mark.parametrize("bad", ["bill\x00ing", "sso\x07", "a\x1bb", "x\x08y"])
def test_strict_rejects_control_characters(bad: str) -> None:
    with pytest.raises(SkillError, match="control characters"):
        normalize_skills([bad])


@pytest.mark.parametrize("bad", ["bill\x00ing", "sso\x07", "a\x1bb", "x\x08y"])
def test_lenient_drops_control_characters(bad: str) -> None:
    assert normalize_skills(["billing", bad, "sso"], strict=False) == ["billing", "sso"]


def test_tabs_and_newlines_are_white_space_not_control_characters() -> None:
    assert normalize_skills(["rest\tapi", "single\nsign on"]) == ["rest api", "single sign on"]
    # Separators Python counts as white space (\x1c-\x1f) become a space too: never stored as they are.
    result = normalize_skills(["x\x1fy", "p\x1cq\r"], strict=False)
    assert result == ["x y", "p q"]
    assert not any(ch < " " for skill in result for ch in skill)


def test_non_text_entries() -> None:
    with pytest.raises(SkillError, match="text"):
        normalize_skills(["billing", 42])  # type: ignore[list-item]
    assert normalize_skills(["billing", 42, None, "sso"], strict=False) == ["billing", "sso"]  # type: ignore[list-item]


def test_error_message_does_not_echo_a_huge_value() -> None:
    with pytest.raises(SkillError) as info:
        normalize_skills(["q" * 10_000])
    assert len(str(info.value)) < 200


# ----- canonical_skill -----


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["2fa", "2FA", "MFA", "mfa", " Two-Factor ", "two factor", "two-factor authentication"], "2fa"),
        (["postgres", "Postgres", "postgresql", "PostgreSQL", "psql", "pg"], "postgres"),
        (["js", "JS", "javascript", "JavaScript", "ecmascript"], "js"),
        (["sso", "Single Sign-On", "single  sign on"], "sso"),
        (["k8s", "Kubernetes"], "kubernetes"),
    ],
)
def test_canonical_skill_folds_synonyms(spellings: list[str], canonical: str) -> None:
    assert {canonical_skill(s) for s in spellings} == {canonical}


def test_canonical_skill_leaves_other_skills_alone() -> None:
    assert canonical_skill("  Billing ") == "billing"
    assert canonical_skill("C++") == "c++"
    assert canonical_skill("typescript") != canonical_skill("javascript")


# ----- matched_skills -----


def test_matched_skills_by_synonym_keeps_the_required_spelling() -> None:
    assert matched_skills(["mfa", "billing"], ["2FA"]) == ["mfa"]
    assert matched_skills(["PostgreSQL"], ["postgres"]) == ["PostgreSQL"]
    assert matched_skills(["javascript", "sso"], ["JS", "Single Sign-On"]) == ["javascript", "sso"]


def test_matched_skills_never_matches_substrings() -> None:
    assert matched_skills(["c"], ["css", "c++", "c#"]) == []
    assert matched_skills(["css"], ["c"]) == []
    assert matched_skills(["java"], ["javascript"]) == []
    assert matched_skills(["pay"], ["payments"]) == []
    assert matched_skills(["billing"], ["billing-ops", "pre-billing"]) == []


def test_regex_metacharacters_are_harmless() -> None:
    assert matched_skills(["C++"], ["c++"]) == ["C++"]
    assert matched_skills(["C++"], ["c", "cpp", "c+"]) == []
    assert matched_skills([".*"], ["billing", "sso"]) == []
    assert matched_skills(["a|b"], ["a", "b"]) == []


def test_empty_lists_match_nothing() -> None:
    assert matched_skills([], ["billing", "sso"]) == []
    assert matched_skills(["billing"], []) == []
    assert matched_skills([], []) == []


def test_matched_skills_keeps_required_order_and_duplicates_of_the_input() -> None:
    assert matched_skills(["sso", "billing", "payments"], ["payments", "billing", "sso"]) == [
        "sso",
        "billing",
        "payments",
    ]
