"""The production ASGI app sends /api/ requests to the REST API and everything else to Reflex."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from ticketing_app.api.app import create_api
from ticketing_app.api.serving import ApiBesideReflex, with_reflex_cors


def _recorder(name: str, calls: list[tuple[str, str, str]]):
    async def app(scope, receive, send) -> None:
        calls.append((name, scope["type"], scope.get("path", "")))

    return app


@pytest.mark.parametrize(
    ("scope_type", "path", "served_by"),
    [
        ("http", "/api/tickets", "api"),
        ("http", "/api/docs", "api"),
        ("http", "/api", "reflex"),  # not under /api/: Reflex answers (its 404)
        ("http", "/apix/tickets", "reflex"),
        ("http", "/queue", "reflex"),
        ("http", "/ping", "reflex"),
        ("websocket", "/_event", "reflex"),
        ("websocket", "/api/socket", "reflex"),  # the API has no sockets
        ("lifespan", "", "reflex"),  # Reflex runs the lifespan, and with it the job loop
    ],
)
def test_requests_are_split_between_the_api_and_reflex(scope_type: str, path: str, served_by: str) -> None:
    calls: list[tuple[str, str, str]] = []
    app = ApiBesideReflex(api=_recorder("api", calls), reflex=_recorder("reflex", calls))
    scope = {"type": scope_type} if scope_type == "lifespan" else {"type": scope_type, "path": path}

    asyncio.run(app(scope, None, None))

    assert calls == [(served_by, scope_type, path)]


def test_the_api_keeps_the_cors_policy_reflex_gave_it() -> None:
    """rxconfig allows every origin (Reflex's default); a browser's preflight for the API is answered."""
    with TestClient(with_reflex_cors(create_api())) as client:
        r = client.options(
            "/api/tickets",
            headers={
                "Origin": "https://intranet.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://intranet.example"
    assert "POST" in r.headers["access-control-allow-methods"]
