"""Refuse oversized request bodies before they are read into memory."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 256 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # a file part's boundary and headers, and a few small form fields


class BodySizeLimit:
    """ASGI middleware: 413 for /api requests whose body exceeds `max_bytes` (declared or streamed).

    Paths matching one of `larger` (file uploads) get that entry's limit instead, read at each request, and are
    streamed through counted, never buffered here (StreamedBodyLimit).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        prefix: str = "/api",
        larger: Sequence[tuple[re.Pattern[str], Callable[[], int]]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.larger = [StreamedBodyLimit(app, limit, path) for path, limit in larger]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        for upload in self.larger:
            if upload.path.fullmatch(scope["path"]):
                await upload(scope, receive, send)
                return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send)
            return
        if declared is None:  # streamed (chunked): read it here, so an oversized one is a clean 413
            await self._buffered(scope, receive, send)
            return
        # A declared length within the limit needs no counting: the server reads exactly that many bytes
        # as the body (HTTP framing), so the app cannot be handed more. (Counting every chunk through
        # wrapped receive/send callables costs intake CPU for nothing; see bench/README.md.)
        await self.app(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a body of unknown length up to the limit, then hand it to the app in one piece."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"The request body is too large (limit {self.max_bytes // 1024} KiB)."})
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


class StreamedBodyLimit:
    """ASGI middleware for uploads to paths matching `path`: 413 when the declared length exceeds `limit()`,
    without reading the body; a body sent without a length is counted as it streams to the app, and the
    request is ended with a 413 as soon as it passes the limit. Nothing is buffered here."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int], path: re.Pattern[str]) -> None:
        self.app = app
        self.limit = limit
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.path.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _reject(send, limit)
            return
        size = 0
        started = rejected = False

        async def counted() -> Message:
            nonlocal size, rejected
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    if not started:
                        await _reject(send, limit)
                    rejected = True
                    return {"type": "http.disconnect"}  # the app stops reading (ClientDisconnect)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the 413 is out; whatever the app answers to the cut body is dropped
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not rejected:
                raise


async def _reject(send: Send, limit: int) -> None:
    megabytes = limit / (1024 * 1024)
    body = json.dumps({"detail": f"The upload is too large (limit about {megabytes:.3g} MB)."})
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})
