"""Files through the browser's states: a form and its files are saved together or not at all; downloads are
started only for files the state's user may see."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
import reflex as rx
from sqlalchemy import func, select

from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.models import Attachment, Comment, Ticket, User
from ticketing_app.schemas import CommentCreate
from ticketing_app.services import attachments, tickets
from ticketing_app.states.tickets import NewTicketState, TicketState


@pytest.fixture(scope="module", autouse=True)
def _route_args():
    """Install the /tickets/[ticket_id] route argument, as compiling the app does."""
    from reflex.state import State
    from reflex_base import constants

    State.setup_dynamic_args({"ticket_id": constants.RouteArgType.SINGLE})


@pytest.fixture()
def small_limit(monkeypatch):
    monkeypatch.setenv("MAX_ATTACHMENT_MB", "0.001")  # about 1 KB
    get_settings.cache_clear()
    yield attachments.max_bytes()
    monkeypatch.undo()
    get_settings.cache_clear()


def make_state(cls, factory, user, **params: str):
    from reflex.istate.data import PageData

    state = cls(_reflex_internal_init=True)
    state.token = factory.token(user)
    if params:
        state.rx_router_page = PageData(params=params)
    return state


def fire(state, handler: str, *args: Any) -> Any:
    return asyncio.run(getattr(type(state), handler).fn(state, *args))


def upload_file(name: str, data: bytes) -> rx.UploadFile:
    from pathlib import Path

    return rx.UploadFile(file=io.BytesIO(data), path=Path(name), size=len(data))


def counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return (
            s.scalar(select(func.count()).select_from(Ticket)),
            s.scalar(select(func.count()).select_from(Comment)),
            s.scalar(select(func.count()).select_from(Attachment)),
        )


def test_a_new_ticket_and_its_files_are_saved_together(factory):
    user = factory.user()
    state = make_state(NewTicketState, factory, user)
    form = {"title": "Printer jams", "description": "See the photo."}
    result = fire(state, "submit", form, [upload_file("a.txt", b"one"), upload_file("b.txt", b"two")])
    assert state.error == "" and "/tickets/" in str(result)
    with session_scope() as s:
        ticket = s.scalars(select(Ticket)).one()
        names = s.scalars(select(Attachment.filename).where(Attachment.ticket_id == ticket.id)).all()
    assert sorted(names) == ["a.txt", "b.txt"]


@pytest.mark.parametrize("bad", ["empty", "too large", "too many"])
def test_a_refused_file_refuses_the_whole_form(factory, small_limit, bad):
    user = factory.user()
    ticket = factory.ticket(user)
    before = counts()

    def files() -> list[rx.UploadFile]:  # fresh ones for each form: a read file is at its end
        return {
            "empty": [upload_file("ok.txt", b"fine"), upload_file("empty.txt", b"")],
            "too large": [upload_file("ok.txt", b"fine"), upload_file("big.bin", b"x" * (small_limit + 1))],
            "too many": [upload_file(f"{n}.txt", b"x") for n in range(attachments.MAX_FILES_PER_FORM + 1)],
        }[bad]

    new = make_state(NewTicketState, factory, user)
    fire(new, "submit", {"title": "A ticket", "description": "text"}, files())
    page = make_state(TicketState, factory, user, ticket_id=str(ticket.id))
    fire(page, "reply", {"body": "a reply"}, files())
    assert counts() == before  # no ticket, no comment, no file
    for state in (new, page):
        assert {"empty": "empty.txt is empty", "too large": "big.bin is larger than", "too many": "at most 10"}[
            bad
        ] in state.error


def test_the_service_keeps_a_ticket_and_its_files_in_one_transaction(factory, small_limit):
    user = factory.user()
    from ticketing_app.errors import TooLarge
    from ticketing_app.schemas import TicketCreate

    with pytest.raises(TooLarge), session_scope() as s:
        tickets.create_ticket_with_files(
            s, s.get(User, user.id), TicketCreate(title="Title", description="d"), [("big", b"x" * (small_limit + 1))]
        )
    assert counts() == (0, 0, 0)


def test_download_starts_only_for_files_the_user_may_see(factory, api):
    requester, stranger = factory.user(), factory.user()
    moderator = factory.user("moderator")
    ticket = factory.ticket(requester)
    with session_scope() as s:
        s.get(Ticket, ticket.id).assigned_to_id = moderator.id
    with session_scope() as s:
        mine = tickets.add_comment(
            s, s.get(User, requester.id), ticket.id, CommentCreate(body="log"), files=[("log.txt", b"log")]
        )
        note = tickets.add_comment(
            s,
            s.get(User, moderator.id),
            ticket.id,
            CommentCreate(body="n", internal=True),
            files=[("note.txt", b"secret")],
        )
        public_id = s.scalar(select(Attachment.id).where(Attachment.comment_id == mine.id))
        hidden_id = s.scalar(select(Attachment.id).where(Attachment.comment_id == note.id))

    state = make_state(TicketState, factory, requester, ticket_id=str(ticket.id))
    fire(state, "load")
    assert [a.filename for c in state.comments for a in c.attachments] == ["log.txt"]  # not the note's file
    event = fire(state, "download_file", public_id)
    url = str(event)
    assert f"/api/tickets/{ticket.id}/attachments/{public_id}?key=" in url
    key = url.split("?key=", 1)[1].split('"', 1)[0].split("'", 1)[0]
    assert api.get(f"/api/tickets/{ticket.id}/attachments/{public_id}?key={key}").content == b"log"
    assert fire(state, "download_file", hidden_id) is None and state.error == "File not found."

    other = make_state(TicketState, factory, stranger, ticket_id=str(ticket.id))
    assert fire(other, "download_file", public_id) is None and other.error == "Ticket not found."

    staff = make_state(TicketState, factory, moderator, ticket_id=str(ticket.id))
    fire(staff, "load")
    assert sorted(a.filename for c in staff.comments for a in c.attachments) == ["log.txt", "note.txt"]
    assert "/attachments/" in str(fire(staff, "download_file", hidden_id))


def test_the_timeline_names_the_file():
    from datetime import UTC, datetime

    from ticketing_app.schemas import EventOut
    from ticketing_app.states.formatting import event_row

    event = EventOut(id=1, kind="attached", actor=None, data={"filename": "<b>x</b>.pdf"}, created_at=datetime.now(UTC))
    row = event_row(event)
    assert (row.what, row.detail) == ("attached a file", "<b>x</b>.pdf")  # text: rendered escaped by plain_text
