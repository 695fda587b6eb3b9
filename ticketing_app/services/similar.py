"""Similar earlier tickets, by the cosine of their embeddings, among the tickets the viewer may see.

With pgvector: an HNSW index scan ordered by cosine distance, joined to `tickets` and filtered by the viewer's
visibility. pgvector 0.8+ resumes the index scan until enough rows pass that filter (`hnsw.iterative_scan`),
so a moderator, who sees a small share of the tickets, still gets five neighbours rather than the few of the
index's first 40 candidates that happen to be theirs. Without pgvector: an exact scan in numpy over the
viewer's most recent EXACT_SCAN_LIMIT earlier tickets (bench/README.md has the figures of both).
Only the ticket's stored embedding is read: nothing is encoded in the request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, Float, bindparam, cast, select, text, tuple_
from sqlalchemy.orm import Session

from ticketing_app.domain import STAFF_ROLES, TicketStatus, ticket_reference
from ticketing_app.errors import PermissionDenied
from ticketing_app.models import Comment, Ticket, TicketEmbedding, User
from ticketing_app.schemas import SimilarTicketOut, SimilarTicketsOut
from ticketing_app.services import embeddings
from ticketing_app.services.tickets import get_visible_ticket
from ticketing_app.services.visibility import sees_staff_view, visible_tickets

MAX_SIMILAR = 5
# USE cosine: rephrasings of one problem score 0.85-0.95, the same kind of problem about 0.6-0.8, unrelated
# tickets mostly below 0.4. Below this a "similar" ticket is noise.
SIMILARITY_FLOOR = 0.5
EF_SEARCH = 40  # HNSW candidates per scan step (pgvector's default); recall@5 in bench/README.md
MAX_SCAN_TUPLES = 20_000  # how far an iterative scan may go before giving up (pgvector's default)
EXACT_SCAN_LIMIT = 20_000  # without pgvector: the most recent earlier tickets compared one by one
RESOLUTION_CHARS = 300
RESOLVED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


@dataclass(frozen=True)
class Neighbour:
    ticket: Ticket
    similarity: float


def _require_staff_view(session: Session, actor: User, ticket_id: int) -> Ticket:
    """The ticket, for staff working it; requesters (and moderators on their own tickets) are refused."""
    ticket = get_visible_ticket(session, actor, ticket_id)
    if actor.role not in STAFF_ROLES or not sees_staff_view(actor, ticket):
        raise PermissionDenied("Similar tickets are for staff working on this ticket.")
    return ticket


def similar_tickets(session: Session, actor: User, ticket_id: int, limit: int = MAX_SIMILAR) -> SimilarTicketsOut:
    """Up to `limit` (at most 5) earlier tickets most like this one that `actor` may see, most similar first,
    each with its resolution when it has one."""
    ticket = _require_staff_view(session, actor, ticket_id)
    store = embeddings.store_kind(session)
    found = nearest(session, actor, ticket, min(max(limit, 0), MAX_SIMILAR))
    resolutions = resolutions_of(session, [n.ticket for n in found or []])
    items = [
        SimilarTicketOut(
            id=n.ticket.id,
            number=ticket_reference(n.ticket.number),
            title=n.ticket.title,
            status=n.ticket.status,
            similarity=round(n.similarity, 3),
            resolution=resolutions.get(n.ticket.id),
        )
        for n in found or []
    ]
    return SimilarTicketsOut(items=items, embedded=found is not None, store="pgvector" if store.pgvector else "exact")


def nearest(session: Session, actor: User, ticket: Ticket, limit: int) -> list[Neighbour] | None:
    """The neighbours above the floor; None when the ticket has no embedding yet."""
    raw = session.scalar(text("SELECT embedding FROM ticket_embeddings WHERE ticket_id = :id"), {"id": ticket.id})
    if raw is None:
        return None
    if limit == 0:
        return []
    store = embeddings.store_kind(session)
    vector = embeddings.parse(raw)
    found = _by_index(session, actor, ticket, vector, limit, store) if store.pgvector else None
    if found is None:
        found = _by_exact_scan(session, actor, ticket, vector, limit)
    return [n for n in found if n.similarity >= SIMILARITY_FLOOR]


def _earlier(ticket: Ticket) -> ColumnElement[bool]:
    return tuple_(Ticket.created_at, Ticket.id) < tuple_(ticket.created_at, ticket.id)


def _by_index(
    session: Session, actor: User, ticket: Ticket, vector: np.ndarray, limit: int, store: embeddings.Store
) -> list[Neighbour]:
    if store.iterative_scan:
        # relaxed_order: the scan may return rows slightly out of order; they are sorted again below.
        session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        session.execute(text(f"SET LOCAL hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}"))
        ef_search = EF_SEARCH
    else:  # older pgvector filters after the scan: ask for more candidates so a filtered viewer finds some
        ef_search = 400
    session.execute(text(f"SET LOCAL hnsw.ef_search = {ef_search}"))
    query = cast(bindparam("query", embeddings.literal(vector, store)), TicketEmbedding.embedding.type)
    distance = TicketEmbedding.embedding.op("<=>", return_type=Float)(query)
    candidates = (
        select(TicketEmbedding.ticket_id, distance.label("distance"))
        .join(Ticket, Ticket.id == TicketEmbedding.ticket_id)
        .where(visible_tickets(actor), _earlier(ticket))
        .order_by(distance)
        .limit(limit)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    rows = session.execute(
        select(Ticket, candidates.c.distance)
        .join(candidates, candidates.c.ticket_id == Ticket.id)
        .order_by(candidates.c.distance, Ticket.id)
    ).all()
    return [Neighbour(row[0], 1.0 - float(row[1])) for row in rows]


def _by_exact_scan(session: Session, actor: User, ticket: Ticket, vector: np.ndarray, limit: int) -> list[Neighbour]:
    rows = session.execute(
        select(TicketEmbedding.ticket_id, TicketEmbedding.embedding)
        .join(Ticket, Ticket.id == TicketEmbedding.ticket_id)
        .where(visible_tickets(actor), _earlier(ticket))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(EXACT_SCAN_LIMIT)
    ).all()
    if not rows:
        return []
    matrix = np.vstack([embeddings.parse(row.embedding) for row in rows])
    similarities = matrix @ vector.astype(np.float32)
    best = np.argsort(-similarities, kind="stable")[:limit]
    by_id = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_([rows[i].ticket_id for i in best])))}
    return [Neighbour(by_id[rows[i].ticket_id], float(similarities[i])) for i in best]


def last_staff_replies(session: Session, tickets: list[Ticket]) -> dict[int, str]:
    """Per resolved or closed ticket, its last public reply by staff (not by its requester): how it was solved."""
    ids = [t.id for t in tickets if t.status in RESOLVED]
    if not ids:
        return {}
    rows = session.execute(
        select(Comment.ticket_id, Comment.body)
        .join(Ticket, Ticket.id == Comment.ticket_id)
        .join(User, User.id == Comment.author_id)
        .where(
            Comment.ticket_id.in_(ids),
            Comment.internal.is_(False),
            Comment.author_id != Ticket.created_by_id,
            User.role.in_(STAFF_ROLES),
        )
        .order_by(Comment.ticket_id, Comment.created_at.desc(), Comment.id.desc())
        .distinct(Comment.ticket_id)
    ).all()
    return {row.ticket_id: row.body for row in rows}


def resolutions_of(session: Session, tickets: list[Ticket]) -> dict[int, str]:
    """`last_staff_replies`, shortened for a list."""
    return {k: shorten(v, RESOLUTION_CHARS) for k, v in last_staff_replies(session, tickets).items()}


def shorten(body: str, limit: int) -> str:
    """One line of at most `limit` characters, cut at a word."""
    flat = " ".join(body.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return (cut or flat[: limit - 1]) + "…"
