"""Suggested replies for staff, from the most similar resolved tickets they may see. Never sent by themselves.

On demand, in the request: the offline draft (the neighbours' lookup and string assembly, a few ms). When
GEMINI_API_KEY is set, the same request queues a `draft_reply` job (deduplicated per ticket, person and set of
source tickets) and answers with the offline draft and `ai_status: "pending"`; the worker asks Gemini and
stores its draft, which later requests return (`"ready"`). A failed Gemini call leaves the offline draft
(`"failed"`). A network call of seconds never runs in a web request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ticketing_app.ai.drafting import (
    MAX_DRAFT_CHARS,
    SYSTEM_INSTRUCTION,
    SourceReply,
    gemini_message,
    offline_draft,
)
from ticketing_app.config import get_settings
from ticketing_app.domain import JobKind, ticket_reference
from ticketing_app.errors import DomainError
from ticketing_app.jobs import queue
from ticketing_app.models import ReplyDraft, Ticket, User
from ticketing_app.schemas import DraftSource, ReplyDraftOut
from ticketing_app.services import similar

log = logging.getLogger(__name__)

MAX_SOURCES = 3  # replies given to Gemini; the offline draft uses the best one
FAILED = "failed"  # ReplyDraft.provider of a Gemini attempt that failed


def _sources(session: Session, actor: User, ticket: Ticket) -> list[tuple[similar.Neighbour, str]]:
    """The most similar resolved tickets `actor` may see that staff answered publicly, with that answer."""
    found = similar.nearest(session, actor, ticket, similar.MAX_SIMILAR) or []
    replies = similar.last_staff_replies(session, found)
    return [(n, replies[n.id]) for n in found if n.id in replies][:MAX_SOURCES]


def _sources_key(sources: list[tuple[similar.Neighbour, str]]) -> str:
    return ",".join(str(n.id) for n, _ in sources) or "-"


def reply_draft(session: Session, actor: User, ticket_id: int) -> ReplyDraftOut:
    """A suggested reply for staff working the ticket (requesters are refused, as for similar tickets)."""
    ticket = similar.require_staff_view(session, actor, ticket_id)
    sources = _sources(session, actor, ticket)
    shown = [
        DraftSource(
            id=n.id,
            number=ticket_reference(n.number),
            title=n.title,
            similarity=round(n.similarity, 3),
        )
        for n, _ in sources
    ]
    best = SourceReply(shown[0].number, shown[0].title, sources[0][1]) if sources else None
    body = offline_draft(ticket.created_by.name, actor.name, best)
    provider = "offline" if sources else "none"
    if not get_settings().gemini_api_key:
        return ReplyDraftOut(body=body, provider=provider, sources=shown[:1], ai_status="off")
    key = _sources_key(sources)
    stored = session.scalar(select(ReplyDraft).where(ReplyDraft.ticket_id == ticket.id, ReplyDraft.user_id == actor.id))
    if stored is not None and stored.sources_key == key:
        if stored.provider == FAILED:
            return ReplyDraftOut(body=body, provider=provider, sources=shown[:1], ai_status="failed")
        return ReplyDraftOut(body=stored.body, provider="gemini", sources=shown, ai_status="ready")
    queue.enqueue(
        session,
        JobKind.DRAFT_REPLY,
        {"ticket_id": ticket.id, "user_id": actor.id, "sources_key": key},
        dedupe_key=f"{JobKind.DRAFT_REPLY}:{ticket.id}:{actor.id}:{key}"[:200],
    )
    return ReplyDraftOut(body=body, provider=provider, sources=shown[:1], ai_status="pending")


@dataclass(frozen=True)
class GeminiAsk:
    """What one Gemini draft needs: the message (the data, from what the person may see now) and its sources."""

    ticket_id: int
    user_id: int
    sources_key: str
    message: str


def gemini_ask(session: Session, ticket_id: int, user_id: int) -> GeminiAsk | None:
    """The job's read: None when the person no longer works the ticket (nothing is then written)."""
    actor = session.get(User, user_id)
    if actor is None or not actor.is_active:
        return None
    try:
        ticket = similar.require_staff_view(session, actor, ticket_id)
    except DomainError:
        return None
    sources = _sources(session, actor, ticket)
    replies = [SourceReply(ticket_reference(n.number), n.title, reply) for n, reply in sources]
    message = gemini_message(ticket.title, ticket.description, ticket.created_by.name, actor.name, replies)
    return GeminiAsk(ticket_id, user_id, _sources_key(sources), message)


def ask_gemini(ask: GeminiAsk) -> tuple[str, str]:
    """(draft, provider) from Gemini, outside any transaction; ("", "failed") when it fails (the offline draft
    stands: the person is waiting now, a retry minutes later would not help them)."""
    from ticketing_app.ai.select import gemini_writer
    from ticketing_app.ai.types import TriageError

    writer = gemini_writer()
    if writer is None:
        return "", FAILED
    try:
        return writer.write_text(
            system_instruction=SYSTEM_INSTRUCTION, message=ask.message, max_chars=MAX_DRAFT_CHARS
        ), "gemini"
    except TriageError as exc:
        log.warning("Gemini reply draft for ticket %s failed: %s", ask.ticket_id, exc)
        return "", FAILED


def store_gemini_draft(session: Session, ask: GeminiAsk, body: str, provider: str) -> None:
    """Keep the person's newest Gemini draft for the ticket (one row per ticket and person)."""
    statement = insert(ReplyDraft).values(
        ticket_id=ask.ticket_id, user_id=ask.user_id, sources_key=ask.sources_key, body=body, provider=provider
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ReplyDraft.ticket_id, ReplyDraft.user_id],
            set_={k: statement.excluded[k] for k in ("sources_key", "body", "provider", "created_at")},
        )
    )
