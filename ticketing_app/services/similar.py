"""Similar earlier tickets, by the cosine of their embeddings, among the tickets the viewer may see.

Visibility is read from the embedding rows themselves (their copies of the ticket's assignee, requester and
creation time, kept in step by triggers, migration 0020), so finding neighbours never joins `tickets`.
With pgvector: an HNSW index scan ordered by cosine distance, filtered by the viewer's visibility.
pgvector 0.8+ resumes the index scan until enough rows pass that filter (`hnsw.iterative_scan`),
so a moderator, who sees a small share of the tickets, still gets five neighbours rather than the few of the
index's first 40 candidates that happen to be theirs; a viewer who sees few tickets gets an exact scan of
just their rows, read through the copied columns' indexes. Without pgvector: an exact scan in numpy over the
viewer's most recent EXACT_SCAN_LIMIT earlier tickets (bench/README.md has the figures of both).
Only the ticket's stored embedding is read: nothing is encoded in the request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, Float, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from ticketing_app.domain import STAFF_ROLES, Role, TicketStatus, ticket_reference
from ticketing_app.errors import PermissionDenied
from ticketing_app.models import Comment, Ticket, TicketEmbedding, User
from ticketing_app.schemas import SimilarTicketOut, SimilarTicketsOut
from ticketing_app.services import embeddings
from ticketing_app.services.tickets import get_visible_ticket
from ticketing_app.services.visibility import sees_staff_view, visibility_parts, visible_parts_of

MAX_SIMILAR = 5
# USE cosine: rephrasings of one problem score 0.85-0.95, the same kind of problem about 0.6-0.8, unrelated
# tickets mostly below 0.4. Below this a "similar" ticket is noise.
SIMILARITY_FLOOR = 0.5
EF_SEARCH = 40  # HNSW candidates per scan step (pgvector's default); recall@5 in bench/README.md
EF_SEARCH_FILTERED = 100  # for a viewer who sees a part of the tickets (recall, bench/README.md)
MAX_SCAN_TUPLES = 20_000  # how far an iterative scan may go before giving up (pgvector's default)
EXACT_SCAN_LIMIT = 20_000  # without pgvector: the most recent earlier tickets compared one by one
# With pgvector, a viewer who sees at most this many earlier tickets gets an exact scan rather than a filtered
# index scan, which loses recall when the viewer sees a small share (bench/README.md has both).
EXACT_SQL_LIMIT = 5_000
RESOLUTION_CHARS = 300
RESOLVED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


@dataclass(frozen=True)
class Neighbour:
    """An earlier ticket and its cosine similarity to the one looked at."""

    id: int
    number: int
    title: str
    status: str
    similarity: float


def require_staff_view(session: Session, actor: User, ticket_id: int) -> Ticket:
    """The ticket, for staff working it; requesters (and moderators on their own tickets) are refused."""
    ticket = get_visible_ticket(session, actor, ticket_id)
    if actor.role not in STAFF_ROLES or not sees_staff_view(actor, ticket):
        raise PermissionDenied("Similar tickets are for staff working on this ticket.")
    return ticket


def similar_tickets(session: Session, actor: User, ticket_id: int, limit: int = MAX_SIMILAR) -> SimilarTicketsOut:
    """Up to `limit` (at most 5) earlier tickets most like this one that `actor` may see, most similar first,
    each with its resolution when it has one."""
    ticket = require_staff_view(session, actor, ticket_id)
    store = embeddings.store_kind(session)
    found = nearest(session, actor, ticket, min(max(limit, 0), MAX_SIMILAR))
    resolutions = resolutions_of(session, found or [])
    items = [
        SimilarTicketOut(
            id=n.id,
            number=ticket_reference(n.number),
            title=n.title,
            status=n.status,
            similarity=round(n.similarity, 3),
            resolution=resolutions.get(n.id),
        )
        for n in found or []
    ]
    return SimilarTicketsOut(items=items, embedded=found is not None, store="pgvector" if store.pgvector else "exact")


def nearest(session: Session, actor: User, ticket: Ticket, limit: int) -> list[Neighbour] | None:
    """The neighbours above the floor; None when the ticket has no embedding yet."""
    store = embeddings.store_kind(session)
    if not store.pgvector:
        raw = session.scalar(text("SELECT embedding FROM ticket_embeddings WHERE ticket_id = :id"), {"id": ticket.id})
        if raw is None:
            return None
        found = _by_exact_scan(session, actor, ticket, embeddings.parse(raw), limit) if limit else []
    else:
        exact = _few_visible(session, actor, ticket)
        if not _prepare_scan(session, ticket, store, exact=exact, filtered=actor.role != Role.ADMIN):
            return None
        found = _by_index(session, actor, ticket, limit, exact=exact) if limit else []
    return [n for n in found if n.similarity >= SIMILARITY_FLOOR]


def _visible_earlier(actor: User, ticket: Ticket) -> ColumnElement[bool]:
    """The embeddings of tickets `actor` may see, created before `ticket`: each part of what they see (requester,
    followed, assignee) with "earlier" inside it, so each is one range of its index (migration 0020)."""
    e = TicketEmbedding
    earlier = tuple_(e.created_at, e.ticket_id) < tuple_(ticket.created_at, ticket.id)
    return visible_parts_of(actor, e.ticket_id, e.created_by_id, e.assigned_to_id, earlier)


def _few_visible(session: Session, actor: User, ticket: Ticket) -> bool:
    """True when the viewer sees so few earlier tickets that comparing them all beats the index.

    A moderator sees their own tickets only: an index scan then passes over many neighbours of others for each
    of theirs, and loses some recall doing so (bench/README.md); a few thousand exact distances are as cheap
    and exact. Counted part by part (filed, followed, assigned), each from its own index without reading the
    table and stopping at the limit; parts may overlap, so the sum is an upper bound.
    """
    e = TicketEmbedding
    parts = visibility_parts(actor, e.ticket_id, e.created_by_id, e.assigned_to_id)
    if parts is None:
        return False
    earlier = tuple_(e.created_at, e.ticket_id) < tuple_(ticket.created_at, ticket.id)
    counts = [
        select(func.count())
        .select_from(select(e.ticket_id).where(part, earlier).limit(EXACT_SQL_LIMIT + 1).subquery())
        .scalar_subquery()
        for part in parts
    ]
    total = session.scalar(select(sum(counts[1:], counts[0]))) or 0
    return total <= EXACT_SQL_LIMIT


def _prepare_scan(
    session: Session, ticket: Ticket, store: embeddings.Store, *, exact: bool, filtered: bool = False
) -> bool:
    """Whether the ticket has its embedding, and this transaction's HNSW settings, in one round trip."""
    settings: dict[str, str] = {}
    if not exact and store.iterative_scan:
        # relaxed_order: the scan may return rows slightly out of order; they are sorted again afterwards.
        settings = {"hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": str(MAX_SCAN_TUPLES)}
        settings["hnsw.ef_search"] = str(EF_SEARCH_FILTERED if filtered else EF_SEARCH)
    elif not exact:  # older pgvector filters after the scan: more candidates, so a filtered viewer finds some
        settings["hnsw.ef_search"] = "400"
    if exact:  # a few thousand rows: starting parallel workers costs more than it saves (bench/README.md)
        settings["max_parallel_workers_per_gather"] = "0"
    configure = "".join(f", set_config('{name}', '{value}', true)" for name, value in settings.items())
    statement = text(f"SELECT EXISTS (SELECT 1 FROM ticket_embeddings WHERE ticket_id = :id){configure}")
    return bool(session.execute(statement, {"id": ticket.id}).scalar())


def _by_index(session: Session, actor: User, ticket: Ticket, limit: int, *, exact: bool = False) -> list[Neighbour]:
    """The nearest visible earlier tickets by pgvector: the HNSW index, or (`exact`) every visible one. The
    query vector is the ticket's stored one, read inside the statement (pgvector's "neighbours of a row")."""
    query = select(TicketEmbedding.embedding).where(TicketEmbedding.ticket_id == ticket.id).scalar_subquery()
    distance = TicketEmbedding.embedding.op("<=>", return_type=Float)(query)
    # "+ 0" keeps the planner off the index: an ORDER BY it cannot serve is a sort over the visible rows.
    order = distance + 0 if exact else distance
    candidates = (
        select(TicketEmbedding.ticket_id, distance.label("distance"))
        .where(_visible_earlier(actor, ticket))
        .order_by(order)
        .limit(limit)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    rows = session.execute(
        select(Ticket.id, Ticket.number, Ticket.title, Ticket.status, candidates.c.distance)
        .join(candidates, candidates.c.ticket_id == Ticket.id)
        .order_by(candidates.c.distance, Ticket.id)
    ).all()
    return [Neighbour(row.id, row.number, row.title, row.status, 1.0 - float(row.distance)) for row in rows]


def _by_exact_scan(session: Session, actor: User, ticket: Ticket, vector: np.ndarray, limit: int) -> list[Neighbour]:
    rows = session.execute(
        select(TicketEmbedding.ticket_id, TicketEmbedding.embedding)
        .where(_visible_earlier(actor, ticket))
        .order_by(TicketEmbedding.created_at.desc(), TicketEmbedding.ticket_id.desc())
        .limit(EXACT_SCAN_LIMIT)
    ).all()
    if not rows:
        return []
    matrix = np.vstack([embeddings.parse(row.embedding) for row in rows])
    similarities = matrix @ vector.astype(np.float32)
    best = np.argsort(-similarities, kind="stable")[:limit]
    chosen = [rows[i].ticket_id for i in best]
    by_id = {
        t.id: t
        for t in session.execute(
            select(Ticket.id, Ticket.number, Ticket.title, Ticket.status).where(Ticket.id.in_(chosen))
        )
    }
    return [
        Neighbour(t.id, t.number, t.title, t.status, float(similarities[i]))
        for i in best
        for t in [by_id[rows[i].ticket_id]]
    ]


def last_staff_replies(session: Session, tickets: list[Neighbour]) -> dict[int, str]:
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
        .ext(distinct_on(Comment.ticket_id))
    ).all()
    return {row.ticket_id: row.body for row in rows}


def resolutions_of(session: Session, tickets: list[Neighbour]) -> dict[int, str]:
    """`last_staff_replies`, shortened for a list."""
    return {k: shorten(v, RESOLUTION_CHARS) for k, v in last_staff_replies(session, tickets).items()}


def shorten(body: str, limit: int) -> str:
    """One line of at most `limit` characters, cut at a word."""
    flat = " ".join(body.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return (cut or flat[: limit - 1]) + "…"
