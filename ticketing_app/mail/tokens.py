"""Signed tokens carried by our mails: which ticket and person a reply belongs to, and one-click unsubscribe.

A reply token travels in the local part of the reply address (``support+<token>@domain``) and in the
``X-Helpdesk-Token`` header, so it survives clients that drop either. Mail systems may change the case of a
local part, so tokens use only lower-case base32 letters and digits. The signature is an HMAC-SHA256 under a
key derived from JWT_SECRET and the token's purpose, so a reply token can never pass as an unsubscribe token
(nor the other way round). Written by hand: `itsdangerous` was considered, but its tokens are mixed-case
base64 with dots, which the local part of an address does not carry reliably.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from ticketing_app.config import get_settings

__all__ = [
    "ReplyTarget",
    "parse_reply_address",
    "rating_token",
    "read_rating_token",
    "read_reply_token",
    "read_unsubscribe_token",
    "reply_address",
    "reply_token",
    "unsubscribe_token",
]

_SIGNATURE_BYTES = 10  # 80 bits: forging one is out of reach, and the address stays short
_REPLY = b"reply-v1"
_UNSUBSCRIBE = b"unsubscribe-v1"
_RATING = b"rating-v1"
_TOKEN = re.compile(r"^[a-z2-7]{16,120}$")
MAX_KIND_CHARS = 40


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Who a reply token was issued to, about which ticket."""

    ticket_id: int
    user_id: int


def _key(purpose: bytes) -> bytes:
    secret = get_settings().resolved_jwt_secret().encode()
    return hmac.new(secret, b"helpdesk-mail-token:" + purpose, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _decode(token: str) -> bytes | None:
    token = token.strip().lower()
    if not _TOKEN.match(token):
        return None
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except ValueError:
        return None
    # The last character carries unused bits: only the one spelling the encoder makes is accepted, so a token
    # cannot be altered and still pass (nor be written several ways, e.g. to dodge a dedupe).
    return raw if _encode(raw) == token else None


def _sign(purpose: bytes, payload: bytes) -> str:
    signature = hmac.new(_key(purpose), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return _encode(payload + signature)


def _verify(purpose: bytes, token: str) -> bytes | None:
    raw = _decode(token)
    if raw is None or len(raw) <= _SIGNATURE_BYTES:
        return None
    payload, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
    expected = hmac.new(_key(purpose), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return payload if hmac.compare_digest(signature, expected) else None


def reply_token(ticket_id: int, user_id: int) -> str:
    """A token saying "a reply from `user_id` about `ticket_id`"."""
    return _sign(_REPLY, struct.pack(">QQ", ticket_id, user_id))


def read_reply_token(token: str) -> ReplyTarget | None:
    """The ticket and user a genuine reply token names; None for anything forged, cut or altered."""
    payload = _verify(_REPLY, token)
    if payload is None or len(payload) != 16:
        return None
    ticket_id, user_id = struct.unpack(">QQ", payload)
    return ReplyTarget(ticket_id, user_id)


def reply_address(ticket_id: int, user_id: int) -> str:
    """SUPPORT_ADDRESS with the reply token as its plus part: support+<token>@example.com."""
    local, _, domain = get_settings().support_address.partition("@")
    return f"{local}+{reply_token(ticket_id, user_id)}@{domain}"


def parse_reply_address(address: str) -> ReplyTarget | None:
    """The target of a plus-addressed reply to SUPPORT_ADDRESS; None for any other address."""
    local, _, domain = address.strip().lower().rpartition("@")
    support_local, _, support_domain = get_settings().support_address.partition("@")
    base, plus, token = local.partition("+")
    if domain != support_domain or base != support_local or not plus:
        return None
    return read_reply_token(token)


def unsubscribe_token(user_id: int, kind: str) -> str:
    """A token that turns off one kind of mail for one user, without logging in (RFC 8058)."""
    kind_bytes = kind.encode()
    if not kind_bytes or len(kind_bytes) > MAX_KIND_CHARS:
        raise ValueError("mail kind must be 1 to 40 bytes")
    return _sign(_UNSUBSCRIBE, struct.pack(">Q", user_id) + kind_bytes)


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(user_id, kind) of a genuine unsubscribe token, else None."""
    payload = _verify(_UNSUBSCRIBE, token)
    if payload is None or len(payload) <= 8:
        return None
    try:
        return struct.unpack(">Q", payload[:8])[0], payload[8:].decode()
    except UnicodeDecodeError:
        return None


def rating_token(ticket_id: int, user_id: int) -> str:
    """A token that lets `user_id` rate `ticket_id` from the resolved mail, without logging in."""
    return _sign(_RATING, struct.pack(">QQ", ticket_id, user_id))


def read_rating_token(token: str) -> ReplyTarget | None:
    """The ticket and requester of a genuine rating token, else None."""
    payload = _verify(_RATING, token)
    if payload is None or len(payload) != 16:
        return None
    ticket_id, user_id = struct.unpack(">QQ", payload)
    return ReplyTarget(ticket_id, user_id)
