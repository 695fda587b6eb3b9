"""Signed mail tokens: round trip, case-insensitivity, and refusal of anything forged or swapped."""

from __future__ import annotations

import pytest

from ticketing_app.mail import tokens


def test_reply_token_round_trip_and_survives_upper_case() -> None:
    token = tokens.reply_token(42, 7)
    assert token == token.lower() and token.isalnum()
    assert tokens.read_reply_token(token) == tokens.ReplyTarget(42, 7)
    assert tokens.read_reply_token(token.upper()) == tokens.ReplyTarget(42, 7)


def test_reply_address_is_plus_addressed_support_address() -> None:
    address = tokens.reply_address(42, 7)
    local, _, domain = address.partition("@")
    assert local.startswith("helpdesk+") and domain == "localhost"
    assert tokens.parse_reply_address(address.upper()) == tokens.ReplyTarget(42, 7)
    assert tokens.parse_reply_address("helpdesk@localhost") is None
    assert tokens.parse_reply_address(address.replace("@localhost", "@evil.example")) is None


@pytest.mark.parametrize("position", [0, 5, -1])
def test_altered_reply_token_is_refused(position: int) -> None:
    token = tokens.reply_token(42, 7)
    flipped = "a" if token[position] != "a" else "b"
    altered = token[:position] + flipped + token[position + 1 :] if position != -1 else token[:-1] + flipped
    assert tokens.read_reply_token(altered) is None


@pytest.mark.parametrize("junk", ["", "abc", "not a token!", "a" * 500, "=" * 20])
def test_junk_is_refused(junk: str) -> None:
    assert tokens.read_reply_token(junk) is None
    assert tokens.read_unsubscribe_token(junk) is None


def test_purposes_do_not_mix() -> None:
    unsubscribe = tokens.unsubscribe_token(7, "ticket_reply")
    assert tokens.read_unsubscribe_token(unsubscribe) == (7, "ticket_reply")
    assert tokens.read_reply_token(unsubscribe) is None
    assert tokens.read_unsubscribe_token(tokens.reply_token(42, 7)) is None


def test_tokens_depend_on_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from ticketing_app.config import get_settings

    token = tokens.reply_token(1, 2)
    monkeypatch.setenv("JWT_SECRET", "x9Qv3LmT7pR2sW8kZ4nB6cY1dF5gH0jKaEoUiPqXwV")
    get_settings.cache_clear()
    try:
        assert tokens.read_reply_token(token) is None
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
