"""Accounts: sign-up, log-in (throttled), tokens to users, and admin management of users."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import STAFF_ROLES, AccountTokenPurpose, Role, ThrottleBucket
from ticketing_app.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from ticketing_app.models import RevokedToken, User
from ticketing_app.schemas import LoginIn, Page, PasswordChange, SignupIn, UserFilters, UserOut, UserUpdate
from ticketing_app.security import (
    AccessClaims,
    burn_password_check,
    create_access_token,
    decode_access_claims,
    hash_password,
    verify_password,
)
from ticketing_app.services import account_links, notifications, routing, throttle
from ticketing_app.services.routing import open_load
from ticketing_app.skills import SkillError, canonical_skill, normalize_skills

# Advisory-lock key space (the two-int form) of the per-e-mail log-in lock.
LOGIN_LOCK_SPACE = 0x6C6F67  # "log"


def check_password_policy(password: str, email: str) -> None:
    """At least 8 characters, not the e-mail address, not only spaces."""
    if len(password) < 8:
        raise InvalidInput("Password must be at least 8 characters long.", field="password")
    if not password.strip():
        raise InvalidInput("Password cannot be only spaces.", field="password")
    if password.strip().lower() == email.strip().lower():
        raise InvalidInput("Password must not be the same as your e-mail address.", field="password")


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def signup(session: Session, data: SignupIn, *, address: str | None = None, verified: bool = False) -> tuple[User, str]:
    """Create a `user` account and queue its welcome e-mail, which carries the link that verifies the address
    (`verified`: already vouched for, e.g. the demo data: no link); returns the user and an access token.

    At most SIGNUP_MAX_PER_ADDRESS per RATE_WINDOW_SECONDS from one client address (counted before the
    password is hashed, and kept even when the sign-up then fails: a taken e-mail costs a hash too).
    """
    settings = get_settings()
    throttle.hit(
        session,
        ThrottleBucket.SIGNUP_ADDRESS,
        address,
        limit=settings.signup_max_per_address,
        window_seconds=settings.rate_window_seconds,
        message="Too many sign-ups from your network.",
    )
    throttle.maybe_sweep(session)
    session.commit()
    check_password_policy(data.password, data.email)
    # Hash first so a taken e-mail answers in the same time as a free one.
    password_hash = hash_password(data.password)
    if find_user_by_email(session, data.email) is not None:
        raise Conflict("An account with this e-mail already exists. Log in instead.")
    user = User(name=data.name, email=data.email, password_hash=password_hash, role=Role.USER, skills=[])
    user.email_verified_at = datetime.now(UTC) if verified else None
    session.add(user)
    session.flush()
    verify_url = None if verified else account_links.issue(session, user, AccountTokenPurpose.VERIFY_EMAIL)
    notifications.welcome(session, user, verify_url=verify_url)
    return user, issue_token(user)


def issue_token(user: User) -> str:
    """An access token for `user`, valid until it expires, is logged out, or the user's version moves on."""
    return create_access_token(user.id, version=user.token_version or 0)


def revoke_all_tokens(user: User) -> None:
    """End every session `user` has (a password change, a role change, deactivation): each token carries the
    version it was issued under, and only the current one is honoured."""
    user.token_version = (user.token_version or 0) + 1


def _pair_key(email: str, address: str | None) -> str:
    return f"{email}|{address or ''}"


def login(session: Session, data: LoginIn, *, address: str | None = None) -> tuple[User, str]:
    """Check the credentials; the same message and timing whether or not the e-mail exists.

    `address` is the client's (None: a call from no client, which skips the per-address limit).
    Throttled after OWASP's guidance (README "Throttling"), so that a stranger cannot lock a known account out:
    - per client address, any e-mail: LOGIN_MAX_PER_ADDRESS attempts per LOGIN_WINDOW_MINUTES (spraying, and
      the hashing bill of unknown e-mails); counted before hashing, given back on success;
    - per (e-mail, address): LOGIN_MAX_FAILURES failures block that pair only, for LOGIN_WINDOW_MINUTES,
      doubling with each further failure up to LOGIN_BLOCK_MAX_MINUTES; a success clears it. The owner,
      from their own address, is a different pair;
    - per e-mail from anywhere: past LOGIN_ACCOUNT_SLOW_AFTER failures an hour each attempt waits (up to
      LOGIN_ACCOUNT_MAX_DELAY_SECONDS) before it is checked: slower, never refused.
    """
    settings = get_settings()
    email = data.email.strip().lower()
    window = settings.login_window_minutes * 60
    throttle.hit(
        session,
        ThrottleBucket.LOGIN_ADDRESS,
        address,
        limit=settings.login_max_per_address,
        window_seconds=window,
        message="Too many log-in attempts from your network.",
    )
    throttle.maybe_sweep(session)
    account_failures = throttle.hits_within(session, ThrottleBucket.LOGIN_ACCOUNT, email, 3600)
    session.commit()  # the attempt counts in every process at once, and no connection is held while waiting
    if account_failures >= settings.login_account_slow_after:
        extra = account_failures - settings.login_account_slow_after + 1
        time.sleep(min(settings.login_account_max_delay_seconds, 0.1 * extra))
    pair = _pair_key(email, address)
    # One check at a time per (e-mail, address), across processes (held until this transaction ends):
    # otherwise a burst of parallel guesses all pass the block check before the first failure is counted.
    session.execute(select(func.pg_advisory_xact_lock(LOGIN_LOCK_SPACE, func.hashtext(pair))))
    blocked = throttle.blocked_for(session, ThrottleBucket.LOGIN_PAIR, pair)
    if blocked:
        raise throttle.too_many("Too many failed log-in attempts.", blocked)
    user = find_user_by_email(session, email)
    if user is None:
        burn_password_check(data.password)
        ok, new_hash = False, None
    else:
        ok, new_hash = verify_password(data.password, user.password_hash)
    if not ok or user is None or not user.is_active:
        record_failed_login(session, email, address)
        session.commit()  # the failure must count even though this action ends in an error
        raise NotAuthenticated("Wrong e-mail or password.")
    if new_hash:  # hashed with older or cheaper parameters: upgrade now that we know the password
        user.password_hash = new_hash
    throttle.clear(session, ThrottleBucket.LOGIN_PAIR, pair)
    throttle.give_back(session, ThrottleBucket.LOGIN_ADDRESS, address)
    return user, issue_token(user)


def record_failed_login(session: Session, email: str, address: str | None = None) -> None:
    """Count one failure towards the pair's block and the account's slow-down."""
    settings = get_settings()
    throttle.record_failure(
        session,
        ThrottleBucket.LOGIN_PAIR,
        _pair_key(email, address),
        limit=settings.login_max_failures,
        base_seconds=settings.login_window_minutes * 60,
        cap_seconds=settings.login_block_max_minutes * 60,
    )
    throttle.hit(session, ThrottleBucket.LOGIN_ACCOUNT, email, limit=2**31 - 1, window_seconds=3600, message="")


SESSION_INVALID = "Your session has expired or is no longer valid. Please log in again."


def claims_from_token(token: str | None) -> AccessClaims:
    """The claims of a validly signed, unexpired token; the caller must still check them against the database
    (user active, token version current, not logged out): `user_from_token`, or intake's own statement."""
    claims = decode_access_claims(token) if token else None
    if claims is None:
        raise NotAuthenticated(SESSION_INVALID)
    return claims


def user_from_token(session: Session, token: str | None) -> User:
    """The active user a token belongs to, read fresh so role changes apply at once; NotAuthenticated when the
    token was logged out or issued before the user's tokens were revoked. One query, on every use."""
    claims = claims_from_token(token)
    row = session.execute(
        select(User, exists().where(RevokedToken.jti == claims.jti)).where(User.id == claims.user_id)
    ).first()
    if row is None:
        raise NotAuthenticated(SESSION_INVALID)
    user, revoked = row
    if revoked or not user.is_active or user.token_version != claims.version:
        raise NotAuthenticated(SESSION_INVALID)
    return user


def logout(session: Session, token: str | None) -> None:
    """End this session on the server: the token is refused from now on, in every process. Idempotent;
    a token that is already invalid needs nothing."""
    claims = decode_access_claims(token) if token else None
    if claims is None:
        return
    expires = datetime.fromtimestamp(claims.expires_at, UTC)
    session.execute(insert(RevokedToken).values(jti=claims.jti, expires_at=expires).on_conflict_do_nothing())
    # Rows of tokens that have expired anyway are no longer needed (indexed on expires_at).
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < func.now()))


def change_password(session: Session, actor: User, data: PasswordChange) -> str:
    """Change `actor`'s password (the current one is required) and end all their other sessions; returns a
    fresh token for the session that made the change."""
    ok, _ = verify_password(data.current_password, actor.password_hash)
    if not ok:
        raise InvalidInput("The current password is not right.", field="current_password")
    check_password_policy(data.new_password, actor.email)
    actor.password_hash = hash_password(data.new_password)
    revoke_all_tokens(actor)
    session.flush()
    return issue_token(actor)


def require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("Only admins can do this.")


def open_load_by_user(session: Session, user_ids: list[int]) -> dict[int, int]:
    """Open (open or in progress) tickets assigned to each user."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, open_load(User.id)).where(User.id.in_(user_ids))).all()
    return {user_id: count for user_id, count in rows}


def user_out(user: User, open_tickets: int | None = None) -> UserOut:
    out = UserOut.model_validate(user)
    out.open_tickets = open_tickets
    return out


def list_users(session: Session, actor: User, filters: UserFilters) -> Page[UserOut]:
    """Admins search users by name or e-mail, optionally by role."""
    require_admin(actor)
    query = select(User)
    if filters.q:
        pattern = f"%{escape_like(filters.q.strip())}%"
        query = query.where(or_(User.name.ilike(pattern, escape="\\"), User.email.ilike(pattern, escape="\\")))
    if filters.role:
        query = query.where(User.role == filters.role)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    users = session.scalars(query.order_by(User.name, User.id).limit(filters.limit).offset(filters.offset)).all()
    load = open_load_by_user(session, [u.id for u in users])
    return Page[UserOut](items=[user_out(u, load.get(u.id, 0)) for u in users], total=total)


@dataclass(frozen=True)
class UsersPage:
    """The user-management page: one page of people, and the skills moderators offer (for suggestions)."""

    users: Page[UserOut]
    skill_vocabulary: list[str]


def list_users_page(session: Session, actor: User, filters: UserFilters) -> UsersPage:
    """`list_users` with the skill vocabulary, in one transaction (admins only)."""
    return UsersPage(users=list_users(session, actor, filters), skill_vocabulary=skill_vocabulary(session))


def update_user(session: Session, actor: User, data: UserUpdate) -> UserOut:
    """Admins change a user's role, skills or active flag; nobody else can.

    Someone who can no longer work tickets (deactivated, or demoted to user) keeps none: their open tickets
    are routed again in this transaction (routing.reroute_open_tickets).
    """
    require_admin(actor)
    # The routing lock first (before any user or ticket row lock, as routing takes them): a ticket being
    # routed to this person right now is committed before we look for their tickets, and routing that starts
    # later waits for this change and no longer sees them as a candidate.
    routing.lock(session)
    user = find_user_by_email(session, data.email)
    if user is None:
        raise NotFound("No user with this e-mail.")
    demoting_admin = user.role == Role.ADMIN and (
        (data.role is not None and data.role != Role.ADMIN) or data.active is False
    )
    if demoting_admin and _active_admin_count(session, exclude=user.id) == 0:
        raise Conflict("This is the last active admin; promote another admin first.")
    if (data.role is not None and data.role != user.role) or (data.active is False and user.is_active):
        revoke_all_tokens(user)  # a role change or deactivation ends the user's sessions
    if data.role is not None:
        user.role = data.role
    if data.skills is not None:
        try:
            set_skills(user, normalize_skills(data.skills, strict=True))
        except SkillError as exc:
            raise InvalidInput(str(exc), field="skills") from exc
    if data.active is not None:
        user.is_active = data.active
    session.flush()
    if not user.is_active or user.role not in STAFF_ROLES:
        why = "was deactivated" if not user.is_active else f"was demoted to {user.role}"
        routing.reroute_open_tickets(session, actor, user, why)
        session.flush()
    return user_out(user, open_load_by_user(session, [user.id]).get(user.id, 0))


def _active_admin_count(session: Session, *, exclude: int) -> int:
    # Lock the active admins in id order: two admins demoting each other at once queue up here, and the
    # second one sees the first one's change, instead of both passing the check and leaving no admin.
    ids = session.scalars(
        select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id).with_for_update()
    ).all()
    return sum(1 for user_id in ids if user_id != exclude)


def set_skills(user: User, skills: list[str]) -> None:
    """Store normalised skills and their canonical keys together."""
    user.skills = skills
    user.skill_keys = sorted({canonical_skill(s) for s in skills})


def ensure_admin(session: Session, email: str, password: str, name: str = "Admin") -> tuple[User, bool]:
    """Create the first admin if no user has this e-mail; (user, created)."""
    existing = find_user_by_email(session, email)
    if existing is not None:
        return existing, False
    check_password_policy(password, email)
    user = User(name=name, email=email.strip().lower(), password_hash=hash_password(password), role=Role.ADMIN)
    user.email_verified_at = datetime.now(UTC)  # set up by whoever runs the app: nobody to send a link to
    session.add(user)
    session.flush()
    return user, True


def create_mail_user(session: Session, email: str, name: str) -> User:
    """An active `user` account for someone who wrote to the support address without one.

    Its password is a random secret nobody knows (hashed like any other, so log-in treats it like any other):
    the person claims the account with a password reset. `email` is validated by the caller.
    """
    email = email.strip().lower()
    name = " ".join(name.split())[:100] or email.partition("@")[0][:100] or "Customer"
    user = User(name=name, email=email, password_hash=hash_password(secrets.token_urlsafe(32)), role=Role.USER)
    session.add(user)
    session.flush()
    return user


def assignable_staff(session: Session, actor: User) -> list[UserOut]:
    """Active moderators and admins with their open load: who a ticket can be reassigned to (staff only)."""
    if actor.role not in STAFF_ROLES:
        raise PermissionDenied("Only staff can reassign tickets.")
    staff = session.scalars(
        select(User).where(User.is_active.is_(True), User.role.in_(STAFF_ROLES)).order_by(User.name)
    ).all()
    load = open_load_by_user(session, [u.id for u in staff])
    return [user_out(u, load.get(u.id, 0)) for u in staff]


def skill_vocabulary(session: Session) -> list[str]:
    """Skills that active moderators offer: the words the AI is asked to choose from."""
    rows = session.scalars(
        select(func.unnest(User.skills)).where(User.role == Role.MODERATOR, User.is_active.is_(True)).distinct()
    ).all()
    return sorted(set(rows))


def escape_like(value: str) -> str:
    """Make user text literal inside a LIKE pattern."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
