"""Baseline (a) for intake: the smallest ASGI endpoint doing what intake must at least do.

Served by the same server stack as the app in production (granian, ASGI interface, one worker: what
`reflex run --env prod` uses without Redis). POST /insert reads the JSON body and runs one INSERT into the
same `tickets` table of the same database, through the app's own engine (same pool settings), in a worker
thread as FastAPI runs sync endpoints. No framework, auth, validation, ORM, audit event or job row: the
intake/baseline ratio is what all of that costs.

    python -m granian --interface asgi --workers 1 --port 8001 bench.baseline_app:app
Environment: DATABASE_URL (the app's setting), BENCH_USER_ID (the ticket's requester).
"""

from __future__ import annotations

import json
import os

from anyio import to_thread
from sqlalchemy import text

from ticketing_app.db import get_engine

_INSERT = text(
    "INSERT INTO tickets (title, description, created_by_id, required_skills) "
    "VALUES (:title, :description, :user_id, '{}') RETURNING id"
)


def _insert(title: str, description: str, user_id: int) -> int:
    with get_engine().begin() as conn:
        return conn.execute(_INSERT, {"title": title, "description": description, "user_id": user_id}).scalar_one()


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await to_thread.run_sync(get_engine)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                get_engine().dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/health":
        status, payload = 200, {"status": "ok"}
    elif scope["path"] == "/insert" and scope["method"] == "POST":
        data = json.loads(body)
        ticket_id = await to_thread.run_sync(_insert, data["title"], data["description"],
                                             int(os.environ["BENCH_USER_ID"]))
        status, payload = 201, {"id": ticket_id}
    else:
        status, payload = 404, {"detail": "not found"}
    out = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
