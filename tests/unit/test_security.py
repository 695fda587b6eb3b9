"""Access tokens: only our own unexpired HS256 tokens are accepted."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt

from ticketing_app import security
from ticketing_app.config import get_settings
from ticketing_app.security import create_access_token, decode_access_token, hash_password, verify_password


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip():
    assert decode_access_token(create_access_token(42)) == 42


def test_tampered_payload_is_rejected():
    header, _payload, signature = create_access_token(42).split(".")
    forged = _b64({"sub": "1", "iat": 0, "exp": 4102444800, "typ": "access"})
    assert decode_access_token(f"{header}.{forged}.{signature}") is None


def test_alg_none_is_rejected():
    header = _b64({"alg": "none", "typ": "JWT"})
    payload = _b64({"sub": "1", "iat": 0, "exp": 4102444800, "typ": "access"})
    assert decode_access_token(f"{header}.{payload}.") is None


def test_wrong_key_is_rejected():
    token = jwt.encode(
        {"sub": "1", "iat": datetime.now(UTC), "exp": datetime.now(UTC) + timedelta(hours=1), "typ": "access"},
        "another-key-that-is-long-enough-123456",
        algorithm="HS256",
    )
    assert decode_access_token(token) is None


def test_expired_token_is_rejected():
    old = datetime.now(UTC) - timedelta(minutes=get_settings().jwt_expires_minutes + 1)
    assert decode_access_token(create_access_token(42, now=old)) is None


def test_token_without_expiry_is_rejected():
    token = jwt.encode(
        {"sub": "1", "iat": datetime.now(UTC), "typ": "access"}, get_settings().resolved_jwt_secret(), algorithm="HS256"
    )
    assert decode_access_token(token) is None


def test_garbage_is_rejected():
    for value in ("", "abc", "a.b.c", "Bearer x", "\x00"):
        assert decode_access_token(value) is None


def _token(user_id: int, expires_in: timedelta, secret: str | None = None) -> str:
    now = datetime.now(UTC)
    return jwt.encode(
        {"sub": str(user_id), "ver": 0, "jti": f"t{user_id}", "iat": now, "exp": now + expires_in, "typ": "access"},
        secret or get_settings().resolved_jwt_secret(),
        algorithm="HS256",
    )


def test_a_token_seen_before_is_still_rejected_once_it_expires():
    token = _token(7, timedelta(seconds=2))
    assert decode_access_token(token) == 7
    assert decode_access_token(token) == 7  # from the verified-token cache
    time.sleep(2.1)
    assert decode_access_token(token) is None


def test_a_token_verified_under_one_key_is_rejected_after_the_key_changes(monkeypatch):
    token = create_access_token(9)
    assert decode_access_token(token) == 9
    monkeypatch.setenv("JWT_SECRET", "a-rotated-signing-key-" + "r" * 40)
    get_settings.cache_clear()
    try:
        assert decode_access_token(token) is None
        assert decode_access_token(create_access_token(9)) == 9
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert decode_access_token(token) == 9


def test_the_verified_token_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(security, "VERIFIED_TOKENS_KEPT", 3)
    tokens = [_token(user_id, timedelta(hours=1)) for user_id in range(1, 7)]
    assert [decode_access_token(t) for t in tokens] == [1, 2, 3, 4, 5, 6]
    assert len(security._verified) <= 3
    assert [decode_access_token(t) for t in tokens] == [1, 2, 3, 4, 5, 6]  # evicted ones verify again


def test_password_hash_verifies_and_is_argon2():
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2")
    assert verify_password("correct horse battery", hashed)[0]
    assert not verify_password("wrong horse battery", hashed)[0]
