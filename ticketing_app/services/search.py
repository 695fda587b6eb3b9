"""Full-text search over tickets: title, description and comments, in any language, ignoring accents.

PostgreSQL does the matching (migration 0010): each ticket's words, unaccented and lower-cased with the
`simple` configuration (no stemming: it knows no language, so it works the same for every one), in
`search_doc` (title, weight A; description, weight B), `search_comments` and `search_internal` (weight C), and all
three in the generated `search_all`, GIN-indexed. Query words match as prefixes ("pass" finds "password"); CJK text,
written without spaces, is indexed a character at a time and searched as a phrase, so any run of characters is found.

Ranking: the RANK_WINDOW most recent matches that the person may see are ranked (`ts_rank`, so a title hit
outranks one in a comment) and the page is cut from them; `total` counts those candidates. A frequent word's
candidates are the matches among the newest SCAN_NEWEST tickets of each part of what the person sees, once that
holds ENOUGH_TO_RANK of them (at most RANK_WINDOW): a word found in a tenth of a million tickets would otherwise have
every match read and ranked for each page. In a helpdesk the recent matches are the ones looked for; an older one
is found by adding a word.

At scale (bench/README.md, "Search"): what a person sees is read in parts (visibility.visible_parts), newest first
through each part's index, the tickets a moderator works through a covering index that holds their vectors
(migration 0019); the GIN index is used only when PostgreSQL's statistics say the query's rarest word is rare, and
then for that word alone (a frequent prefix's whole posting list would otherwise be decoded).

Highlighting is done here, not by `ts_headline`: it returns the text as pieces, each marked or not, which the
pages render as text (never as HTML) and the API returns as they are.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload, selectinload
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.elements import True_
from sqlalchemy.sql.util import ClauseAdapter

from ticketing_app.domain import parse_ticket_reference
from ticketing_app.models import Comment, Ticket, User
from ticketing_app.schemas import SearchHit, TextPiece
from ticketing_app.services.visibility import sees_staff_view, visible_parts

RANK_WINDOW = 1000
# Each part of what someone sees is read newest first, this many tickets; where at least ENOUGH_TO_RANK of them
# match, those are ranked, else the older ones are searched through the GIN index (see _part_matches).
SCAN_NEWEST = 20_000
ENOUGH_TO_RANK = 100
MAX_TERMS = 12
SNIPPET_CHARS = 200
SNIPPET_LEAD = 60
# The scripts written without spaces (as in migration 0010's helpdesk_search_text).
CJK_CLASS = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af]"
_CJK = re.compile(CJK_CLASS)
_CJK_RUNS = re.compile(f"{CJK_CLASS}+|(?:(?!{CJK_CLASS})[^\\W_])+")
AnySelect = Select[*tuple[Any, ...]]  # a SELECT of any columns (SQLAlchemy 2.1's variadic generic)
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
# What the newest-first reading takes from each ticket (besides what the filters name): where the person works the
# tickets as staff, all of it is in the covering index ix_tickets_assignee_search (migration 0019).
STAFF_COLUMNS = (Ticket.id, Ticket.number, Ticket.search_all)
# The tickets whose vector fits in that index's rows (its condition, migration 0021; the others are in
# ix_tickets_assignee_large and read from the table). Stated the same way so that PostgreSQL picks the indexes.
COMPACT = func.octet_length(cast(Ticket.search_all, Text)) <= literal_column("1400")
PUBLIC_COLUMNS = (Ticket.id, Ticket.number, Ticket.search_doc, Ticket.search_comments)


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
    assigned: str,
    filters: Sequence[ColumnElement[bool]],
    query: SearchQuery,
    *,
    limit: int,
    offset: int,
) -> Found:
    """The tickets `actor` may see (narrowed by `assigned` and `filters`) that match, best first.

    What `actor` may see comes in disjoint parts (visibility.visible_parts: for a moderator, the tickets they work
    and the ones they filed), each searched on its own (_part_matches) for its newest matches with their rank.
    Their union's RANK_WINDOW newest are the candidates, ranked, and the page is cut from them.
    """
    # Plan each search for its own words: a plan cached for the first query's rare word would be wrong for a
    # common one (index scan of the newest tickets versus the GIN index).
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    text_query = tsquery_text(session, query)
    if not text_query and query.number is None:  # nothing left to look for (only letters unaccent drops)
        return Found([], 0)
    rare = None if query.number is not None else _rare_part(session, text_query)
    parts = [
        ([piece, *filters], _match(text_query, query.number, staff=staff))
        for part, staff in visible_parts(actor, assigned)
        for piece in _by_vector_size(part, staff)
    ]
    candidates = _rare_matches(session, parts, rare) if rare else _newest_matches(session, parts)
    candidates = sorted(candidates, reverse=True)[:RANK_WINDOW]  # the newest (ids grow with time)
    page = sorted(candidates, key=lambda c: (-c[1], -c[0]))[offset : offset + limit]
    if not page:
        return Found([], len(candidates))
    # The page's rows only, with their people (joined, as the model says): the compiled statement is cached.
    rows = (
        session.scalars(
            select(Ticket)
            .where(Ticket.id.in_([ticket_id for ticket_id, _ in page]))
            .options(
                joinedload(Ticket.satisfaction),  # in the same statement (the model's default is a second one)
                # who follows each (sees_staff_view reads it per ticket): one statement, not one per ticket
                selectinload(Ticket.followers),
            )
        )
        .unique()
        .all()
    )
    by_id = {ticket.id: ticket for ticket in rows}
    return Found([(by_id[i], rank) for i, rank in page if i in by_id], len(candidates))


def _by_vector_size(part: ColumnElement[bool], staff: bool) -> list[ColumnElement[bool]]:
    """A part read through the assignee's index, as the two halves of migration 0021 (compact vectors, index only;
    large ones, from the table); any other part whole (an admin's everything is read by primary key)."""
    if not staff or isinstance(part, True_):
        return [part]
    return [and_(part, COMPACT), and_(part, not_(COMPACT))]


@dataclass(frozen=True)
class _Match:
    condition: ColumnElement[bool]
    rank: ColumnElement[float]
    columns: tuple[InstrumentedAttribute[Any], ...]  # what the condition and the rank read


# One part of what someone sees (its conditions, with the filters) and how a ticket matches there.
_Part = tuple[list[ColumnElement[bool]], _Match]


def _match(text_query: str, number: int | None, *, staff: bool) -> _Match:
    """A ticket matches by its text (internal notes only where `actor` works it as staff) or by its number."""
    vector = ALL_TEXT if staff else PUBLIC_TEXT
    conditions: list[ColumnElement[bool]] = []
    rank: ColumnElement[float] = literal_column("0.0")
    if text_query:
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam("tsquery", text_query, String()))
        conditions.append(_matches(vector, tsquery))
        rank = func.ts_rank(vector, tsquery)
    if number is not None:
        conditions.append(Ticket.number == number)
        rank = rank + case((Ticket.number == number, 10.0), else_=0.0)
    return _Match(or_(*conditions), rank, STAFF_COLUMNS if staff else PUBLIC_COLUMNS)


def _rare_part(session: Session, text_query: str) -> str | None:
    """The query's rarest part (a word, or a CJK phrase) if PostgreSQL's statistics say it is rare enough that the
    newest SCAN_NEWEST tickets would hold fewer than ENOUGH_TO_RANK of it; else None.

    ANALYZE keeps the most common lexemes of `search_all` with their frequencies (pg_stats.most_common_elems, about
    the thousand most common at the default statistics target). A word that no kept lexeme starts with is rarer
    than all of them, and counted as rare. Read once per STATS_SECONDS per process.
    """
    frequencies = _lexeme_frequencies(session)
    best: tuple[float, str] | None = None
    for part in text_query.split(" & "):
        lexemes = _LEXEME.findall(part)
        if part.endswith(":*"):  # one word, a prefix: all the kept lexemes it starts
            estimate = min(1.0, sum(f for lexeme, f in frequencies.items() if lexeme.startswith(lexemes[0])))
        else:  # CJK characters, all required: no more frequent than its rarest character
            estimate = min(frequencies.get(lexeme, 0.0) for lexeme in lexemes)
        if best is None or estimate < best[0]:
            best = (estimate, part)
    if best is None or best[0] * SCAN_NEWEST >= ENOUGH_TO_RANK:
        return None
    return best[1]


_LEXEME = re.compile(r"'([^']*)'")
STATS_SECONDS = 600.0
_stats: dict[str, Any] = {"read_at": None, "frequencies": {}}


def _lexeme_frequencies(session: Session) -> dict[str, float]:
    now = time.monotonic()
    if _stats["read_at"] is None or now - _stats["read_at"] > STATS_SECONDS:
        row = session.execute(
            text(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE schemaname = current_schema() AND tablename = 'tickets' AND attname = 'search_all'"
            )
        ).first()
        lexemes, freqs = (row[0], row[1]) if row is not None and row[0] else ([], [])
        _stats.update(read_at=now, frequencies=dict(zip(lexemes, freqs, strict=False)))  # freqs has 3 more
    return dict(_stats["frequencies"])


def _rare_matches(
    session: Session, parts: list[tuple[list[ColumnElement[bool]], _Match]], rare: str
) -> list[tuple[int, float]]:
    """(id, rank) of the RANK_WINDOW newest matches of each part, found through the GIN index by the query's rarest
    part only (a frequent word next to it would have its whole bitmap built); the whole query is then tested on
    those few rows. All parts in one statement."""
    rare_query = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam("rare", rare, String()))
    branches = []
    for n, (where, match) in enumerate(parts):
        candidates = (
            select(*match.columns).where(*where, _matches(ALL_TEXT, rare_query)).offset(0).subquery(f"candidates{n}")
        )
        adapt = ClauseAdapter(candidates).traverse
        branches.append(
            select(candidates.c.id, adapt(match.rank).label("rank"))
            .where(adapt(match.condition))
            .order_by(candidates.c.id.desc())
            .limit(RANK_WINDOW)
        )
    return [(row[0], float(row[1])) for row in session.execute(_union(branches))]


def _union(branches: Sequence[AnySelect]) -> AnySelect | CompoundSelect[Any]:
    """One statement for the parts, each branch keeping its own ORDER BY and LIMIT."""
    if len(branches) == 1:
        return branches[0]
    return union_all(*(select(*branch.subquery().c) for branch in branches))


def _newest_matches(session: Session, parts: list[_Part]) -> list[tuple[int, float]]:
    """(id, rank) of the RANK_WINDOW newest matches of each part of what the person sees.

    First each part's newest SCAN_NEWEST tickets are read in id order (the primary key for everything; for the
    tickets assigned to someone, the covering index of migration 0021, which holds the compact text vectors, so no
    table row is read) and tested one by one, all parts in one statement: a frequent word fills the window from the
    newest few thousand, and the GIN index, which would build the whole bitmap of a word found in a third of all
    tickets, is not used. Where a part holds more tickets and fewer than ENOUGH_TO_RANK matched among its newest
    SCAN_NEWEST, the word is rare there after all: its older tickets are searched through the GIN index. Where at
    least ENOUGH_TO_RANK matched, those are the part's candidates: the search ranks the matches among the newest
    SCAN_NEWEST tickets (at most RANK_WINDOW of them) rather than read on through older ones.
    """
    branches = []
    for n, (where, match) in enumerate(parts):
        newest = (
            select(*match.columns).where(*where).order_by(Ticket.id.desc()).limit(SCAN_NEWEST).subquery(f"newest{n}")
        )
        adapt = ClauseAdapter(newest).traverse
        branches.append(
            select(newest.c.id, adapt(match.rank).label("rank"), literal_column(str(n)).label("part"))
            .where(adapt(match.condition))
            .order_by(newest.c.id.desc())
            .limit(RANK_WINDOW)
        )
    rows = session.execute(_union(branches)).all()
    found = [(row[0], float(row[1])) for row in rows]
    matched = [0] * len(parts)
    for row in rows:
        matched[row[2]] += 1
    sparse = [n for n in range(len(parts)) if matched[n] < ENOUGH_TO_RANK]
    if not sparse:
        return found
    # The oldest ticket read above, for each sparse part that holds more than that: all parts in one statement
    # (a search's parts are mostly small, the followed and filed tickets of a moderator, each a round trip else).
    cutoff_reads: list[AnySelect] = [
        select(literal_column(str(n), Integer()).label("part"), Ticket.id)
        .where(*parts[n][0])
        .order_by(Ticket.id.desc())
        .offset(SCAN_NEWEST - 1)
        .limit(1)
        for n in sparse
    ]
    cutoffs: dict[int, int] = {row[0]: row[1] for row in session.execute(_union(cutoff_reads))}
    if not cutoffs:
        return found
    older_reads: list[AnySelect] = [
        select(Ticket.id, parts[n][1].rank.label("rank"))
        .where(*parts[n][0], Ticket.id < cutoff, parts[n][1].condition)
        .order_by(Ticket.id.desc())
        .limit(RANK_WINDOW)
        for n, cutoff in cutoffs.items()
    ]
    older = session.execute(_union(older_reads))
    return found + [(row[0], float(row[1])) for row in older]


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
