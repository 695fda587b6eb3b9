"""Password hashing and access tokens: small functions with no knowledge of the database."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from passlib.context import CryptContext

from ticketing_app.config import get_settings

JWT_ALGORITHM = "HS256"


@lru_cache
def _password_context(time_cost: int, memory_cost: int, parallelism: int) -> CryptContext:
    return CryptContext(
        schemes=["argon2"],
        argon2__time_cost=time_cost,
        argon2__memory_cost=memory_cost,
        argon2__parallelism=parallelism,
    )


def password_context() -> CryptContext:
    """The hashing context with the cost from settings (tests set cheap values)."""
    s = get_settings()
    return _password_context(s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism)


def hash_password(password: str) -> str:
    return password_context().hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one was made with outdated parameters)."""
    return password_context().verify_and_update(password, password_hash)


@lru_cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return _password_context(time_cost, memory_cost, parallelism).hash("not-a-real-password")


def burn_password_check(password: str) -> None:
    """Spend the same time as a real check, so unknown e-mails answer as slowly as known ones."""
    s = get_settings()
    password_context().verify(password, _dummy_hash(s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism))


def create_access_token(user_id: int, *, now: datetime | None = None) -> str:
    """A signed HS256 token carrying only the user id; the role is always read from the database."""
    settings = get_settings()
    issued = now or datetime.now(UTC)
    payload = {
        "sub": str(user_id),
        "iat": issued,
        "exp": issued + timedelta(minutes=settings.jwt_expires_minutes),
        "typ": "access",
    }
    return jwt.encode(payload, settings.resolved_jwt_secret(), algorithm=JWT_ALGORITHM)


# Tokens already verified: (signing key, token) -> (user id, expiry as a Unix time). A token's validity
# depends only on the key, its bytes and the clock, so a hit needs just the expiry check; that spares
# PyJWT's parsing and HMAC on every request after a client's first (a visible share of intake's CPU; see
# bench/README.md). Only valid tokens get in (forged ones cannot fill it); bounded, oldest dropped first.
_verified: dict[tuple[str, str], tuple[int, float]] = {}
_verified_lock = threading.Lock()
VERIFIED_TOKENS_KEPT = 4096


def decode_access_token(token: str) -> int | None:
    """The user id of a valid, unexpired token; None for anything else."""
    secret = get_settings().resolved_jwt_secret()
    known = _verified.get((secret, token))
    if known is not None:
        return known[0] if time.time() < known[1] else None
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],  # pinned: 'none' and other algorithms are refused
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access":
        return None
    try:
        user_id = int(payload["sub"])
    except (TypeError, ValueError):
        return None
    with _verified_lock:
        while len(_verified) >= VERIFIED_TOKENS_KEPT:
            del _verified[next(iter(_verified))]
        _verified[(secret, token)] = (user_id, float(payload["exp"]))
    return user_id
