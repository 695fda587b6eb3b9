"""Password hashing and access tokens: small functions with no knowledge of the database."""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

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
    return str(password_context().hash(password))


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one was made with outdated parameters)."""
    matches, new_hash = password_context().verify_and_update(password, password_hash)
    return bool(matches), new_hash


@lru_cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return str(_password_context(time_cost, memory_cost, parallelism).hash("not-a-real-password"))


def burn_password_check(password: str) -> None:
    """Spend the same time as a real check, so unknown e-mails answer as slowly as known ones."""
    s = get_settings()
    password_context().verify(password, _dummy_hash(s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism))


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a valid token says: whose it is, which of their token versions, its id, when it expires."""

    user_id: int
    version: int  # compared with users.token_version on every use: a bump revokes earlier tokens
    jti: str  # the token's own id, recorded in revoked_tokens when it is logged out
    expires_at: float  # Unix time


def create_access_token(user_id: int, *, version: int = 0, now: datetime | None = None) -> str:
    """A signed HS256 token carrying the user id, the user's token version and a unique id; the role is always
    read from the database, and so are the version and the revocations it is checked against."""
    settings = get_settings()
    issued = now or datetime.now(UTC)
    payload = {
        "sub": str(user_id),
        "ver": version,
        "jti": secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + timedelta(minutes=settings.jwt_expires_minutes),
        "typ": "access",
    }
    return jwt.encode(payload, settings.resolved_jwt_secret(), algorithm=JWT_ALGORITHM)


# Tokens already verified: (signing key, token) -> their claims. This caches the signature check only: a
# token's signature and claims depend only on the key and its bytes, so a hit needs just the expiry check;
# that spares PyJWT's parsing and HMAC on every request after a client's first (a visible share of intake's
# CPU; see bench/README.md). Whether the token is still honoured (its user active, its version current, not
# logged out) is never cached: every use compares it with the database (services/accounts.py), so a
# revocation holds at once in every process. Only valid tokens get in (forged ones cannot fill it);
# bounded, oldest dropped first.
_verified: dict[tuple[str, str], AccessClaims] = {}
_verified_lock = threading.Lock()
VERIFIED_TOKENS_KEPT = 4096


def decode_access_claims(token: str) -> AccessClaims | None:
    """The claims of a validly signed, unexpired access token; None for anything else."""
    secret = get_settings().resolved_jwt_secret()
    known = _verified.get((secret, token))
    if known is not None:
        return known if time.time() < known.expires_at else None
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],  # pinned: 'none' and other algorithms are refused
            options={"require": ["exp", "iat", "sub", "jti", "ver"]},
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access":
        return None
    try:
        claims = AccessClaims(
            user_id=int(payload["sub"]),
            version=int(payload["ver"]),
            jti=str(payload["jti"]),
            expires_at=float(payload["exp"]),
        )
    except (TypeError, ValueError):
        return None
    if not 0 < len(claims.jti) <= 64:
        return None
    with _verified_lock:
        while len(_verified) >= VERIFIED_TOKENS_KEPT:
            del _verified[next(iter(_verified))]
        _verified[(secret, token)] = claims
    return claims


def decode_access_token(token: str) -> int | None:
    """The user id of a validly signed, unexpired token; None for anything else (not checked for revocation)."""
    claims = decode_access_claims(token)
    return claims.user_id if claims is not None else None


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """The client's address for throttling: the connection's peer, or, only when that peer is a trusted proxy
    (TRUSTED_PROXIES), the right-most address in X-Forwarded-For that is not itself a trusted proxy.

    A client can write anything into X-Forwarded-For; only what our own proxies appended can be believed,
    and they append on the right.
    """
    trusted = get_settings().trusted_proxy_networks()
    address = (peer or "").strip()
    if not trusted or not forwarded_for or not _is_trusted(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _parse_ip(hop):
            return address  # garbage where our proxy's entry should be: fall back to the proxy's own address
        address = hop
        if not _is_trusted(hop, trusted):
            return hop
    return address


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _is_trusted(value: str, trusted: tuple[Any, ...]) -> bool:
    ip = _parse_ip(value)
    return ip is not None and any(ip in network for network in trusted)
