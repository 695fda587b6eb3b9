"""Baseline (a) for intake: the smallest ASGI endpoint doing what intake must at least do.

Served by the same server stack as the app in production (granian, ASGI interface, one worker: what
`reflex run --env prod` uses without Redis). POST /insert reads the JSON body and runs one INSERT into the
same `tickets` table of the same database, on the event loop, through the pool the app's intake uses
(ticketing_app/asyncdb.py: one autocommit round trip, same size). No framework, auth, validation, audit
event, job row or NOTIFY: the intake/baseline ratio is what all of that costs.

Until the third round this baseline ran the INSERT through the app's SQLAlchemy engine in a worker thread
(pre-ping, BEGIN, INSERT, COMMIT). When intake moved to the autocommit pool the baseline moved with it, so
the ratio still compares the app with the cheapest way to do its one write (bench/README.md).

    python -m granian --interface asgi --workers 1 --port 8001 bench.baseline_app:app
Environment: DATABASE_URL (the app's setting), BENCH_USER_ID (the ticket's requester).
"""

from __future__ import annotations

import json
import os

from ticketing_app.db import get_autocommit_pool

_INSERT = (
    "INSERT INTO tickets (title, description, created_by_id, required_skills) "
    "VALUES (%(title)s, %(description)s, %(user_id)s, '{}') RETURNING id"
)

_USER_ID = int(os.environ.get("BENCH_USER_ID", "0"))


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await get_autocommit_pool().fetch_one("SELECT 1", {})  # connect (and start the embedded server)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                get_autocommit_pool().close()
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
        params = {"title": data["title"], "description": data["description"], "user_id": _USER_ID}
        status, payload = 201, {"id": (await get_autocommit_pool().fetch_one(_INSERT, params)).id}
    else:
        status, payload = 404, {"detail": "not found"}
    out = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": out})
