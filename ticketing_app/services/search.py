"""Full-text search over tickets: title, description and comments, in any language, ignoring accents.

PostgreSQL does the matching (migration 0010): each ticket's words, unaccented and lower-cased with the
`simple` configuration (no stemming: it knows no language, so it works the same for every one), in
`search_doc` (title, weight A; description, weight B), `search_comments` and `search_internal` (weight C), and all
three in the generated `search_all`, GIN-indexed. Query words match as prefixes ("pass" finds "password"); CJK text,
written without spaces, is indexed a character at a time and searched as a phrase, so any run of characters is found.

Ranking: the RANK_WINDOW most recent matches that the person may see are ranked (`ts_rank`, so a title hit
outranks one in a comment) and the page is cut from them; `total` counts at most RANK_WINDOW. A word found in
a tenth of a million tickets would otherwise have every match ranked for each page: this keeps a search
within milliseconds at any size (bench/search.py), and in a helpdesk the recent matches are the ones looked for.

Highlighting is done here, not by `ts_headline`: it returns the text as pieces, each marked or not, which the
pages render as text (never as HTML) and the API returns as they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Integer,
    String,
    any_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, selectinload
from sqlalchemy.sql.util import ClauseAdapter

from ticketing_app.domain import Role, parse_ticket_reference
from ticketing_app.models import Comment, Ticket, User
from ticketing_app.schemas import SearchHit, TextPiece
from ticketing_app.services.visibility import sees_staff_view, staff_view_tickets

RANK_WINDOW = 1000
# The newest ids looked in first, then ten times as many, then all (see _newest_matches).
WINDOWS = (20_000, 200_000)
MAX_TERMS = 12
SNIPPET_CHARS = 200
SNIPPET_LEAD = 60
# The scripts written without spaces (as in migration 0010's helpdesk_search_text).
CJK_CLASS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af]"
_CJK = re.compile(CJK_CLASS)
_CJK_RUNS = re.compile(f"{CJK_CLASS}+|(?:(?!{CJK_CLASS})[^\\W_])+")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: what people search for; never a tsquery operator


@dataclass(frozen=True)
class SearchQuery:
    """What was typed: words (folded, each a prefix), runs of CJK characters (each a phrase), a ticket number."""

    words: tuple[str, ...]
    cjk: tuple[str, ...]
    number: int | None  # "TCK-1042" also finds ticket 1042

    @property
    def empty(self) -> bool:
        return not self.words and not self.cjk and self.number is None


def fold(value: str) -> str:
    """Lower case without accents, as unaccent and the `simple` configuration see a word."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def parse_query(raw: str) -> SearchQuery:
    """The words of a search box: letters and digits only, so nothing typed can be a tsquery operator."""
    words: list[str] = []
    cjk: list[str] = []
    for run in _CJK_RUNS.findall(raw)[:MAX_TERMS]:
        (cjk if _CJK.match(run) else words).append(run if _CJK.match(run) else fold(run))
    return SearchQuery(tuple(words), tuple(cjk), parse_ticket_reference(raw))


def tsquery_text(session: Session, query: SearchQuery) -> str:
    """The query as to_tsquery text: every word a quoted prefix, every CJK run a phrase, all required.

    The words go through the database's own unaccent first (one round trip), then are cut to letters and digits
    again: unaccent turns some letters into punctuation (U+02BC, a letter, becomes an apostrophe), which would
    otherwise reach the tsquery's syntax.
    """
    parts: list[str] = []
    if query.words:
        plain = session.scalar(select(func.helpdesk_unaccent(bindparam("words", "\n".join(query.words), String()))))
        parts += [f"'{word}':*" for line in (plain or "").split("\n") for word in _WORD.findall(line)]
    for run in query.cjk:
        parts.append("(" + " <-> ".join(f"'{ch}'" for ch in run) + ")" if len(run) > 1 else f"'{run}'")
    return " & ".join(parts)


def _vector(first: InstrumentedAttribute[Any], second: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    return first.op("||", return_type=TSVECTOR())(second)


# The indexed column (ix_tickets_search), and what a requester's view holds (no internal notes): built only for
# rows that matched already, where the person does not work the ticket as staff.
ALL_TEXT = Ticket.search_all
PUBLIC_TEXT = _vector(Ticket.search_doc, Ticket.search_comments)


def _matches(
    vector: ColumnElement[Any] | InstrumentedAttribute[Any], tsquery: ColumnElement[Any]
) -> ColumnElement[bool]:
    return vector.op("@@", return_type=Boolean())(tsquery)


@dataclass(frozen=True)
class Found:
    tickets: list[tuple[Ticket, float]]
    total: int


def find(
    session: Session,
    actor: User,
    conditions: Sequence[ColumnElement[bool]],
    query: SearchQuery,
    *,
    limit: int,
    offset: int,
) -> Found:
    """The visible tickets (`conditions` hold the visibility and the filters) that match, best first."""
    # Plan each search for its own words: a plan cached for the first query's rare word would be wrong for a
    # common one (index scan of the newest tickets versus the GIN index).
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    staff = staff_view_tickets(actor)
    matched: list[ColumnElement[bool]] = []
    rank: ColumnElement[float] = literal_column("0.0")
    text_query = tsquery_text(session, query)
    if text_query:
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam("tsquery", text_query, String()))
        # Internal notes count only where the person works the ticket as staff.
        matched.append(_matches(ALL_TEXT, tsquery) & (staff | _matches(PUBLIC_TEXT, tsquery)))
        rank = func.ts_rank(case((staff, ALL_TEXT), else_=PUBLIC_TEXT), tsquery)
    if query.number is not None:
        matched.append(Ticket.number == query.number)
        rank = rank + case((Ticket.number == query.number, 10.0), else_=0.0)
    if not matched:  # nothing left to look for (e.g. only letters that unaccent makes punctuation)
        return Found([], 0)
    if actor.role == Role.ADMIN:  # every ticket: the newest first, in widening windows
        ids = _newest_matches(session, [*conditions, or_(*matched)], WINDOWS)
    else:
        ids = _matches_in_scope(session, conditions, or_(*matched))
    if not ids:
        return Found([], 0)
    rank_col = rank.label("rank")
    # Ranked narrow (id, rank) and cut to the page; only the page's rows are then read in full.
    ranked = (
        select(Ticket.id, rank_col)
        .where(Ticket.id == any_(bindparam("ids", ids, ARRAY(Integer()))))
        .order_by(rank_col.desc(), Ticket.id.desc())
        .limit(limit)
        .offset(offset)
        .subquery("ranked")
    )
    found = aliased(Ticket, name="found")
    rows = session.execute(
        select(found, ranked.c.rank)
        .join(ranked, ranked.c.id == found.id)
        .options(selectinload(found.assigned_to), selectinload(found.created_by))
        .order_by(ranked.c.rank.desc(), found.id.desc())
    ).all()
    return Found([(row[0], float(row.rank)) for row in rows], len(ids))


def _matches_in_scope(
    session: Session, conditions: Sequence[ColumnElement[bool]], matched: ColumnElement[bool]
) -> list[int]:
    """The RANK_WINDOW newest matches among someone's own tickets (or those assigned to them): few enough to read
    through the visibility's index and test one by one. The OFFSET 0 fence keeps PostgreSQL from building the
    GIN bitmap of a frequent word (hundreds of thousands of entries) just to intersect it with them."""
    scoped = (
        select(
            Ticket.id,
            Ticket.number,
            Ticket.assigned_to_id,
            Ticket.created_by_id,
            Ticket.search_all,
            Ticket.search_doc,
            Ticket.search_comments,
        )
        .where(*conditions)
        .offset(0)
        .subquery("scoped")
    )
    condition = ClauseAdapter(scoped).traverse(matched)
    return list(session.scalars(select(scoped.c.id).where(condition).order_by(scoped.c.id.desc()).limit(RANK_WINDOW)))


def _newest_matches(session: Session, where: list[ColumnElement[bool]], windows: tuple[int, ...]) -> list[int]:
    """The ids of the RANK_WINDOW newest tickets that satisfy `where`, looked for among the newest ids first.

    Each round's work is bounded by its window, whichever plan PostgreSQL picks (a word's frequency is only
    estimated, and a wrong guess would otherwise have the GIN path fetch a third of the table, or the newest-first
    scan read all of it): a frequent word fills the window from the newest WINDOW_IDS tickets; a rare one is found
    in the last round, where the index hands over only its few rows.
    """
    top = (session.scalar(select(func.max(Ticket.id))) or 0) if windows else 0
    ids: list[int] = []
    for window in (*(w for w in windows if w < top), None):
        newest = [] if window is None else [Ticket.id > top - window]
        ids = list(
            session.scalars(select(Ticket.id).where(*where, *newest).order_by(Ticket.id.desc()).limit(RANK_WINDOW))
        )
        if len(ids) == RANK_WINDOW:
            break
    return ids


# ----- highlighting -----


class Highlighter:
    """Marks the words of texts that match one query (each distinct word is looked at once)."""

    def __init__(self, query: SearchQuery) -> None:
        self.query = query
        self._spans: dict[str, tuple[tuple[int, int], ...]] = {}

    def spans(self, word: str) -> tuple[tuple[int, int], ...]:
        """Where `word` (letters and digits) matches: all of it for a prefix match, runs of CJK characters."""
        found = self._spans.get(word)
        if found is None:
            found = self._spans[word] = self._find(word)
        return found

    def _find(self, word: str) -> tuple[tuple[int, int], ...]:
        if self.query.cjk and _CJK.search(word):
            spans: list[tuple[int, int]] = []
            for start, end in sorted(
                (m.start(), m.end()) for run in self.query.cjk for m in re.finditer(re.escape(run), word)
            ):
                if not spans or start >= spans[-1][1]:
                    spans.append((start, end))
            return tuple(spans)
        folded = fold(word)
        return ((0, len(word)),) if any(folded.startswith(term) for term in self.query.words) else ()

    def first_match(self, value: str) -> int | None:
        """Where the first matching word of `value` starts; None when nothing matches."""
        for word in _WORD.finditer(value):
            spans = self.spans(word.group())
            if spans:
                return word.start() + spans[0][0]
        return None

    def pieces(self, value: str) -> list[TextPiece]:
        """`value` cut into pieces, the matches marked (adjacent pieces of a kind merged)."""
        cuts: list[tuple[int, int]] = []
        for word in _WORD.finditer(value):
            cuts += [(word.start() + start, word.start() + end) for start, end in self.spans(word.group())]
        out: list[TextPiece] = []
        position = 0
        for start, end in cuts:
            if out and start == position:  # touches the previous match: one piece
                out[-1] = TextPiece(text=out[-1].text + value[start:end], match=True)
            else:
                if start > position:
                    out.append(TextPiece(text=value[position:start], match=False))
                out.append(TextPiece(text=value[start:end], match=True))
            position = end
        if position < len(value):
            out.append(TextPiece(text=value[position:], match=False))
        return out

    def snippet(self, value: str) -> list[TextPiece]:
        """About SNIPPET_CHARS of `value` around its first match (cut at spaces), as pieces."""
        flat = " ".join(value.split())
        first = self.first_match(flat) or 0
        start = max(0, first - SNIPPET_LEAD)
        if start:
            space = flat.find(" ", start)
            start = space + 1 if 0 <= space < first else start
        end = min(len(flat), start + SNIPPET_CHARS)
        if end < len(flat):
            space = flat.rfind(" ", start, end)
            end = space if space > first else end
        return self.pieces(("… " if start else "") + flat[start:end] + (" …" if end < len(flat) else ""))


def pieces(value: str, query: SearchQuery) -> list[TextPiece]:
    return Highlighter(query).pieces(value)


def hits(session: Session, actor: User, found: list[tuple[Ticket, float]], query: SearchQuery) -> dict[int, SearchHit]:
    """Each found ticket's rank, title in pieces, and a snippet of where it matched: the description, else the
    first comment the person may read that matches."""
    marker = Highlighter(query)
    staff_view = {ticket.id for ticket, _ in found if sees_staff_view(actor, ticket)}
    comments: dict[int, list[str]] = {}
    needs_comment = [ticket.id for ticket, _ in found if marker.first_match(ticket.description) is None]
    if needs_comment:
        for ticket_id, body, internal in session.execute(
            select(Comment.ticket_id, Comment.body, Comment.internal)
            .where(Comment.ticket_id.in_(needs_comment))
            .order_by(Comment.created_at, Comment.id)
        ):
            if not internal or ticket_id in staff_view:
                comments.setdefault(ticket_id, []).append(body)
    result = {}
    for ticket, rank in found:
        source = ticket.description
        if ticket.id in comments:
            source = next((body for body in comments[ticket.id] if marker.first_match(body) is not None), source)
        result[ticket.id] = SearchHit(rank=rank, title=marker.pieces(ticket.title), snippet=marker.snippet(source))
    return result
