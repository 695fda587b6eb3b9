"""Files on tickets over REST: upload, download, limits, hostile names, who sees what, and the ticket JSON."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from ticketing_app.config import get_settings
from ticketing_app.db import session_scope
from ticketing_app.models import Attachment, Comment, Ticket, TicketEvent, User
from ticketing_app.schemas import CommentCreate
from ticketing_app.services import attachments, tickets

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture()
def settings(monkeypatch):
    """Change settings for one test (through the environment, as in production)."""

    def change(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture()
def people(factory):
    factory.admin()
    requester = factory.user(name="Rita Requester")
    moderator = factory.user("moderator", skills=["billing"], name="Moe Assigned")
    bystander = factory.user("moderator", skills=["billing"], name="Mia Bystander")
    other = factory.user(name="Otto Other")
    ticket = factory.ticket(requester, "Invoice is wrong", "See the attached invoice.")
    with session_scope() as s:
        s.get(Ticket, ticket.id).assigned_to_id = moderator.id
    with session_scope() as s:
        admin = s.scalar(select(User).where(User.email == "admin@example.com"))
    return {
        "requester": requester,
        "moderator": moderator,
        "bystander": bystander,
        "other": other,
        "admin": admin,
        "ticket": ticket,
    }


def upload(api, factory, user, ticket_id, name, data, mime="application/octet-stream", **form):
    return api.post(
        f"/api/tickets/{ticket_id}/attachments",
        files={"file": (name, data, mime)},
        data={k: str(v) for k, v in form.items()},
        headers=factory.headers(user),
    )


def download(api, factory, user, ticket_id, attachment_id):
    return api.get(f"/api/tickets/{ticket_id}/attachments/{attachment_id}", headers=factory.headers(user))


def test_upload_answers_201_with_the_contract_and_the_bytes_round_trip(api, factory, people):
    t = people["ticket"]
    r = upload(api, factory, people["requester"], t.id, "invoice.pdf", PDF, "application/pdf")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "filename", "content_type", "size", "created_at"}
    assert body["filename"] == "invoice.pdf" and body["content_type"] == "application/pdf"
    assert body["size"] == len(PDF)
    got = download(api, factory, people["requester"], t.id, body["id"])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "invoice.pdf" in got.headers["content-disposition"]
    with session_scope() as s:
        stored = s.get(Attachment, body["id"])
        assert stored.sha256 == hashlib.sha256(PDF).hexdigest() and stored.uploaded_by_id == people["requester"].id
        event = s.scalar(select(TicketEvent).where(TicketEvent.kind == "attached"))
        assert event.data == {
            "attachment_id": body["id"],
            "filename": "invoice.pdf",
            "comment_id": None,
            "internal": False,
        }


def test_type_is_sniffed_from_the_content_when_the_name_lies(api, factory, people):
    t, requester = people["ticket"], people["requester"]
    r = upload(api, factory, requester, t.id, "holiday.pdf", PNG, "application/pdf")
    assert r.status_code == 201 and r.json()["content_type"] == "image/png"
    # An HTML page or an SVG named as a picture is stored as what it is and never served as something to render.
    for name, data, sniffed in (("cat.png", HTML, "text/html"), ("logo.png", SVG, "image/svg+xml")):
        r = upload(api, factory, requester, t.id, name, data, "image/png")
        assert r.status_code == 201 and r.json()["content_type"] == sniffed
        got = download(api, factory, requester, t.id, r.json()["id"])
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["content-disposition"].startswith("attachment;")
        assert got.content == data
    r = upload(api, factory, requester, t.id, "notes.exe", "plain words, ünïcode".encode(), "application/x-msdownload")
    assert r.json()["content_type"] == "text/plain"
    got = download(api, factory, requester, t.id, r.json()["id"])
    assert got.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\evil.bat", "evil.bat"),
        ('quo"te.txt', "quo%22te.txt"),  # as httpx (and browsers) send a quote in a multipart name
        ("line\r\nSet-Cookie: a=b.txt", "line%0D%0ASet-Cookie: a=b.txt"),
        ("Grüße 日本語.txt", "Grüße 日本語.txt"),
        ("semi;colon%20name.txt", "semi;colon%20name.txt"),
        ("...", "file"),
    ],
)
def test_hostile_filenames_are_stored_safely_and_sent_in_a_safe_header(api, factory, people, given, stored):
    t, requester = people["ticket"], people["requester"]
    r = upload(api, factory, requester, t.id, given, b"content", "text/plain")
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == stored
    got = download(api, factory, requester, t.id, r.json()["id"])
    header = got.headers["content-disposition"]
    assert (
        "\r" not in header
        and "\n" not in header
        and "set-cookie" not in {k.lower() for k in got.headers if k != "content-disposition"}
    )
    fallback, _, extended = header.partition("; filename*=UTF-8''")
    assert fallback.startswith('attachment; filename="') and fallback.endswith('"')
    assert (
        fallback[len('attachment; filename="') : -1].isascii()
        and '"' not in fallback[len('attachment; filename="') : -1]
    )
    assert unquote(extended) == stored
    assert all(c.isascii() and c not in ' ";\\' for c in extended)


def test_safe_filename_itself():
    assert attachments.safe_filename('quo"te.txt') == "quo'te.txt"
    assert attachments.safe_filename("a\r\nb\x00c\u2028d.txt") == "abcd.txt"
    assert attachments.safe_filename("x" * 300 + ".pdf").endswith(".pdf")
    assert len(attachments.safe_filename("x" * 300 + ".pdf")) == 255
    header = attachments.content_disposition('a"b\\c;d é.txt')
    assert header == "attachment; filename=\"a_b_c_d _.txt\"; filename*=UTF-8''a%22b%5Cc%3Bd%20%C3%A9.txt"


def test_413_above_the_limit_and_422_for_an_empty_file(api, factory, people, settings):
    settings(max_attachment_mb=0.01)  # about 10 KB
    t, requester = people["ticket"], people["requester"]
    limit = attachments.max_bytes()
    assert upload(api, factory, requester, t.id, "fits.bin", b"x" * limit).status_code == 201
    just_over = upload(api, factory, requester, t.id, "over.bin", b"x" * (limit + 1))
    assert just_over.status_code == 413 and "larger than" in just_over.json()["detail"]
    far_over = upload(api, factory, requester, t.id, "huge.bin", b"x" * (limit * 20))  # refused by its length
    assert far_over.status_code == 413 and "too large" in far_over.json()["detail"]
    empty = upload(api, factory, requester, t.id, "empty.txt", b"")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    with session_scope() as s:
        assert s.query(Attachment).count() == 1


def test_a_streamed_upload_without_a_length_is_cut_off_at_the_limit(api, factory, people, settings):
    settings(max_attachment_mb=0.01)
    t, requester = people["ticket"], people["requester"]
    sent = 0

    def chunks():
        nonlocal sent
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="s.bin"\r\n\r\n'
        for _ in range(1000):  # 1000 x 4 KiB: far past the limit; the server must stop reading early
            sent += 1
            yield b"y" * 4096
        yield b"\r\n" + boundary + b"--\r\n"

    headers = {**factory.headers(requester), "content-type": "multipart/form-data; boundary=b0undary"}
    r = api.post(f"/api/tickets/{t.id}/attachments", content=chunks(), headers=headers)
    assert r.status_code == 413
    with session_scope() as s:
        assert s.query(Attachment).count() == 0


def test_access_for_every_role(api, factory, people):
    t = people["ticket"]
    public = upload(api, factory, people["requester"], t.id, "a.txt", b"public file").json()["id"]
    note = api.post(
        f"/api/tickets/{t.id}/comments",
        json={"body": "internal", "internal": True},
        headers=factory.headers(people["moderator"]),
    ).json()["id"]
    hidden = upload(api, factory, people["moderator"], t.id, "n.txt", b"staff only", comment_id=note)
    assert hidden.status_code == 201, hidden.text
    hidden_id = hidden.json()["id"]
    expected = {
        "requester": (200, 404),
        "other": (404, 404),
        "moderator": (200, 200),
        "bystander": (404, 404),
        "admin": (200, 200),
    }
    for role, (public_status, hidden_status) in expected.items():
        assert download(api, factory, people[role], t.id, public).status_code == public_status, role
        r = download(api, factory, people[role], t.id, hidden_id)
        assert r.status_code == hidden_status, role
        if hidden_status == 404:
            assert b"staff only" not in r.content
            assert r.json()["detail"] in ("Ticket not found.", "File not found.")
    assert api.get(f"/api/tickets/{t.id}/attachments/{public}").status_code == 401
    assert download(api, factory, people["requester"], t.id, 2**63).status_code in (404, 422)
    # Uploading: the same people who see the ticket; nobody else learns that it exists.
    for role, status in {"requester": 201, "other": 404, "moderator": 201, "bystander": 404, "admin": 201}.items():
        assert upload(api, factory, people[role], t.id, "x.txt", b"x").status_code == status, role


def test_comment_id_must_be_one_of_my_own_comments_on_that_ticket(api, factory, people):
    t, requester = people["ticket"], people["requester"]
    mine = api.post(f"/api/tickets/{t.id}/comments", json={"body": "see file"}, headers=factory.headers(requester))
    theirs = api.post(
        f"/api/tickets/{t.id}/comments", json={"body": "reply"}, headers=factory.headers(people["moderator"])
    )
    other_ticket = factory.ticket(people["other"], "Other", "x")
    with session_scope() as s:
        foreign = tickets.add_comment(s, s.get(User, people["other"].id), other_ticket.id, CommentCreate(body="mine"))
        foreign_id = foreign.id
    for bad in (theirs.json()["id"], foreign_id, 999999):
        r = upload(api, factory, requester, t.id, "x.txt", b"x", comment_id=bad)
        assert r.status_code == 422 and r.json()["field"] == "comment_id", r.text
    r = upload(api, factory, requester, t.id, "x.txt", b"x", comment_id=mine.json()["id"])
    assert r.status_code == 201
    with session_scope() as s:
        assert s.get(Attachment, r.json()["id"]).comment_id == mine.json()["id"]


def test_ticket_and_comment_json_carry_their_files(api, factory, people):
    t, requester, moderator = people["ticket"], people["requester"], people["moderator"]
    on_ticket = upload(api, factory, requester, t.id, "screenshot.png", PNG).json()
    reply = api.post(f"/api/tickets/{t.id}/comments", json={"body": "log"}, headers=factory.headers(requester)).json()
    assert reply["attachments"] == [] and reply["via"] == "api"
    on_reply = upload(api, factory, requester, t.id, "log.txt", b"log line", comment_id=reply["id"]).json()
    note = api.post(
        f"/api/tickets/{t.id}/comments", json={"body": "n", "internal": True}, headers=factory.headers(moderator)
    ).json()
    on_note = upload(api, factory, moderator, t.id, "secret.txt", b"s", comment_id=note["id"]).json()

    detail = api.get(f"/api/tickets/{t.id}", headers=factory.headers(requester)).json()
    assert detail["attachments"] == [on_ticket]
    comments = {c["id"]: c for c in detail["comments"]}
    assert comments[reply["id"]]["attachments"] == [on_reply] and comments[reply["id"]]["via"] == "api"
    assert note["id"] not in comments
    assert "secret.txt" not in str(detail)  # neither the note's file nor its timeline line

    staff = api.get(f"/api/tickets/{t.id}", headers=factory.headers(moderator)).json()
    assert {c["id"]: c["attachments"] for c in staff["comments"]}[note["id"]] == [on_note]
    assert any(e["kind"] == "attached" and e["data"]["filename"] == "secret.txt" for e in staff["events"])

    listed = api.get("/api/tickets", headers=factory.headers(requester)).json()["items"]
    assert listed[0]["attachments"] == [on_ticket]
    patched = api.patch(f"/api/tickets/{t.id}", json={"status": "in_progress"}, headers=factory.headers(moderator))
    assert patched.status_code == 200 and patched.json()["attachments"] == [on_ticket]
    created = api.post(
        "/api/tickets", json={"title": "New one", "description": "d"}, headers=factory.headers(requester)
    )
    assert created.json()["attachments"] == []


def test_the_list_reads_no_bytes_and_one_query_for_all_files(api, factory, people):
    from sqlalchemy import event

    from ticketing_app.db import get_engine

    requester = people["requester"]
    for n in range(3):
        ticket = factory.ticket(requester, f"Ticket {n}", "d")
        upload(api, factory, requester, ticket.id, f"f{n}.bin", b"z" * 1000)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", seen)
    try:
        items = api.get("/api/tickets", headers=factory.headers(requester)).json()["items"]
    finally:
        event.remove(get_engine(), "before_cursor_execute", seen)
    assert sum(len(i["attachments"]) for i in items) == 3
    touching = [s for s in statements if "attachments" in s]
    assert len(touching) == 1 and "attachments.data" not in touching[0]


def test_download_keys_are_bound_to_user_file_and_time(api, factory, people):
    t, requester = people["ticket"], people["requester"]
    first = upload(api, factory, requester, t.id, "a.txt", b"first").json()["id"]
    second = upload(api, factory, requester, t.id, "b.txt", b"second").json()["id"]
    with session_scope() as s:
        user = s.get(User, requester.id)
        key = attachments.download_key(first, user)
        stale = attachments.download_key(first, user, now=0)
        other_key = attachments.download_key(first, s.get(User, people["other"].id))
    url = f"/api/tickets/{t.id}/attachments"
    assert api.get(f"{url}/{first}?key={key}").content == b"first"
    assert api.get(f"{url}/{second}?key={key}").status_code == 401  # another file
    assert api.get(f"{url}/{first}?key={stale}").status_code == 401  # expired
    assert api.get(f"{url}/{first}?key={key[:-2]}xx").status_code == 401  # altered
    assert api.get(f"{url}/{first}?key={other_key}").status_code == 404  # a genuine key of someone who may not see it
    api.post(
        "/api/auth/change-password",
        json={"current_password": "correct horse battery", "new_password": "another long one"},
        headers=factory.headers(requester),
    )
    assert api.get(f"{url}/{first}?key={key}").status_code == 401  # the user's tokens were revoked


def test_internal_note_files_stay_internal_in_the_service(factory, people):
    t, moderator, requester = people["ticket"], people["moderator"], people["requester"]
    with session_scope() as s:
        actor = s.get(User, moderator.id)
        note = tickets.add_comment(s, actor, t.id, CommentCreate(body="n", internal=True))
        file_id = attachments.upload(s, actor, t.id, filename="n.txt", data=b"n", comment_id=note.id).id
    with session_scope() as s:
        detail = tickets.get_ticket_detail(s, s.get(User, requester.id), t.id)
        assert all(e.kind != "attached" for e in detail.events)
        with pytest.raises(Exception, match="not found"):
            attachments.get_for_download(s, s.get(User, requester.id), t.id, file_id)
        assert s.get(Comment, note.id).internal


def test_uploads_are_throttled_per_user(api, factory, people, settings):
    settings(attachments_max_per_user=2)
    t, requester = people["ticket"], people["requester"]
    assert [upload(api, factory, requester, t.id, "a.txt", b"a").status_code for _ in range(2)] == [201, 201]
    r = upload(api, factory, requester, t.id, "a.txt", b"a")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "uploading files too quickly" in r.json()["detail"]
    assert upload(api, factory, people["moderator"], t.id, "m.txt", b"m").status_code == 201  # someone else


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB", **save: object) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, "red").save(out, format=fmt, **save)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mode", "kind"),
    [
        ("PNG", "RGB", "image/jpeg"),
        ("PNG", "RGBA", "image/png"),
        ("JPEG", "RGB", "image/jpeg"),
        ("GIF", "P", None),
        ("WEBP", "RGB", "image/jpeg"),
    ],
)
def test_images_get_a_small_reencoded_preview(factory, people, fmt, mode, kind):
    from io import BytesIO

    from PIL import Image

    t, requester = people["ticket"], people["requester"]
    data = _image(fmt, (2000, 1000), mode)
    with session_scope() as s:
        stored = attachments.store(s, s.get(User, requester.id), s.get(Ticket, t.id), filename="big", data=data)
        file_id = stored.id
    with session_scope() as s:
        (found_kind, preview) = attachments.previews(s, [file_id])[file_id]
    with Image.open(BytesIO(preview)) as shown:
        assert shown.size == (480, 240)
        assert not shown.info.get("exif")
    assert found_kind == (kind or found_kind)


def test_no_preview_for_non_images_svg_bombs_or_broken_files(factory, people):
    t, requester = people["ticket"], people["requester"]
    # A PNG header claiming 100,000 x 100,000 pixels: never decoded.
    bomb = _image("PNG", (1, 1))
    bomb = bomb[:16] + (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big") + bomb[24:]
    for name, data in (("a.svg", SVG), ("bomb.png", bomb), ("cut.png", PNG), ("x.pdf", PDF)):
        with session_scope() as s:
            stored = attachments.store(s, s.get(User, requester.id), s.get(Ticket, t.id), filename=name, data=data)
            assert stored.preview is None, name
