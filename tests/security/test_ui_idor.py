"""A plain user in Chromium goes after another user's ticket and the staff pages, through the production build.

Besides navigating, the test sends the Reflex events those pages would send (set_status, reply, override,
reassign, quick_status, change_role, set_active, save_skills, retry) over the page's own websocket with
someone else's ids, as a hostile client can. Nothing may change, and nothing of the other user's data may
reach the DOM or any websocket frame.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from tests.security.conftest import SocketTap, World, log_in, settle
from tests.security.test_api_access_matrix import snapshot
from ticketing_app.db import session_scope
from ticketing_app.jobs import queue
from ticketing_app.models import Comment, Job, Ticket

pytestmark = pytest.mark.browser


def _foreign(world: World) -> list[str]:
    """What Otto (other_user) must never see."""
    return [
        "Charged twice",
        "Two charges on my card",
        "STAFF-ONLY",
        "dead-job-secret-error",
        world.user("user").email,
        world.user("admin").email,
        world.user("moderator").email,
        world.user("assigned_moderator").email,
    ]


def _assert_nothing_foreign(page, tap: SocketTap, world: World) -> None:
    content, frames = page.content(), tap.text()
    for text in _foreign(world):
        assert text not in content, f"{text!r} in the DOM of {page.url}"
        assert text not in frames, f"{text!r} in a websocket frame on {page.url}"


def test_a_user_cannot_reach_another_users_ticket_or_the_staff_pages(new_page, world: World):
    from ticketing_app.states.admin import AdminOverviewState, AdminUsersState
    from ticketing_app.states.queue import QueueState
    from ticketing_app.states.tickets import TicketState

    with session_scope() as s:
        s.get(Ticket, world.ticket_id).helpful_notes = "STAFF-ONLY-NOTE"
        job_id = queue.enqueue(s, "send_email", {"email_id": 999})
        s.execute(update(Job).where(Job.id == job_id).values(status="dead", last_error="dead-job-secret-error"))
    attacker = world.user("other_user")
    page = new_page()
    tap = SocketTap(page)
    log_in(page, attacker.email)
    settle()  # the server's own job loop triages and routes the tickets; let it finish first
    before = snapshot()

    # another user's ticket: not found, and every ticket action fired at it is refused
    tid = world.ticket_id
    page.goto(f"/tickets/{tid}")
    expect(page.locator("#not-found")).to_be_visible()
    path, query = f"/tickets/{tid}", {"ticket_id": str(tid)}
    tap.forge(TicketState, "set_status", {"status": "closed"}, path, query)
    tap.forge(TicketState, "reply", {"form": {"body": "I was here"}}, path, query)
    tap.forge(TicketState, "override", {"form": {"priority": "high", "reason": "mine now"}}, path, query)
    tap.forge(TicketState, "reassign", {"form": {"assignee_id": str(attacker.id), "reason": "me"}}, path, query)
    tap.forge(TicketState, "load", {}, path, query)
    page.wait_for_timeout(1500)
    expect(page.locator("#not-found")).to_be_visible()
    _assert_nothing_foreign(page, tap, world)

    # the staff pages: not allowed, and their events fired anyway are refused
    for path, state, events in (
        (
            "/queue",
            QueueState,
            [("quick_status", {"ticket_id": tid, "status": "resolved"}), ("set_scope", {"value": "any"})],
        ),
        (
            "/admin/users",
            AdminUsersState,
            [
                ("change_role", {"user_id": attacker.id, "role": "admin"}),
                ("set_active", {"user_id": world.user("user").id, "active": False}),
                ("save_skills", {"user_id": attacker.id}),
                ("set_role_filter", {"value": "admin"}),
            ],
        ),
        ("/admin", AdminOverviewState, [("retry", {"job_id": job_id}), ("refresh", {})]),
    ):
        page.goto(path)
        expect(page.locator("#not-allowed")).to_be_visible()
        for handler, payload in events:
            tap.forge(state, handler, payload, path)
        page.wait_for_timeout(1000)
        expect(page.locator("#not-allowed")).to_be_visible()
        _assert_nothing_foreign(page, tap, world)

    assert snapshot() == before
    with session_scope() as s:
        assert s.get(Job, job_id).status == "dead"
    # the forged events did reach the server (it answered them), so the refusals above are real
    assert tap.text().count("Ticket not found.") >= 1

    # control: the same forged event on the attacker's own ticket does work, so forging reaches the handlers
    own = world.other_ticket_id
    page.goto(f"/tickets/{own}")
    expect(page.get_by_text("Only Otto may read this.")).to_be_visible()
    tap.forge(
        TicketState, "reply", {"form": {"body": "forged but allowed"}}, f"/tickets/{own}", {"ticket_id": str(own)}
    )
    expect(page.get_by_text("forged but allowed")).to_be_visible()
    with session_scope() as s:
        assert [c.body for c in s.scalars(select(Comment))] == ["forged but allowed"]
