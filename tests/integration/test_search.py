# ruff: noqa: RUF001 - the Russian test text is Cyrillic on purpose
"""Full-text search (services/search.py through GET /api/tickets?q=): languages, accents, ranking, highlighting
and, above all, visibility for every role."""

from __future__ import annotations

import pytest
from sqlalchemy import not_, select, text

from ticketing_app.db import session_scope
from ticketing_app.models import Ticket, User
from ticketing_app.schemas import CommentCreate, TicketFilters, TicketUpdate
from ticketing_app.services import search, tickets


def find(api, headers, q, **params):
    r = api.get("/api/tickets", params={"q": q, "limit": 100, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def titles(page) -> list[str]:
    return [item["title"] for item in page["items"]]


def comment(user: User, ticket: Ticket, body: str, *, internal: bool = False) -> None:
    with session_scope() as s:
        tickets.add_comment(s, s.get(User, user.id), ticket.id, CommentCreate(body=body, internal=internal))


def assign(admin: User, ticket: Ticket, moderator: User) -> None:
    with session_scope() as s:
        tickets.update_ticket(s, s.get(User, admin.id), ticket.id, TicketUpdate(assignee_id=moderator.id))


def marked(pieces) -> list[str]:
    return [piece["text"] for piece in pieces if piece["match"]]


def test_accents_are_ignored_both_ways(api, factory):
    user = factory.user()
    factory.ticket(user, "Le café est fermé", "Impossible de payer au café.")
    factory.ticket(user, "Resume upload", "My resume does not upload.")
    h = factory.headers(user)
    assert titles(find(api, h, "cafe")) == ["Le café est fermé"]
    assert titles(find(api, h, "CAFÉ")) == ["Le café est fermé"]
    assert titles(find(api, h, "résumé")) == ["Resume upload"]
    assert titles(find(api, h, "ferme")) == ["Le café est fermé"]


@pytest.mark.parametrize(
    ("title", "description", "query"),
    [
        ("Drucker druckt nicht", "Der Drucker im Büro zeigt Störung an.", "storung"),
        ("Drucker druckt nicht", "Die Größe der Seite ist falsch.", "GRÖSSE"),
        ("Не работает принтер", "Принтер в офисе не печатает документы.", "принтер"),
        ("Ошибка входа", "Не могу войти в личный кабинет.", "кабинет"),
        ("プリンターが動きません", "事務所のプリンターが印刷できません。", "プリンター"),
        ("ログインできない", "パスワードを変更した後にログインできません。", "パスワード"),
        ("東京オフィスのネットワーク", "東京のオフィスでネットワークが遅い。", "東京"),
        ("Contraseña olvidada", "No puedo entrar, olvidé mi contraseña.", "contrasena"),
    ],
)
def test_other_languages(api, factory, title, description, query):
    user = factory.user()
    factory.ticket(user, title, description)
    factory.ticket(user, "Unrelated", "Nothing to see here.")
    page = find(api, factory.headers(user), query)
    assert titles(page) == [title]
    hit = page["items"][0]["search"]
    assert marked(hit["title"]) or marked(hit["snippet"])


def test_japanese_finds_a_run_inside_a_sentence_but_not_scattered_characters(api, factory):
    user = factory.user()
    factory.ticket(user, "印刷の問題", "事務所のプリンターが印刷できません。")
    h = factory.headers(user)
    assert titles(find(api, h, "印刷できません")) == ["印刷の問題"]
    assert titles(find(api, h, "できません印刷")) == []  # the characters are all there, not in this order
    snippet = find(api, h, "プリンター")["items"][0]["search"]["snippet"]
    assert marked(snippet) == ["プリンター"]


def test_prefixes_and_all_words_must_match(api, factory):
    user = factory.user()
    factory.ticket(user, "Password reset mail never arrives", "I asked twice.")
    factory.ticket(user, "Password expired", "It says expired.")
    h = factory.headers(user)
    assert sorted(titles(find(api, h, "pass"))) == ["Password expired", "Password reset mail never arrives"]
    assert titles(find(api, h, "password mail")) == ["Password reset mail never arrives"]
    assert titles(find(api, h, "password invoice")) == []


def test_ranked_title_before_description_before_comment(api, factory):
    user = factory.user()
    in_comment = factory.ticket(user, "Something else", "Nothing here.")
    comment(user, in_comment, "By the way the invoice is wrong.")
    factory.ticket(user, "Question", "About the invoice for March.")
    factory.ticket(user, "Invoice missing", "Where is it?")
    page = find(api, factory.headers(user), "invoice")
    assert titles(page) == ["Invoice missing", "Question", "Something else"]
    ranks = [item["search"]["rank"] for item in page["items"]]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] > ranks[-1]
    snippet = page["items"][2]["search"]["snippet"]  # found in a comment: the snippet shows that comment
    assert "By the way" in "".join(p["text"] for p in snippet) and marked(snippet) == ["invoice"]


def test_search_combines_with_filters_and_paging(api, factory):
    user = factory.user()
    for n in range(5):
        factory.ticket(user, f"Printer {n} jammed", "Paper stuck.")
    factory.ticket(user, "Scanner jammed", "Paper stuck.")
    h = factory.headers(user)
    first = find(api, h, "jammed", limit=2)
    assert first["total"] == 6 and len(first["items"]) == 2
    rest = find(api, h, "jammed", limit=10, offset=2)
    assert len(rest["items"]) == 4 and not {i["id"] for i in first["items"]} & {i["id"] for i in rest["items"]}
    assert find(api, h, "jammed", limit=10, offset=50) == {"items": [], "total": 6}
    assert find(api, h, "jammed", status="resolved")["total"] == 0
    assert find(api, h, "printer jammed")["total"] == 5


def test_highlights_are_text_pieces_and_hostile_text_stays_text(api, factory):
    user = factory.user()
    hostile = "<script>alert('x')</script> <b>bold</b> & more"
    factory.ticket(user, f"alert {hostile}", f"An alert here: {hostile}")
    page = find(api, factory.headers(user), "alert")
    hit = page["items"][0]["search"]
    assert "".join(p["text"] for p in hit["title"]) == f"alert {hostile}"  # exactly the text, nothing added
    assert marked(hit["title"]) == ["alert", "alert"]
    assert all("<mark" not in p["text"] and "&lt;" not in p["text"] for p in hit["title"] + hit["snippet"])


def test_ticket_number_and_punctuation(api, factory):
    user = factory.user()
    factory.ticket(user, "First", "one")
    second = factory.ticket(user, "Second", "two")
    h = factory.headers(user)
    assert titles(find(api, h, second.reference)) == ["Second"]
    assert find(api, h, "%")["total"] == 0 and find(api, h, "' & | ! ( ) :* <->")["total"] == 0


def test_comments_are_searchable_when_added(api, factory):
    user = factory.user()
    ticket = factory.ticket(user, "Login", "Cannot log in.")
    h = factory.headers(user)
    assert find(api, h, "zebra")["total"] == 0
    comment(user, ticket, "The zebra icon spins forever.")
    assert titles(find(api, h, "zebra")) == ["Login"]


@pytest.fixture()
def world(factory):
    """Two requesters, two moderators and an admin; internal notes on a ticket each moderator works."""
    admin = factory.admin()
    mod_a = factory.user("moderator", skills=["billing"])
    mod_b = factory.user("moderator", skills=["network"])
    alice, bob = factory.user(), factory.user()
    t_alice = factory.ticket(alice, "Alice secretword printer", "Alice text.")
    t_bob = factory.ticket(bob, "Bob secretword printer", "Bob text.")
    t_mod_a_own = factory.ticket(mod_a, "Moderator A own secretword", "Filed as a customer.")
    assign(admin, t_alice, mod_a)
    assign(admin, t_bob, mod_b)
    assign(admin, t_mod_a_own, mod_b)
    comment(mod_a, t_alice, "internalonly hush note", internal=True)
    comment(mod_b, t_mod_a_own, "internalonly about A", internal=True)
    return {"admin": admin, "mod_a": mod_a, "mod_b": mod_b, "alice": alice, "bob": bob}


def test_every_role_finds_only_what_it_may_see(api, factory, world):
    def found(who, q, **params):
        return sorted(titles(find(api, factory.headers(world[who]), q, **params)))

    assert found("alice", "secretword") == ["Alice secretword printer"]
    assert found("bob", "secretword") == ["Bob secretword printer"]
    assert found("mod_a", "secretword") == ["Alice secretword printer", "Moderator A own secretword"]
    assert found("mod_b", "secretword") == ["Bob secretword printer", "Moderator A own secretword"]
    assert len(found("admin", "secretword")) == 3
    # internal notes: only staff working the ticket (not its requester, even a moderator filing as a customer)
    assert found("alice", "internalonly") == []
    assert found("mod_a", "internalonly") == ["Alice secretword printer"]
    assert found("mod_b", "internalonly") == ["Moderator A own secretword"]
    assert found("admin", "internalonly") == ["Alice secretword printer", "Moderator A own secretword"]
    # a requester's snippet never shows an internal note, even when the public text matched too
    page = find(api, factory.headers(world["alice"]), "alice")
    assert "hush" not in str(page)


def test_the_queue_search_shows_a_moderator_only_their_queue(factory, world):
    with session_scope() as s:
        mod_a = s.get(User, world["mod_a"].id)
        page = tickets.list_queue(s, mod_a, TicketFilters(q="secretword", assigned="any"))
        assert [t.title for t in page.items] == ["Alice secretword printer"]  # their own ticket is not queue work
        admin = s.get(User, world["admin"].id)
        assert tickets.list_queue(s, admin, TicketFilters(q="secretword", assigned="any")).total == 3
        assert tickets.list_queue(s, admin, TicketFilters(q="secretword", assigned="me")).total == 0


def test_parse_query_never_passes_operators(session):
    query = search.parse_query("pass' & !x | (y) <-> z:* 東京 Ünïcode")
    assert query.words == ("pass", "x", "y", "z", "unicode")
    assert search.tsquery_text(session, query) == "'pass':* & 'x':* & 'y':* & 'z':* & 'unicode':* & ('東' <-> '京')"
    assert search.parse_query("%_\\").empty


@pytest.mark.parametrize("typed", ["ʼ", "donʼt", "ː:", "aʹb", "‘quoted’", "½", "x×y", "«a»"])
def test_letters_that_unaccent_turns_into_tsquery_syntax_are_harmless(api, factory, typed):
    user = factory.user()
    factory.ticket(user, "Don't panic", "a b x y 1/2")
    r = api.get("/api/tickets", params={"q": typed}, headers=factory.headers(user))
    assert r.status_code == 200, r.text


def test_fold_matches_unaccent():
    assert search.fold("Ça Été Über Größe") == "ca ete uber grosse"


@pytest.fixture(params=["scan", "index"])
def search_path(request, monkeypatch):
    """Each search either reads the newest tickets first ("scan": the words are frequent) or goes through the GIN
    index by its rarest word ("index"): the statistics decide at run time; here each test runs both ways."""
    if request.param == "scan":
        monkeypatch.setattr(search, "_rare_part", lambda session, text_query: None)
    else:
        monkeypatch.setattr(search, "_rare_part", lambda session, text_query: text_query.split(" & ")[-1])
    return request.param


def test_every_role_finds_only_what_it_may_see_either_way(api, factory, world, search_path):
    test_every_role_finds_only_what_it_may_see(api, factory, world)
    test_the_queue_search_shows_a_moderator_only_their_queue(factory, world)


def test_the_parts_of_what_someone_sees_are_disjoint_and_exactly_what_they_see(factory, world):
    """Search reads what a person may see in parts (visibility.visible_parts), each with or without the staff view:
    together they must be exactly the list's tickets for every role and "assigned" choice, and the staff flag
    must agree with sees_staff_view ticket by ticket."""
    from sqlalchemy import select

    from ticketing_app.models import TicketFollower
    from ticketing_app.services.visibility import sees_staff_view, visible_parts

    own_assigned = factory.ticket(world["mod_a"], "Moderator A self-assigned", "Mine to work.")
    assign(world["admin"], own_assigned, world["mod_a"])
    # Followers (a merged duplicate's requester): alice follows one of bob's tickets; moderator A follows a ticket
    # assigned to them (requester's view, no staff view) and moderator B one they do not work.
    followed = factory.ticket(world["bob"], "Bob's followed ticket", "Alice follows this one.")
    followed_worked = factory.ticket(world["bob"], "Followed and worked", "Moderator A follows and works it.")
    assign(world["admin"], followed_worked, world["mod_a"])
    with session_scope() as s:
        for ticket, who in ((followed, "alice"), (followed_worked, "mod_a"), (followed, "mod_b")):
            s.add(TicketFollower(ticket_id=ticket.id, user_id=world[who].id))
    with session_scope() as s:
        for who in ("admin", "mod_a", "mod_b", "alice", "bob"):
            actor = s.get(User, world[who].id)
            for assigned in ("any", "me", "unassigned"):
                listed = {
                    t.id for t in tickets.list_tickets(s, actor, TicketFilters(assigned=assigned, limit=100)).items
                }
                seen: list[int] = []
                for part, staff in visible_parts(actor, assigned):
                    for ticket in s.scalars(select(Ticket).where(part)).unique():
                        seen.append(ticket.id)
                        assert sees_staff_view(actor, ticket) == staff, (who, assigned, ticket.title)
                assert sorted(seen) == sorted(listed), (who, assigned)
                assert len(seen) == len(set(seen)), (who, assigned)


def test_the_newest_matches_are_found_first_among_the_newest_tickets(api, factory, monkeypatch, search_path):
    monkeypatch.setattr(search, "RANK_WINDOW", 3)
    monkeypatch.setattr(search, "SCAN_NEWEST", 5)
    monkeypatch.setattr(search, "ENOUGH_TO_RANK", 2)
    user, admin = factory.user(), factory.admin()
    made = [
        factory.ticket(user, f"{'alpha' if n in (1, 2, 3, 18) else 'beta'} ticket {n}", "text") for n in range(1, 21)
    ]
    for who in (user, admin):
        page = find(api, factory.headers(who), "alpha")
        # the three newest matches: one among the newest five tickets (fewer than ENOUGH_TO_RANK), two older
        assert page["total"] == 3
        assert {item["id"] for item in page["items"]} == {made[17].id, made[2].id, made[1].id}
        page = find(api, factory.headers(who), "beta")
        assert {item["id"] for item in page["items"]} == {made[19].id, made[18].id, made[16].id}


def test_a_moderators_parts_each_read_their_older_matches(api, factory, monkeypatch):
    """A moderator's tickets come in parts (worked, filed); where a word is rare in the newest of two of them, the
    older matches of both are read (one statement for the cutoffs, one for the older matches)."""
    monkeypatch.setattr(search, "_rare_part", lambda session, text_query: None)
    monkeypatch.setattr(search, "SCAN_NEWEST", 3)
    monkeypatch.setattr(search, "ENOUGH_TO_RANK", 2)
    factory.admin()
    mod, user = factory.user("moderator"), factory.user()
    worked = [factory.ticket(user, f"{'omega' if n == 0 else 'sigma'} worked {n}", "text") for n in range(6)]
    filed = [factory.ticket(mod, f"{'omega' if n == 1 else 'sigma'} filed {n}", "text") for n in range(6)]
    with session_scope() as s:
        s.execute(text("DELETE FROM jobs WHERE status = 'queued'"))  # no triage to move them
        s.execute(
            text("UPDATE tickets SET assigned_to_id = :m, triage_status = 'done' WHERE id = ANY(:ids)"),
            {"m": mod.id, "ids": [t.id for t in worked]},
        )
    page = find(api, factory.headers(mod), "omega")
    assert page["total"] == 2
    assert {item["id"] for item in page["items"]} == {worked[0].id, filed[1].id}


def test_a_frequent_words_candidates_are_the_matches_among_the_newest_tickets(api, factory, monkeypatch):
    """Where the newest SCAN_NEWEST tickets hold ENOUGH_TO_RANK matches, those are ranked: older ones are not read."""
    monkeypatch.setattr(search, "_rare_part", lambda session, text_query: None)
    monkeypatch.setattr(search, "SCAN_NEWEST", 5)
    monkeypatch.setattr(search, "ENOUGH_TO_RANK", 2)
    admin = factory.admin()
    made = [factory.ticket(admin, f"{'gamma' if n in (1, 2, 17, 19) else 'delta'} {n}", "text") for n in range(1, 21)]
    page = find(api, factory.headers(admin), "gamma")
    assert page["total"] == 2 and {item["id"] for item in page["items"]} == {made[16].id, made[18].id}
    monkeypatch.setattr(search, "ENOUGH_TO_RANK", 3)  # two are not enough: the older ones come from the index
    page = find(api, factory.headers(admin), "gamma")
    assert page["total"] == 4


def test_the_rarest_part_is_chosen_from_the_statistics(session, monkeypatch):
    frequencies = {"printer": 0.3, "print": 0.1, "password": 0.2, "東": 0.2, "京": 0.00001, "ref12": 0.00001}
    monkeypatch.setattr(search, "_lexeme_frequencies", lambda s: frequencies)
    assert search._rare_part(session, "'print':*") is None  # 0.4 of all tickets
    assert search._rare_part(session, "'printer':* & 'ref1':*") == "'ref1':*"
    assert search._rare_part(session, "'pass':* & 'zzz':*") == "'zzz':*"  # no common lexeme starts it
    assert search._rare_part(session, "'printer':* & ('東' <-> '京')") == "('東' <-> '京')"
    assert search._rare_part(session, "'printer':* & ('東' <-> 'ー')") == "('東' <-> 'ー')"
    monkeypatch.setattr(search, "_lexeme_frequencies", lambda s: {**frequencies, "京": 0.2, "ー": 0.2})
    assert search._rare_part(session, "'printer':* & ('東' <-> '京')") is None


def test_the_statistics_are_read_from_postgresql(session):
    search._stats["read_at"] = None
    assert isinstance(search._lexeme_frequencies(session), dict)


def test_a_ticket_with_a_large_text_vector_is_assigned_and_found(api, factory, search_path):
    """A btree row holds at most 2,704 bytes: a long ticket's vector must not go into the covering index (it used
    to make assigning it fail), yet its moderator finds it, and the short ones still come from the index."""
    admin, moderator, user = factory.admin(), factory.user("moderator"), factory.user()
    words = " ".join(f"word{n}x{n * 7919 % 10007}" for n in range(700))  # 700 distinct words: a large vector
    large = factory.ticket(user, "Pasted log zebrafinch", words)
    small = factory.ticket(user, "Short zebrafinch question", "Where is the setting?")
    for ticket, note in ((large, words[:3000]), (small, "checked")):
        assign(admin, ticket, moderator)
        comment(moderator, ticket, f"zebrafinch internal {note}", internal=True)
    with session_scope() as s:
        sizes = dict(s.execute(select(Ticket.id, search.COMPACT).where(Ticket.id.in_([large.id, small.id]))).all())
    assert sizes == {large.id: False, small.id: True}
    for who in (moderator, admin):
        assert sorted(titles(find(api, factory.headers(who), "zebrafinch"))) == [
            "Pasted log zebrafinch",
            "Short zebrafinch question",
        ]
    assert titles(find(api, factory.headers(moderator), "word699x")) == ["Pasted log zebrafinch"]


def test_a_moderators_compact_tickets_are_read_from_the_covering_index_only(session, factory):
    """The search states the partial indexes' conditions (migration 0021) exactly enough for PostgreSQL to use
    them: an index-only scan of the covering index for compact vectors, the other index for large ones."""
    moderator = factory.user("moderator")
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    plans = []
    for size in (search.COMPACT, not_(search.COMPACT)):
        statement = (
            select(*search.STAFF_COLUMNS)
            .where(Ticket.assigned_to_id == moderator.id, size)
            .order_by(Ticket.id.desc())
            .limit(search.SCAN_NEWEST)
        )
        compiled = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
        plans.append("\n".join(row[0] for row in session.execute(text(f"EXPLAIN {compiled}"))))
    assert "Index Only Scan Backward using ix_tickets_assignee_search" in plans[0], plans[0]
    assert "ix_tickets_assignee_large" in plans[1], plans[1]
