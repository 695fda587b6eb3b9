"""Account self-service: password reset by e-mail (also sent by an admin), e-mail verification, the profile.

A reset request answers the same words whether or not the address has an account, after the same work (a
token is made and the mail composed either way; only a real account gets them stored and queued), so the
answer tells a stranger nothing. Inactive accounts get nothing. See README "Accounts".
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import AccountTokenPurpose, ThrottleBucket
from ticketing_app.errors import Conflict, InvalidInput, NotFound
from ticketing_app.mail import messages
from ticketing_app.models import User
from ticketing_app.schemas import MAX_ID, PasswordResetConfirm, ProfileUpdate, UserOut
from ticketing_app.security import hash_password
from ticketing_app.services import account_links, notifications, throttle
from ticketing_app.services.accounts import (
    check_password_policy,
    find_user_by_email,
    require_admin,
    revoke_all_tokens,
    user_out,
)

RESET = AccountTokenPurpose.PASSWORD_RESET
VERIFY = AccountTokenPurpose.VERIFY_EMAIL
LINK_INVALID = "This link is not valid any more (it was used, it expired, or it was cut). Ask for a new one."


def reset_requested_answer() -> str:
    minutes = get_settings().password_reset_minutes
    return (
        "If an account uses this address, we have sent it a link to choose a new password. "
        f"The link works once, for {minutes} minutes."
    )


def request_password_reset(session: Session, email: str, *, address: str | None = None) -> str:
    """Mail a reset link to the account with this address, if there is an active one; the same answer either way.

    At most PASSWORD_RESET_MAX_PER_EMAIL per e-mail asked for and PASSWORD_RESET_MAX_PER_ADDRESS per client
    address, per RATE_WINDOW_SECONDS (counted for unknown addresses too, so a 429 tells nothing either).
    """
    settings = get_settings()
    email = email.strip().lower()
    for bucket, key, limit in (
        (ThrottleBucket.RESET_ADDRESS, address, settings.password_reset_max_per_address),
        (ThrottleBucket.RESET_EMAIL, email, settings.password_reset_max_per_email),
    ):
        throttle.hit(
            session,
            bucket,
            key,
            limit=limit,
            window_seconds=settings.rate_window_seconds,
            message="Too many password-reset requests.",
        )
    throttle.maybe_sweep(session)
    user = find_user_by_email(session, email)
    if user is not None and user.is_active:
        notifications.password_reset(session, user, account_links.issue(session, user, RESET))
    else:
        # The same work without storing it: a token, and the mail it would have been.
        token, _ = account_links.new_token()
        messages.password_reset_email(
            to=email, name="", reset_url=account_links.link(RESET, token), minutes=settings.password_reset_minutes
        )
    return reset_requested_answer()


def send_password_reset(session: Session, actor: User, user_id: int) -> str:
    """An admin mails someone a reset link (e.g. an account made for them, or a forgotten password)."""
    require_admin(actor)
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound("No such user.")
    if not user.is_active:
        raise Conflict("This account is deactivated; reactivate it before sending a reset link.")
    notifications.password_reset(session, user, account_links.issue(session, user, RESET), by_admin=True)
    return f"A password-reset link is on its way to {user.email}."


def _linked_user(session: Session, token: str, purpose: AccountTokenPurpose) -> User:
    user_id = account_links.consume(session, token, purpose)
    user = session.get(User, user_id, with_for_update=True) if user_id is not None else None
    if user is None or not user.is_active:
        raise InvalidInput(LINK_INVALID, field="token")
    return user


def confirm_password_reset(session: Session, data: PasswordResetConfirm) -> User:
    """Set a new password through a reset link: every earlier session ends, every other reset link of theirs
    stops working, and the address counts as verified (they read a mail sent to it)."""
    user = _linked_user(session, data.token, RESET)
    check_password_policy(data.password, user.email)  # a refusal rolls back: the link still works
    user.password_hash = hash_password(data.password)
    revoke_all_tokens(user)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
    account_links.expire_all(session, user.id, RESET)
    session.flush()
    return user


def verify_email(session: Session, token: str) -> User:
    """Mark the address of a verify link's user as verified (idempotent for a verified one)."""
    user = _linked_user(session, token, VERIFY)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
    account_links.expire_all(session, user.id, VERIFY)
    session.flush()
    return user


def resend_verification(session: Session, actor: User) -> str:
    """Mail `actor` a fresh verify link (at most VERIFY_EMAIL_MAX_PER_USER per RATE_WINDOW_SECONDS)."""
    if actor.email_verified:
        return "Your e-mail address is already verified."
    settings = get_settings()
    throttle.hit(
        session,
        ThrottleBucket.VERIFY_USER,
        str(actor.id),
        limit=settings.verify_email_max_per_user,
        window_seconds=settings.rate_window_seconds,
        message="Too many verification mails.",
    )
    notifications.verification(session, actor, account_links.issue(session, actor, VERIFY))
    return f"We have sent a new link to {actor.email}."


def update_profile(session: Session, actor: User, data: ProfileUpdate) -> UserOut:
    """What people change about themselves: their name (the password has its own action)."""
    actor.name = data.name
    session.flush()
    return user_out(actor)
