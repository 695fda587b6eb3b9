"""The domain's words, once: every status, priority, role, category and kind is a member of an enum here.

Schemas, CHECK constraints, select options, labels and badge colours are derived from these; nothing else
spells them out. Members are `StrEnum`s, so they compare equal to (and serialise as) their plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal


class Role(StrEnum):
    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        """Moderators and admins work tickets; users only file them."""
        return self in STAFF_ROLES


STAFF_ROLES = (Role.MODERATOR, Role.ADMIN)


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"  # waiting on the requester: the resolution clock pauses (README "SLAs")
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_active(self) -> bool:
        """Open, in progress or pending: not finished, still someone's work."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.PENDING)
# Active and not paused: the SLA clocks run.
CLOCK_RUNNING_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS)


class Priority(StrEnum):
    """Declared from most to least urgent: the queue order (`rank`) follows the declaration."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return list(Priority).index(self)


# Where people choose a priority (and in validation messages) it is listed from least to most urgent.
PRIORITIES_LOW_TO_HIGH = tuple(reversed(Priority))


class Category(StrEnum):
    """The default triage categories (TRIAGE_CATEGORIES may narrow or extend the list)."""

    ACCOUNT_ACCESS = "account_access"
    BILLING = "billing"
    BUG = "bug"
    PERFORMANCE = "performance"
    DATA = "data"
    INTEGRATION = "integration"
    SECURITY = "security"
    FEATURE_REQUEST = "feature_request"
    HOW_TO = "how_to"
    OTHER = "other"


class TriageStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class SlaTarget(StrEnum):
    """What an SLA times: the first public staff reply, or the resolution."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class CorrectionField(StrEnum):
    """What staff corrected after the AI's triage (triage_corrections.field): labelled examples it learns from."""

    CATEGORY = "category"
    PRIORITY = "priority"
    ASSIGNEE = "assignee"


class CommentVia(StrEnum):
    """How a comment reached us (ticket_comments.via)."""

    WEB = "web"
    EMAIL = "email"
    API = "api"


class EventKind(StrEnum):
    """What a line of a ticket's timeline (ticket_events.kind) records."""

    CREATED = "created"
    TRIAGED = "triaged"
    TRIAGE_FAILED = "triage_failed"
    ASSIGNED = "assigned"  # routed by the system
    REASSIGNED = "reassigned"  # by hand
    REROUTED = "rerouted"  # routed again because its assignee can no longer work it
    UNASSIGNED = "unassigned"
    STATUS_CHANGED = "status_changed"
    PRIORITY_OVERRIDDEN = "priority_overridden"
    CATEGORY_OVERRIDDEN = "category_overridden"
    COMMENTED = "commented"
    RATED = "rated"  # the requester's satisfaction rating
    ATTACHED = "attached"  # a file on the ticket or on one of its comments
    MERGED_INTO = "merged_into"  # on a duplicate: merged into another ticket (services/merge.py)
    MERGED_FROM = "merged_from"  # on the original: a duplicate's conversation was merged in
    FOLLOWER_ADDED = "follower_added"  # someone now follows the ticket on the requester's side


class Rating(StrEnum):
    """A requester's verdict on a resolved ticket (satisfaction_ratings.rating)."""

    GOOD = "good"
    BAD = "bad"


# Staff decisions that a late AI triage must not undo.
OVERRIDE_EVENTS = (EventKind.PRIORITY_OVERRIDDEN, EventKind.CATEGORY_OVERRIDDEN)


class JobKind(StrEnum):
    TRIAGE = "triage"
    ASSIGN = "assign"
    SEND_EMAIL = "send_email"
    ADMIN_DIGEST = "admin_digest"
    PROCESS_INBOUND = "process_inbound"
    DRAFT_REPLY = "draft_reply"  # a Gemini reply draft for one staff member (services/drafts.py)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class EmailKind(StrEnum):
    WELCOME = "welcome"
    TICKET_ASSIGNED = "ticket_assigned"
    TICKET_RECEIVED = "ticket_received"
    TICKET_RESOLVED = "ticket_resolved"
    TICKET_REPLY = "ticket_reply"  # a public staff reply, to the requester
    TICKET_STATUS = "ticket_status"  # in progress, closed or reopened, to the requester
    TICKET_MERGED = "ticket_merged"  # the requester's ticket was merged into another, to its requester
    REQUESTER_REPLY = "requester_reply"  # the requester answered, to the assignee
    TICKET_REOPENED = "ticket_reopened"  # to the assignee
    ADMIN_DIGEST = "admin_digest"
    # SLA (services/sla.py): the assignee before a breach, the admins at it.
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    # Account mails: always sent, never unsubscribable (ACCOUNT_EMAIL_KINDS).
    PASSWORD_RESET = "password_reset"
    VERIFY_EMAIL = "verify_email"


# Mails about the account itself (the welcome mail carries the first verify link): no preference turns them off.
ACCOUNT_EMAIL_KINDS = (EmailKind.WELCOME, EmailKind.PASSWORD_RESET, EmailKind.VERIFY_EMAIL)


class AccountTokenPurpose(StrEnum):
    """What a single-use link mailed to a user does (account_tokens.purpose)."""

    PASSWORD_RESET = "password_reset"
    VERIFY_EMAIL = "verify_email"


# Notification mails each person may turn off, by who receives them.
REQUESTER_EMAIL_KINDS = (
    EmailKind.TICKET_RECEIVED,
    EmailKind.TICKET_REPLY,
    EmailKind.TICKET_STATUS,
    EmailKind.TICKET_RESOLVED,
    EmailKind.TICKET_MERGED,
)
STAFF_EMAIL_KINDS = (
    EmailKind.TICKET_ASSIGNED,
    EmailKind.REQUESTER_REPLY,
    EmailKind.TICKET_REOPENED,
    EmailKind.SLA_WARNING,
)
ADMIN_EMAIL_KINDS = (EmailKind.ADMIN_DIGEST, EmailKind.SLA_BREACHED)
NOTIFICATION_EMAIL_KINDS = REQUESTER_EMAIL_KINDS + STAFF_EMAIL_KINDS + ADMIN_EMAIL_KINDS


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    RECORDED = "recorded"
    FAILED = "failed"


DELIVERED_EMAIL_STATUSES = (EmailStatus.SENT, EmailStatus.RECORDED)


class InboundSource(StrEnum):
    """How an inbound mail reached us (inbound_emails.source)."""

    SMTP = "smtp"
    IMAP = "imap"


class InboundStatus(StrEnum):
    """Where an inbound mail is (inbound_emails.status): stored, then processed into a ticket or comment,
    or ignored (auto-reply, bounce, our own mail), refused (a rule said no) or failed (unreadable)."""

    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    REFUSED = "refused"
    FAILED = "failed"


class ThrottleBucket(StrEnum):
    """What a throttle counter counts (throttle_counters.bucket), and per what (its key)."""

    LOGIN_PAIR = "login_pair"  # failed log-ins per (e-mail, client address): blocks, with growing delays
    LOGIN_ADDRESS = "login_address"  # log-in attempts per client address, any e-mail: password spraying
    LOGIN_ACCOUNT = "login_account"  # failed log-ins per e-mail from anywhere: only slows, never blocks
    SIGNUP_ADDRESS = "signup_address"
    TICKET_USER = "ticket_user"
    TICKET_ADDRESS = "ticket_address"
    COMMENT_USER = "comment_user"
    COMMENT_ADDRESS = "comment_address"
    ATTACHMENT_USER = "attachment_user"
    ATTACHMENT_ADDRESS = "attachment_address"
    RESET_EMAIL = "reset_email"  # password-reset requests per e-mail address asked for (known or not)
    RESET_ADDRESS = "reset_address"  # password-reset requests per client address
    VERIFY_USER = "verify_user"  # verification mails re-sent per user


# ----- how the words look to people -----

TICKET_PREFIX = "TCK-"

# Radix colour scales for badges and charts.
STATUS_COLORS: dict[TicketStatus, str] = {
    TicketStatus.OPEN: "blue",
    TicketStatus.IN_PROGRESS: "amber",
    TicketStatus.PENDING: "purple",
    TicketStatus.RESOLVED: "green",
    TicketStatus.CLOSED: "gray",
}
PRIORITY_COLORS: dict[Priority, str] = {Priority.HIGH: "red", Priority.MEDIUM: "orange", Priority.LOW: "gray"}


def ticket_reference(number: int) -> str:
    """The number people use: 1042 -> "TCK-1042"."""
    return f"{TICKET_PREFIX}{number}"


def parse_ticket_reference(text: str) -> int | None:
    """ "TCK-1042", "tck-1042" or "1042" -> 1042; None when the text is not a ticket number."""
    digits = text.strip().upper().removeprefix(TICKET_PREFIX)
    return int(digits) if digits.isdigit() and len(digits) < 10 else None


def label(value: str | None, empty: str = "—") -> str:
    """A word of the domain as people read it: "in_progress" -> "In progress"."""
    if not value:
        return empty
    return value.replace("_", " ").capitalize()


def sql_in(column: str, values: type[StrEnum] | tuple[StrEnum, ...]) -> str:
    """`column IN ('a', 'b')` for a CHECK constraint or a partial index written from an enum."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def literal(members: Iterable[StrEnum]) -> Any:
    """`Literal["a", "b", ...]` of the members' values, for pydantic fields: the validation and error messages
    of a written-out Literal, in the order given."""
    return Literal[tuple(str(member) for member in members)]
