"""Single-use links mailed to a user: a random token in the link, only its SHA-256 in `account_tokens`.

`issue` makes one; `consume` spends one in a single UPDATE (so two clicks at once cannot both use it) and
names its user. The flows that mail and act on them are in services/self_service.py (and sign-up).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import AccountTokenPurpose
from ticketing_app.models import AccountToken, User

# Where each link lands: the page that reads `token=` and posts it to the API.
PAGES: dict[AccountTokenPurpose, str] = {
    AccountTokenPurpose.PASSWORD_RESET: "/reset-password",
    AccountTokenPurpose.VERIFY_EMAIL: "/verify-email",
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token (256 random bits, URL-safe) and its hash."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def lifetime(purpose: AccountTokenPurpose) -> timedelta:
    settings = get_settings()
    if purpose == AccountTokenPurpose.PASSWORD_RESET:
        return timedelta(minutes=settings.password_reset_minutes)
    return timedelta(hours=settings.email_verify_hours)


def link(purpose: AccountTokenPurpose, token: str) -> str:
    """{APP_BASE_URL}/reset-password?token=... (tokens are URL-safe: nothing to quote)."""
    return f"{get_settings().app_base_url}{PAGES[purpose]}?token={token}"


def issue(session: Session, user: User, purpose: AccountTokenPurpose) -> str:
    """Store a new link's hash for `user`; the link itself (only the mail carries it)."""
    token, digest = new_token()
    session.add(
        AccountToken(
            user_id=user.id, purpose=purpose, token_hash=digest, expires_at=datetime.now(UTC) + lifetime(purpose)
        )
    )
    session.flush()
    return link(purpose, token)


def consume(session: Session, token: str, purpose: AccountTokenPurpose) -> int | None:
    """Spend a link: the user id when it is genuine, of this purpose, unused and unexpired; else None."""
    return session.scalar(
        update(AccountToken)
        .where(
            AccountToken.token_hash == token_hash(token),
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > func.now(),
        )
        .values(used_at=func.now())
        .returning(AccountToken.user_id)
    )


def expire_all(session: Session, user_id: int, purpose: AccountTokenPurpose) -> None:
    """Every unused link of this purpose for `user_id` stops working (e.g. after a successful reset)."""
    session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
        .values(used_at=func.now())
    )
