"""Input and output shapes shared by the REST API and the UI states.

Inputs validate with messages a person understands; outputs never carry secrets (no password hash).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ticketing_app.domain import PRIORITIES_LOW_TO_HIGH, Priority, Role, TicketStatus, TriageStatus, literal
from ticketing_app.text import control_pattern

if TYPE_CHECKING:  # a Literal built at run time is no type to a checker: the enum is, and its values are str
    RoleValue = Role
    StatusValue = TicketStatus
    PriorityValue = Priority
    TriageStatusValue = TriageStatus
else:
    RoleValue = literal(Role)
    StatusValue = literal(TicketStatus)
    PriorityValue = literal(PRIORITIES_LOW_TO_HIGH)
    TriageStatusValue = literal(TriageStatus)

# Ids are PostgreSQL `integer` columns: anything outside this range cannot name a row.
MAX_ID = 2**31 - 1

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_CONTROL = control_pattern(keep="\t\n\r")  # tabs and line breaks are typed; multi-line fields keep them


def clean_text(value: str) -> str:
    """Normalise Unicode, trim, and refuse control characters (NUL included) that no person types."""
    value = unicodedata.normalize("NFC", value).strip()
    if _CONTROL.search(value):
        raise ValueError("contains control characters that are not allowed")
    return value


def clean_line(value: str) -> str:
    """Like clean_text, for one-line fields: no line breaks."""
    value = clean_text(value)
    if "\n" in value or "\r" in value:
        raise ValueError("must be on one line")
    return value


def clean_email(value: str) -> str:
    """Lower-case and check the shape of an e-mail address."""
    value = clean_line(value).lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("is not a valid e-mail address")
    return value


def no_nul(value: str) -> str:
    """Passwords are taken as typed, except NUL, which no person types and some stores cut at."""
    if "\x00" in value:
        raise ValueError("contains control characters that are not allowed")
    return value


Email = Annotated[str, AfterValidator(clean_email)]
Line = Annotated[str, AfterValidator(clean_line)]
Text = Annotated[str, AfterValidator(clean_text)]
Password = Annotated[str, AfterValidator(no_nul)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class StrictInput(BaseModel):
    """Inputs reject unknown fields, so a typo or an attempt to set `role` fails loudly."""

    model_config = ConfigDict(extra="forbid", str_max_length=20_000)


class SignupIn(StrictInput):
    name: Annotated[Line, Field(min_length=1, max_length=100)]
    email: Email
    password: Annotated[Password, Field(min_length=8, max_length=256)]


class LoginIn(StrictInput):
    email: Annotated[Line, Field(min_length=1, max_length=254)]
    password: Annotated[Password, Field(min_length=1, max_length=256)]


class PasswordChange(StrictInput):
    current_password: Annotated[Password, Field(min_length=1, max_length=256)]
    new_password: Annotated[Password, Field(min_length=8, max_length=256)]


# A token from one of our links: token_urlsafe(32) is 43 characters of [A-Za-z0-9_-].
LinkToken = Annotated[str, Field(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


class PasswordResetRequest(StrictInput):
    email: Email


class PasswordResetConfirm(StrictInput):
    token: LinkToken
    password: Annotated[Password, Field(min_length=8, max_length=256)]


class VerifyEmailIn(StrictInput):
    token: LinkToken


class ProfileUpdate(StrictInput):
    name: Annotated[Line, Field(min_length=1, max_length=100)]


class TicketCreate(StrictInput):
    title: Annotated[Line, Field(min_length=3, max_length=200)]
    description: Annotated[Text, Field(min_length=1, max_length=10_000)]


class TicketUpdate(StrictInput):
    status: StatusValue | None = None
    priority: PriorityValue | None = None
    category: Annotated[Line, Field(min_length=1, max_length=50)] | None = None
    assignee_id: Id | None = None
    reason: Annotated[Text, Field(max_length=1000)] | None = None


class BulkTicketUpdate(TicketUpdate):
    """The same change for several tickets (the queue's bulk actions): each gets the rules of one update."""

    ticket_ids: list[Id] = Field(min_length=1, max_length=100)


class CommentCreate(StrictInput):
    body: Annotated[Text, Field(min_length=1, max_length=10_000)]
    internal: bool = False
    # The newest comment the writer had seen (0: none). When someone else has commented since, the comment is
    # refused with 409 so that they read it first; leave it out to send regardless.
    last_seen_comment_id: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None


class MergeIn(StrictInput):
    """Merge this ticket (the duplicate) into another: name it by id or by number ("TCK-1042" or 1042)."""

    into_ticket_id: Id | None = None
    into_ticket_number: Annotated[str, Field(min_length=1, max_length=20)] | int | None = None
    # Added to the public "Merged into" comment on the duplicate, which its requester reads.
    note: Annotated[Text, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> MergeIn:
        if (self.into_ticket_id is None) == (self.into_ticket_number is None):
            raise ValueError("Give the ticket to merge into: into_ticket_id or into_ticket_number, not both.")
        return self


class SatisfactionIn(StrictInput):
    rating: Literal["good", "bad"]
    comment: Annotated[Text, Field(max_length=2000)] | None = None


class CannedReplyIn(StrictInput):
    title: Annotated[Line, Field(min_length=1, max_length=100)]
    body: Annotated[Text, Field(min_length=1, max_length=10_000)]
    status: StatusValue | None = None  # set on the ticket when the reply is sent


class CannedReplyUpdate(StrictInput):
    title: Annotated[Line, Field(min_length=1, max_length=100)] | None = None
    body: Annotated[Text, Field(min_length=1, max_length=10_000)] | None = None
    status: StatusValue | None = None
    clear_status: bool = False  # `status: null` cannot be told from "not sent": this removes it


class UserUpdate(StrictInput):
    email: Email
    role: RoleValue | None = None
    skills: list[Annotated[Line, Field(max_length=200)]] | None = Field(default=None, max_length=200)
    active: bool | None = None


class TicketFilters(StrictInput):
    status: StatusValue | None = None
    active: bool = False  # only open, in-progress and pending tickets
    priority: PriorityValue | None = None
    category: Annotated[Line, Field(max_length=50)] | None = None
    q: Annotated[Line, Field(max_length=200)] | None = None
    assigned: Literal["me", "unassigned", "any"] = "any"
    needs_review: bool = False  # only tickets whose triage was not confident enough
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class SavedFilterIn(StrictInput):
    name: Annotated[Line, Field(min_length=1, max_length=60)]
    filters: TicketFilters


class UserFilters(StrictInput):
    q: Annotated[Line, Field(max_length=200)] | None = None
    role: RoleValue | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


# ----- outputs -----


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserRef(Output):
    id: int
    name: str
    email: str


class PersonRef(Output):
    """Someone a ticket names: its assignee, a comment's author, who acted on its timeline. A requester is
    shown names only: `email` is None there for everyone but themselves."""

    id: int
    name: str
    email: str | None


class UserOut(UserRef):
    role: RoleValue
    skills: list[str]
    is_active: bool
    email_verified: bool = True  # False until they use a link mailed to them (README "Accounts")
    created_at: datetime
    open_tickets: int | None = None


class MessageOut(BaseModel):
    """An answer that is only words for the person (e.g. "we have sent a link")."""

    detail: str


class AuthOut(BaseModel):
    user: UserOut
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class AttachmentOut(Output):
    """A file's description; the bytes are at GET /api/tickets/{ticket_id}/attachments/{id}."""

    id: int
    filename: str
    content_type: str  # sniffed from the bytes
    size: int  # bytes
    created_at: datetime


class SatisfactionOut(Output):
    rating: Literal["good", "bad"]
    comment: str | None
    rated_at: datetime


class SlaClockOut(Output):
    due_at: datetime | None
    breached: bool


class ResolutionSlaOut(SlaClockOut):
    paused: bool  # pending: the clock stands still


class SlaOut(Output):
    """Where a ticket stands against its targets (business time; README "SLAs")."""

    first_response: SlaClockOut
    resolution: ResolutionSlaOut


class TextPiece(BaseModel):
    """A piece of text; `match`: it matched the search (pages mark it; it is text either way, never HTML)."""

    text: str
    match: bool


class SearchHit(BaseModel):
    """Why a ticket is in a search's results: its rank, and its title and a snippet with the matches marked."""

    rank: float
    title: list[TextPiece]
    snippet: list[TextPiece]


class TicketRef(BaseModel):
    """Another ticket named in this one's output (merge links): its id and its number ("TCK-1042")."""

    id: int
    number: str


class TicketOut(Output):
    id: int
    number: str
    title: str
    description: str
    status: StatusValue
    priority: PriorityValue | None
    category: str | None
    required_skills: list[str]
    summary: str | None
    helpful_notes: str | None
    triage_status: TriageStatusValue
    triage_provider: str | None
    triage_confidence: float | None
    needs_review: bool = False
    assigned_to: PersonRef | None
    assignment_reason: str | None
    created_by: UserRef
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    first_response_due_at: datetime | None = None
    first_responded_at: datetime | None = None
    sla: SlaOut | None = None
    # Files on the ticket itself (a reply's files are under its comment).
    satisfaction: SatisfactionOut | None = None  # the requester's rating, once given
    attachments: list[AttachmentOut] = []
    search: SearchHit | None = None  # only in the results of a search (`q`)
    # Merging (services/merge.py): the original this duplicate was merged into (null: not merged), and the
    # duplicates merged into this one, oldest merge first.
    merged_into: TicketRef | None = None
    merged_from: list[TicketRef] = []


class CommentOut(Output):
    id: int
    author: PersonRef
    body: str
    internal: bool
    via: str  # CommentVia: "web", "email" or "api"
    created_at: datetime
    attachments: list[AttachmentOut] = []


class EventOut(Output):
    id: int
    kind: str
    actor: PersonRef | None
    data: dict[str, Any]
    created_at: datetime


class TicketDetail(TicketOut):
    comments: list[CommentOut]
    events: list[EventOut]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


class CannedReplyOut(Output):
    id: int
    title: str
    body: str
    status: StatusValue | None
    created_by: UserRef
    created_at: datetime
    updated_at: datetime


class CannedReplyRendered(BaseModel):
    """A canned reply filled in for one ticket: what the reply box gets, and the status it would set."""

    body: str
    status: StatusValue | None


class BulkFailure(BaseModel):
    id: int
    detail: str


class BulkResult(BaseModel):
    updated: list[int]
    failed: list[BulkFailure]


class SavedFilterOut(Output):
    id: int
    name: str
    filters: dict[str, Any]
    created_at: datetime


class SimilarTicketOut(BaseModel):
    """An earlier ticket like this one: how similar (cosine, 0-1) and, once resolved, how it was answered."""

    id: int
    number: str
    title: str
    status: StatusValue
    similarity: float
    resolution: str | None  # the last public staff reply of a resolved or closed ticket, shortened


class SimilarTicketsOut(BaseModel):
    """Up to 5 similar earlier tickets the viewer may see. `embedded` is false while this ticket's embedding is
    still being computed (a moment after it arrives); `store` says how they were found."""

    items: list[SimilarTicketOut]
    embedded: bool
    store: Literal["pgvector", "exact"]


class DraftSource(BaseModel):
    id: int
    number: str
    title: str
    similarity: float


class ReplyDraftOut(BaseModel):
    """A suggested reply for a human to edit and send (never sent by itself).

    `provider`: "offline" (assembled from the sources' replies), "gemini" (written by Gemini from the ticket
    and the sources) or "none" (no similar resolved ticket: the body is only a greeting and a sign-off).
    `ai_status`: the Gemini draft's state: "off" (not configured), "pending" (being written: ask again),
    "ready" (this is it) or "failed" (the offline draft stands).
    """

    body: str
    provider: Literal["offline", "gemini", "none"]
    sources: list[DraftSource]
    ai_status: Literal["off", "pending", "ready", "failed"]
