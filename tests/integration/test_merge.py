"""Merging a duplicate into the original (services/merge.py): rules, effects, followers' rights per role,
concurrent merges, and the mails (each once)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from tests.factories import Factory
from ticketing_app.db import session_scope
from ticketing_app.errors import BadRequest, Conflict, NotFound, PermissionDenied
from ticketing_app.models import Attachment, Comment, EmailMessage, Ticket, TicketEvent, TicketFollower, User
from ticketing_app.schemas import CommentCreate, TicketFilters, TicketUpdate
from ticketing_app.services import attachments, merge, tickets


def as_user(user: User, fn):
    with session_scope() as s:
        return fn(s, s.get(User, user.id))


def assign(ticket_id: int, user_id: int) -> None:
    with session_scope() as s:
        s.execute(update(Ticket).where(Ticket.id == ticket_id).values(assigned_to_id=user_id))


def comment(user: User, ticket_id: int, body: str, *, internal: bool = False, files=()) -> int:
    return as_user(
        user,
        lambda s, u: (
            tickets.add_comment(s, u, ticket_id, CommentCreate(body=body, internal=internal), files=list(files)).id
        ),
    )


def do_merge(actor: User, duplicate_id: int, original_id: int, note: str | None = None) -> int:
    return as_user(actor, lambda s, u: merge.merge_ticket(s, u, duplicate_id, original_id, note).id)


def mails(kind: str) -> list[str]:
    with session_scope() as s:
        return list(
            s.scalars(select(EmailMessage.to_address).where(EmailMessage.kind == kind).order_by(EmailMessage.id))
        )


@pytest.fixture()
def world(factory: Factory):
    """An admin, the moderator both tickets are assigned to, another moderator, two requesters (A filed the
    original, B the duplicate), and a stranger."""
    admin = factory.admin()
    mod, other_mod = factory.user("moderator"), factory.user("moderator")
    a, b, stranger = factory.user(name="Alice Original"), factory.user(name="Bob Duplicate"), factory.user()
    original = factory.ticket(a, "VPN drops every hour", "The VPN disconnects hourly.")
    duplicate = factory.ticket(b, "VPN keeps disconnecting", "Since Monday the VPN drops, quokka.")
    assign(original.id, mod.id)
    assign(duplicate.id, mod.id)
    return {
        "admin": admin,
        "mod": mod,
        "other_mod": other_mod,
        "a": a,
        "b": b,
        "stranger": stranger,
        "original": original.id,
        "duplicate": duplicate.id,
    }


def test_merge_copies_the_conversation_closes_the_duplicate_and_links_both(world) -> None:
    w = world
    with session_scope() as s:  # a file on the duplicate itself (filed with it)
        attachments.store(s, s.get(User, w["b"].id), s.get(Ticket, w["duplicate"]), filename="a.txt", data=b"A\n")
    comment(w["b"], w["duplicate"], "Also on wifi, zebrafish.", files=[("log.txt", b"line one\n")])
    comment(w["mod"], w["duplicate"], "Checking the concentrator.", internal=True)
    comment(w["mod"], w["duplicate"], "Could you send a trace?")

    assert do_merge(w["mod"], w["duplicate"], w["original"], note="Same outage.") == w["original"]

    with session_scope() as s:
        dup, orig = s.get(Ticket, w["duplicate"]), s.get(Ticket, w["original"])
        assert dup.status == "closed" and dup.merged_into_id == orig.id
        copied = s.scalars(select(Comment).where(Comment.ticket_id == orig.id).order_by(Comment.id)).all()
        assert copied[0].body.startswith(f"Merged from {dup.reference}: VPN keeps disconnecting\n\n")
        assert copied[0].author_id == w["b"].id and copied[0].created_at == dup.created_at
        assert [(c.body, c.internal, c.author_id) for c in copied[1:]] == [
            ("Also on wifi, zebrafish.", False, w["b"].id),
            ("Checking the concentrator.", True, w["mod"].id),
            ("Could you send a trace?", False, w["mod"].id),
        ]
        originals = s.scalars(select(Comment).where(Comment.ticket_id == dup.id).order_by(Comment.id)).all()
        assert [c.created_at for c in originals[:3]] == [c.created_at for c in copied[1:]]  # times kept
        last = originals[-1]
        assert not last.internal and last.body.startswith(f"Merged into {orig.reference}: VPN drops every hour")
        assert last.body.endswith("Same outage.") and f"/tickets/{orig.id}" in last.body
        # the file came along, bytes and all, on the copied comment
        files = s.execute(
            select(Attachment.comment_id, Attachment.filename, Attachment.data).where(Attachment.ticket_id == orig.id)
        ).all()
        assert sorted((f.comment_id, f.filename, f.data) for f in files) == [
            (copied[0].id, "a.txt", b"A\n"),  # the duplicate's own file goes with its description
            (copied[1].id, "log.txt", b"line one\n"),
        ]
        assert s.scalar(select(func.count()).where(Attachment.ticket_id == dup.id)) == 2  # the duplicate keeps its
        kinds = {e.kind for e in s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == dup.id))}
        assert {"merged_into", "status_changed", "commented"} <= kinds
        merged_from = s.scalar(
            select(TicketEvent).where(TicketEvent.ticket_id == orig.id, TicketEvent.kind == "merged_from")
        )
        assert merged_from.data["from"]["number"] == dup.reference and merged_from.data["comments"] == 4
        assert s.scalar(select(TicketFollower.user_id).where(TicketFollower.ticket_id == orig.id)) == w["b"].id

    detail = as_user(w["a"], lambda s, u: tickets.get_ticket_detail(s, u, w["original"]))
    assert detail.merged_into is None
    assert [(r.id, r.number) for r in detail.merged_from] == [(w["duplicate"], f"TCK-{1002}")]
    assert "Checking the concentrator." not in [c.body for c in detail.comments]  # internal stays internal
    dup_detail = as_user(w["b"], lambda s, u: tickets.get_ticket_detail(s, u, w["duplicate"]))
    assert dup_detail.merged_into is not None and dup_detail.merged_into.id == w["original"]
    event = next(e for e in dup_detail.events if e.kind == "merged_into")
    assert set(event.data) == {"into", "comments"}  # the staff note stays off the requester's timeline


def test_search_finds_the_original_by_the_merged_words(world) -> None:
    w = world
    comment(w["b"], w["duplicate"], "zebrafish appear on the screen")
    do_merge(w["admin"], w["duplicate"], w["original"])
    for who in ("a", "admin"):
        found = as_user(w[who], lambda s, u: tickets.list_tickets(s, u, TicketFilters(q="zebrafish")))
        assert w["original"] in [t.id for t in found.items], who
    found = as_user(w["a"], lambda s, u: tickets.list_tickets(s, u, TicketFilters(q="quokka")))  # the description
    assert [t.id for t in found.items] == [w["original"]]


def test_the_requester_of_the_duplicate_follows_the_original_as_a_requester(world) -> None:
    w = world
    comment(w["mod"], w["original"], "Internal: affects the Berlin office.", internal=True)
    do_merge(w["mod"], w["duplicate"], w["original"])
    b = w["b"]

    listed = as_user(b, lambda s, u: tickets.list_tickets(s, u, TicketFilters()))
    assert {t.id for t in listed.items} == {w["original"], w["duplicate"]}
    detail = as_user(b, lambda s, u: tickets.get_ticket_detail(s, u, w["original"]))
    assert all(not c.internal for c in detail.comments)
    assert detail.helpful_notes is None and detail.assignment_reason is None
    # replies like the requester: the assignee hears of it, a pending ticket goes back in progress
    as_user(w["mod"], lambda s, u: tickets.update_ticket(s, u, w["original"], TicketUpdate(status="pending")))
    comment(b, w["original"], "Here is the trace.")
    with session_scope() as s:
        assert s.get(Ticket, w["original"]).status == "in_progress"
    assert mails("requester_reply")[-1] == w["mod"].email
    assert w["a"].email in mails("ticket_reply")  # the requester reads the follower's reply too
    with pytest.raises(PermissionDenied):  # no internal notes
        comment(b, w["original"], "sneaky", internal=True)
    with pytest.raises(PermissionDenied):  # nor a status change: the requester owns the ticket's fate
        as_user(b, lambda s, u: tickets.update_ticket(s, u, w["original"], TicketUpdate(status="closed")))

    # staff replies reach both requesters; a muted kind is respected
    with session_scope() as s:
        s.get(User, w["a"].id).muted_email_kinds = ["ticket_reply"]
    comment(w["mod"], w["original"], "Fixed the concentrator.")
    assert mails("ticket_reply")[-1:] == [b.email]
    as_user(w["mod"], lambda s, u: tickets.update_ticket(s, u, w["original"], TicketUpdate(status="resolved")))
    assert sorted(mails("ticket_resolved")) == sorted([w["a"].email, b.email])
    with session_scope() as s:  # only the requester is asked for a rating
        rated = s.scalars(select(EmailMessage).where(EmailMessage.kind == "ticket_resolved")).all()
        assert ["/api/rate" in r.body_text for r in sorted(rated, key=lambda r: r.to_address != w["a"].email)] == [
            True,
            False,
        ]


@pytest.mark.parametrize("role", ["stranger", "other_mod"])
def test_people_who_do_not_follow_still_see_nothing(world, role) -> None:
    w = world
    do_merge(w["mod"], w["duplicate"], w["original"])
    listed = as_user(w[role], lambda s, u: tickets.list_tickets(s, u, TicketFilters()))
    assert listed.items == []
    for ticket_id in (w["original"], w["duplicate"]):
        with pytest.raises(NotFound):
            as_user(w[role], lambda s, u: tickets.get_ticket_detail(s, u, ticket_id))  # noqa: B023


def test_a_moderator_who_follows_sees_the_requester_view_even_when_assigned(world, factory: Factory) -> None:
    w = world
    filer = factory.user("moderator")
    dup = factory.ticket(filer, "VPN again", "As a customer, my VPN drops too.").id
    assign(dup, w["mod"].id)
    comment(w["mod"], w["original"], "Internal note on the original.", internal=True)
    do_merge(w["mod"], dup, w["original"])
    assign(w["original"], filer.id)  # now they also work it
    view = as_user(filer, lambda s, u: tickets.get_ticket_view(s, u, w["original"]))
    assert view.can_manage and not view.staff_view
    assert all(not c.internal for c in view.detail.comments)
    found = as_user(filer, lambda s, u: tickets.list_tickets(s, u, TicketFilters(q="Internal")))
    assert found.items == []  # search does not read internal notes for them either


def test_refusals(world, factory: Factory) -> None:
    w = world
    with pytest.raises(PermissionDenied, match="Only staff"):
        do_merge(w["b"], w["duplicate"], w["original"])
    with pytest.raises(NotFound):  # the other moderator does not even see it
        do_merge(w["other_mod"], w["duplicate"], w["original"])
    with pytest.raises(BadRequest, match="itself"):
        do_merge(w["mod"], w["duplicate"], w["duplicate"])
    hidden = factory.ticket(w["stranger"], "Someone else's", "Not assigned to mod").id
    with pytest.raises(NotFound, match="No ticket with that number"):
        do_merge(w["mod"], w["duplicate"], hidden)  # another person's ticket is as good as missing
    with pytest.raises(NotFound):
        do_merge(w["mod"], w["duplicate"], 2**31 + 5)  # out of range: no database error
    with pytest.raises(NotFound):
        do_merge(w["mod"], -1, w["original"])
    third = factory.ticket(w["stranger"], "Third", "third").id
    assign(third, w["mod"].id)
    with session_scope() as s:
        s.get(Ticket, third).status = "closed"
    with pytest.raises(Conflict, match="is closed"):
        do_merge(w["mod"], w["duplicate"], third)
    do_merge(w["mod"], w["duplicate"], w["original"])
    with pytest.raises(Conflict, match="already merged"):
        do_merge(w["mod"], w["duplicate"], w["original"])
    fourth = factory.ticket(w["stranger"], "Fourth", "fourth").id
    assign(fourth, w["mod"].id)
    with pytest.raises(Conflict, match="merge into TCK-1001 instead"):
        do_merge(w["mod"], fourth, w["duplicate"])
    with session_scope() as s:  # nothing of the refused merges was kept
        assert s.get(Ticket, fourth).status == "open" and s.get(Ticket, third).merged_into_id is None


def test_a_moderator_who_sees_but_does_not_manage_the_duplicate_is_refused(world, factory: Factory) -> None:
    w = world
    own = factory.ticket(w["other_mod"], "Filed by a moderator as a customer", "x").id
    assign(own, w["mod"].id)
    assign(w["original"], w["other_mod"].id)
    with pytest.raises(PermissionDenied, match="assigned moderator"):
        do_merge(w["other_mod"], own, w["original"])


def test_mails_go_once_to_each_affected_requester_with_an_unsubscribe_link(world, factory: Factory) -> None:
    w = world
    cc = factory.user(name="Carol Follower")
    with session_scope() as s:  # the duplicate had a follower of its own (an earlier merge)
        s.add(TicketFollower(ticket_id=w["duplicate"], user_id=cc.id))
    do_merge(w["mod"], w["duplicate"], w["original"], note="<b>Same</b> outage")
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).where(EmailMessage.kind == "ticket_merged")).all()
        assert sorted(r.to_address for r in rows) == sorted([w["b"].email, cc.email])
        for r in rows:
            assert "TCK-1002 was merged into TCK-1001" in r.body_text
            assert f"/tickets/{w['original']}" in r.body_text
            assert "&lt;b&gt;Same&lt;/b&gt;" in r.body_html and "<b>Same" not in r.body_html
            assert "List-Unsubscribe" in r.headers
            assert r.ticket_id == w["original"]
        # no "closed" status mail beside the merge mail; the original's requester is not mailed about it
        assert s.scalar(select(func.count()).where(EmailMessage.kind == "ticket_status")) == 0
        assert w["a"].email not in [r.to_address for r in rows]
    # a muted kind is not queued
    with session_scope() as s:
        s.get(User, w["b"].id).muted_email_kinds = ["ticket_merged"]
    again = factory.ticket(w["b"], "Another dup", "again").id
    assign(again, w["mod"].id)
    do_merge(w["mod"], again, w["original"])
    assert mails("ticket_merged").count(w["b"].email) == 1


def test_two_concurrent_merges_do_not_deadlock_or_double_merge(world, factory: Factory) -> None:
    """A into B and B into A at the same moment, from two sessions: one wins, the other is refused."""
    w = world
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(name: str, dup: int, orig: int) -> None:
        try:
            with session_scope() as s:
                actor = s.get(User, w["admin"].id)
                barrier.wait(timeout=10)
                merge.merge_ticket(s, actor, dup, orig)
            results[name] = "ok"
        except Exception as exc:
            results[name] = exc

    for _ in range(3):
        a_id = factory.ticket(w["a"], "Race one", "one").id
        b_id = factory.ticket(w["b"], "Race two", "two").id
        results.clear()
        barrier.reset()
        threads = [
            threading.Thread(target=run, args=("forward", a_id, b_id)),
            threading.Thread(target=run, args=("backward", b_id, a_id)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        outcomes = sorted(type(v).__name__ if v != "ok" else "ok" for v in results.values())
        assert outcomes == ["Conflict", "ok"], results
        with session_scope() as s:
            merged = s.scalars(select(Ticket.merged_into_id).where(Ticket.id.in_([a_id, b_id]))).all()
            assert sorted(m is None for m in merged) == [False, True]


def test_same_merge_twice_at_once_is_done_once(world) -> None:
    w = world
    barrier = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        try:
            with session_scope() as s:
                actor = s.get(User, w["mod"].id)
                barrier.wait(timeout=10)
                merge.merge_ticket(s, actor, w["duplicate"], w["original"])
            results.append("ok")
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(r if r == "ok" else type(r).__name__ for r in results) == ["Conflict", "ok"]
    assert mails("ticket_merged") == [w["b"].email]
    with session_scope() as s:
        assert s.scalar(select(func.count()).where(Comment.ticket_id == w["original"])) == 1


def test_the_target_preview_checks_the_same_rules(world) -> None:
    w = world
    found = as_user(w["mod"], lambda s, u: merge.find_target(s, u, w["duplicate"], "tck-1001"))
    assert (found.id, found.number, found.title) == (w["original"], "TCK-1001", "VPN drops every hour")
    for bad in ("", "'; DROP TABLE tickets; --", "TCK-99999999999", "1002"):
        with pytest.raises((NotFound, BadRequest)):
            as_user(w["mod"], lambda s, u: merge.find_target(s, u, w["duplicate"], bad))  # noqa: B023
    with pytest.raises(PermissionDenied):
        as_user(w["b"], lambda s, u: merge.find_target(s, u, w["duplicate"], "TCK-1001"))


def test_rest_merge_answers_with_the_original_and_clear_refusals(api, factory: Factory, world) -> None:
    w = world
    headers = factory.headers(w["mod"])
    url = f"/api/tickets/{w['duplicate']}/merge"
    bad = [
        ({"into_ticket_id": w["duplicate"]}, 400, "itself"),
        ({"into_ticket_number": "TCK-999999"}, 404, "No ticket with that number"),
        ({"into_ticket_number": "1001' OR 1=1 --"}, 404, "No ticket with that number"),
        ({"into_ticket_id": 1, "into_ticket_number": "TCK-1001"}, 422, "not both"),
        ({"into_ticket_id": 2**40}, 422, ""),
        ({"into_ticket_id": w["original"], "note": "x" * 2001}, 422, ""),
        ({"into_ticket_id": w["original"], "role": "admin"}, 422, ""),
    ]
    for body, code, words in bad:
        r = api.post(url, json=body, headers=headers)
        assert r.status_code == code and words in r.json()["detail"], (body, r.text)
    r = api.post(url, json={"into_ticket_number": "tck-1001", "note": "Same outage"}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == w["original"] and body["merged_into"] is None
    assert body["merged_from"] == [{"id": w["duplicate"], "number": "TCK-1002"}]
    again = api.post(url, json={"into_ticket_id": w["original"]}, headers=headers)
    assert again.status_code == 409 and "already merged into TCK-1001" in again.json()["detail"]
    dup = api.get(f"/api/tickets/{w['duplicate']}", headers=factory.headers(w["b"])).json()
    assert dup["merged_into"] == {"id": w["original"], "number": "TCK-1001"} and dup["status"] == "closed"
    assert api.post(url, json={"into_ticket_id": w["original"]}, headers=factory.headers(w["b"])).status_code == 403


def test_a_list_reads_the_merge_links_in_one_query_not_one_per_ticket(world, factory: Factory) -> None:
    from sqlalchemy import event

    w = world
    for i in range(5):
        factory.ticket(w["a"], f"Filler {i}", "x")
    do_merge(w["admin"], w["duplicate"], w["original"])
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany) -> None:
        statements.append(statement)

    with session_scope() as s:
        event.listen(s.get_bind(), "before_cursor_execute", count)
        try:
            page = tickets.list_tickets(s, s.get(User, w["admin"].id), TicketFilters())
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", count)
    by_id = {t.id: t for t in page.items}
    assert by_id[w["original"]].merged_from[0].id == w["duplicate"]
    assert by_id[w["duplicate"]].merged_into is not None
    # a fixed number, whatever the page size: no per-ticket lazy load of the links
    assert not [st for st in statements if "= tickets.merged_into_id" in st], statements
    assert len(statements) <= 12, statements


def test_the_merged_mail_can_be_answered_and_the_reply_lands_on_the_original(world) -> None:
    from tests.fakes.mails import mail as raw_mail
    from tests.integration.test_inbound_mail import delivered_and_processed

    w = world
    do_merge(w["mod"], w["duplicate"], w["original"])
    with session_scope() as s:
        sent = s.scalar(select(EmailMessage).where(EmailMessage.kind == "ticket_merged"))
        address = sent.headers["Reply-To"]
    row = delivered_and_processed(raw_mail(sender=w["b"].email, to=address, body="Still broken here."), rcpt=address)
    with session_scope() as s:
        added = s.get(Comment, row.comment_id)
        assert (added.ticket_id, added.author_id, added.body) == (w["original"], w["b"].id, "Still broken here.")


def test_a_merged_ticket_takes_no_more_replies_and_a_mailed_reply_goes_to_the_original(world) -> None:
    from tests.fakes.mails import mail as raw_mail
    from tests.integration.test_inbound_mail import delivered_and_processed
    from ticketing_app.mail import tokens

    w = world
    do_merge(w["mod"], w["duplicate"], w["original"])
    with pytest.raises(Conflict, match="merged into TCK-1001: reply there"):
        comment(w["b"], w["duplicate"], "hello?")
    # an answer to an older mail about the duplicate (its own reply address) is added to the original
    address = tokens.reply_address(w["duplicate"], w["b"].id)
    row = delivered_and_processed(raw_mail(sender=w["b"].email, to=address, body="Any news?"), rcpt=address)
    with session_scope() as s:
        added = s.get(Comment, row.comment_id)
        assert (added.ticket_id, added.body) == (w["original"], "Any news?")
