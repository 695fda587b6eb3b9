"""Upload bodies are bounded before they are read: by their declared length, or counted as they stream."""

from __future__ import annotations

import asyncio
import re

import pytest

from ticketing_app.api.limits import StreamedBodyLimit
from ticketing_app.states.tickets import rejected_message

LIMIT = 1000


def run(body_chunks: list[bytes], headers: list[tuple[bytes, bytes]], path: str = "/_upload"):
    """Send a request through StreamedBodyLimit to an app that reads the whole body; (status, bytes read)."""
    read = 0
    sent: list[dict] = []

    async def app(scope, receive, send):
        nonlocal read
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client went away")  # as Starlette's ClientDisconnect
            read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body_chunks) - 1}
        for i, chunk in enumerate(body_chunks)
    ]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    limited = StreamedBodyLimit(app, lambda: LIMIT, re.compile(r"(/.*)?/_upload/?"))
    asyncio.run(limited({"type": "http", "path": path, "headers": headers}, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    return starts[0]["status"], read


def test_a_declared_length_over_the_limit_is_refused_unread():
    status, read = run([b"x" * 2000], [(b"content-length", b"2000")])
    assert (status, read) == (413, 0)


def test_a_body_without_a_length_is_cut_off_once_past_the_limit():
    status, read = run([b"x" * 400] * 10, [])
    assert status == 413 and read <= LIMIT  # the app never saw more than the limit


def test_within_the_limit_and_other_paths_pass():
    assert run([b"x" * 400, b"x" * 400], []) == (200, 800)
    assert run([b"x" * 5000], [(b"content-length", b"5000")], path="/_event") == (200, 5000)


@pytest.mark.parametrize(
    ("rejected", "message"),
    [
        ([{"name": "big.iso", "codes": ["file-too-large"]}], "big.iso is larger than"),
        ([{"name": "empty.txt", "codes": ["file-too-small"]}], "empty.txt is empty. It was not added."),
        ([{"name": "a", "codes": ["too-many-files"]}] * 11, "Attach at most 10 files at once."),
        ([{"name": "../x\r\n.txt", "codes": ["file-invalid-type"]}], "x.txt cannot be attached."),
    ],
)
def test_the_pickers_refusals_in_words(rejected, message):
    assert message in rejected_message(rejected)
