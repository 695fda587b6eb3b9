"""Accounts: sign-up, log-in (throttled), tokens to users, and admin management of users."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import STAFF_ROLES, Role
from ticketing_app.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from ticketing_app.models import LoginAttempt, User
from ticketing_app.schemas import LoginIn, Page, SignupIn, UserFilters, UserOut, UserUpdate
from ticketing_app.security import (
    burn_password_check,
    create_access_token,
    decode_access_token,
    hash_password,
    verify_password,
)
from ticketing_app.services import notifications, routing
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


def signup(session: Session, data: SignupIn) -> tuple[User, str]:
    """Create a `user` account and queue its welcome e-mail; returns the user and an access token."""
    check_password_policy(data.password, data.email)
    # Hash first so a taken e-mail answers in the same time as a free one.
    password_hash = hash_password(data.password)
    if find_user_by_email(session, data.email) is not None:
        raise Conflict("An account with this e-mail already exists. Log in instead.")
    user = User(name=data.name, email=data.email, password_hash=password_hash, role=Role.USER, skills=[])
    session.add(user)
    session.flush()
    notifications.welcome(session, user)
    return user, create_access_token(user.id)


def _throttle(session: Session, email: str, now: datetime) -> None:
    settings = get_settings()
    window_start = now - timedelta(minutes=settings.login_window_minutes)
    count, oldest = session.execute(
        select(func.count(), func.min(LoginAttempt.created_at)).where(
            LoginAttempt.email == email, LoginAttempt.created_at > window_start
        )
    ).one()
    if count >= settings.login_max_failures:
        retry_after = max(1, math.ceil((oldest - window_start).total_seconds()))
        minutes = max(1, math.ceil(retry_after / 60))
        raise TooManyAttempts(
            f"Too many failed log-in attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            retry_after_seconds=retry_after,
        )


def record_failed_login(session: Session, email: str) -> None:
    """Count one failure towards the throttle."""
    session.add(LoginAttempt(email=email))


def login(session: Session, data: LoginIn) -> tuple[User, str]:
    """Check the credentials; the same message and timing whether or not the e-mail exists."""
    email = data.email.strip().lower()
    # One check at a time per e-mail, across processes (held until this transaction ends): otherwise a burst of
    # parallel guesses all pass the throttle before the first failure is counted.
    session.execute(select(func.pg_advisory_xact_lock(LOGIN_LOCK_SPACE, func.hashtext(email))))
    now = session.scalar(select(func.clock_timestamp())) or datetime.now(UTC)
    _throttle(session, email, now)
    user = find_user_by_email(session, email)
    if user is None:
        burn_password_check(data.password)
        ok, new_hash = False, None
    else:
        ok, new_hash = verify_password(data.password, user.password_hash)
    if not ok or user is None or not user.is_active:
        record_failed_login(session, email)
        session.commit()  # the failure must count even though this action ends in an error
        raise NotAuthenticated("Wrong e-mail or password.")
    if new_hash:  # hashed with older or cheaper parameters: upgrade now that we know the password
        user.password_hash = new_hash
    session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))
    return user, create_access_token(user.id)


SESSION_INVALID = "Your session has expired or is no longer valid. Please log in again."


def user_id_from_token(token: str | None) -> int:
    """The user id a valid token names; the caller must still check that this user exists and is active."""
    user_id = decode_access_token(token) if token else None
    if user_id is None:
        raise NotAuthenticated(SESSION_INVALID)
    return user_id


def user_from_token(session: Session, token: str | None) -> User:
    """The active user a token belongs to, read fresh so role changes apply at once."""
    user = session.get(User, user_id_from_token(token))
    if user is None or not user.is_active:
        raise NotAuthenticated(SESSION_INVALID)
    return user


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
    session.add(user)
    session.flush()
    return user, True


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
