"""Benchmark: file upload throughput through POST /api/tickets/{id}/attachments, against a plain INSERT.

The endpoint is served as a separate API tier serves it (granian, `ticketing_app.api.asgi:app`, one worker:
security headers, CORS, the streamed body limit, multipart parsing, the token check, the upload throttle, type
sniffing, SHA-256, the row and its audit event in one transaction). The client sends one file at a time per
connection (httpx, keep-alive) for each file size and client count, and counts the file bytes stored.

Baseline in the same run, alternated with it in rounds: a plain INSERT of the same bytes into the same table
(`attachments`, precomputed hash, one row per transaction, one connection per client) from this process through
SQLAlchemy Core: what PostgreSQL itself costs for storing the bytes. The ratio is the endpoint's MB/s over the
INSERT's.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import harness as h

SIZES_KB = (64, 1024, 8192)
ROUNDS = 2


def _seed() -> tuple[int, int, str]:
    """A requester and a ticket of theirs; (user id, ticket id, access token)."""
    from ticketing_app.db import session_scope
    from ticketing_app.models import User
    from ticketing_app.schemas import SignupIn, TicketCreate
    from ticketing_app.security import create_access_token
    from ticketing_app.services import accounts, tickets

    with session_scope() as session:
        user, _ = accounts.signup(
            session,
            SignupIn(name="Upload Bench", email=f"upload-{time.time_ns()}@bench.example", password="bench password 1"),
        )
        created = tickets.create_ticket(
            session, session.get(User, user.id), TicketCreate(title="Files", description="x")
        )
        return user.id, created.id, create_access_token(user.id, version=user.token_version or 0)


def _clear_files() -> None:
    from sqlalchemy import text

    from ticketing_app.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM attachments"))
        conn.execute(text("DELETE FROM ticket_events WHERE kind = 'attached'"))


def _drive(clients: int, seconds: float, one: Any) -> tuple[int, float, list[float]]:
    """Run `one(client_index)` (returns bytes stored) on `clients` threads for `seconds`; (bytes, elapsed,
    per-call durations)."""
    stored = [0] * clients
    durations: list[list[float]] = [[] for _ in range(clients)]
    stop_at = time.monotonic() + seconds
    errors: list[Exception] = []

    def loop(index: int) -> None:
        try:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                stored[index] += one(index)
                durations[index].append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - re-raised below, once every thread has stopped
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return sum(stored), elapsed, [d for per in durations for d in per]


def run(
    *,
    database_url: str,
    data_dir: Path,
    log_dir: Path,
    seconds: float,
    client_levels: tuple[int, ...] = (1, 4),
    sizes_kb: tuple[int, ...] = SIZES_KB,
) -> dict[str, Any]:
    import httpx
    from sqlalchemy import insert

    from ticketing_app.db import get_engine
    from ticketing_app.models import Attachment

    user_id, ticket_id, token = _seed()
    largest_mb = max(sizes_kb) / 1024 + 1
    port = h.free_port()
    env = h.child_env(
        h.app_environment(
            database_url,
            data_dir,
            MAX_ATTACHMENT_MB=str(largest_mb),
            ATTACHMENTS_MAX_PER_USER="0",  # the throttle is still consulted on every upload; no cap on the run
            ATTACHMENTS_MAX_PER_ADDRESS="0",
        )
    )
    argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--workers", "1", "--host", "127.0.0.1"]
    child = h.start_child(
        "attachments_api", [*argv, "--port", str(port), "--no-ws", "ticketing_app.api.asgi:app"], env, log_dir=log_dir
    )
    results: dict[str, Any] = {"server": "granian, 1 worker, ticketing_app.api.asgi:app", "levels": {}}
    try:
        base = f"http://127.0.0.1:{port}"
        h.wait_http(f"{base}/api/health", timeout=60, child=child)
        url = f"{base}/api/tickets/{ticket_id}/attachments"
        engine = get_engine()
        for size_kb in sizes_kb:
            data = os.urandom(size_kb * 1024)  # incompressible: TOAST cannot shrink it
            digest = hashlib.sha256(data).hexdigest()
            for clients in client_levels:
                sessions = [
                    httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) for _ in range(clients)
                ]

                def upload(index: int, sessions: list[httpx.Client] = sessions, data: bytes = data) -> int:
                    r = sessions[index].post(url, files={"file": ("bench.bin", data, "application/octet-stream")})
                    if r.status_code != 201:
                        raise RuntimeError(f"upload answered {r.status_code}: {r.text[:200]}")
                    return len(data)

                def plain_insert(_: int, data: bytes = data, digest: str = digest) -> int:
                    with engine.begin() as conn:
                        conn.execute(
                            insert(Attachment).values(
                                ticket_id=ticket_id,
                                uploaded_by_id=user_id,
                                filename="bench.bin",
                                content_type="application/octet-stream",
                                size=len(data),
                                sha256=digest,
                                data=data,
                            )
                        )
                    return len(data)

                upload(0)  # warm-up: connection, plans
                plain_insert(0)
                # Alternated in rounds (A, B, A, B), so a neighbour's load on the machine weighs on both alike.
                api_bytes = db_bytes = 0
                api_s = db_s = 0.0
                api_times: list[float] = []
                db_times: list[float] = []
                for _ in range(ROUNDS):
                    _clear_files()
                    done, took, times = _drive(clients, seconds / ROUNDS, upload)
                    api_bytes, api_s, api_times = api_bytes + done, api_s + took, api_times + times
                    _clear_files()
                    done, took, times = _drive(clients, seconds / ROUNDS, plain_insert)
                    db_bytes, db_s, db_times = db_bytes + done, db_s + took, db_times + times
                _clear_files()
                for session in sessions:
                    session.close()
                api_mbps = api_bytes / api_s / 1e6
                db_mbps = db_bytes / db_s / 1e6
                level = {
                    "endpoint_mb_per_s": round(api_mbps, 2),
                    "endpoint_uploads": len(api_times),
                    "endpoint_latency": h.summary_ms(api_times),
                    "insert_mb_per_s": round(db_mbps, 2),
                    "insert_rows": len(db_times),
                    "insert_latency": h.summary_ms(db_times),
                    "ratio_endpoint_over_insert": h.ratio(api_mbps, db_mbps),
                }
                results["levels"][f"{size_kb}KiB_c{clients}"] = level
                h.log(
                    f"attachments {size_kb} KiB x{clients}: endpoint {level['endpoint_mb_per_s']} MB/s, "
                    f"INSERT {level['insert_mb_per_s']} MB/s, ratio {level['ratio_endpoint_over_insert']}"
                )
    finally:
        child.stop()
    return results
