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


PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


@pytest.fixture()
def cors_origins(monkeypatch):
    """Set CORS_ORIGINS (None: unset) for an API built afterwards."""
    from ticketing_app.config import get_settings

    def configure(value: str | None, base_url: str = "https://helpdesk.example.com") -> None:
        monkeypatch.setenv("APP_BASE_URL", base_url)
        if value is None:
            monkeypatch.delenv("CORS_ORIGINS", raising=False)
        else:
            monkeypatch.setenv("CORS_ORIGINS", value)
        get_settings.cache_clear()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_preflight_from_a_configured_origin_is_answered(cors_origins) -> None:
    cors_origins("https://intranet.example, https://helpdesk.example.com")
    with TestClient(with_reflex_cors(create_api())) as client:
        r = client.options("/api/tickets", headers={"Origin": "https://intranet.example", **PREFLIGHT})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://intranet.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]


@pytest.mark.parametrize("configured", [None, "https://intranet.example"])
def test_a_foreign_origin_gets_no_cors_answer(cors_origins, configured: str | None) -> None:
    """Reflex's default ("*") answered every origin, credentials included; now only the configured ones."""
    cors_origins(configured)
    with TestClient(with_reflex_cors(create_api())) as client:
        preflight = client.options("/api/tickets", headers={"Origin": "https://evil.example", **PREFLIGHT})
        simple = client.get("/api/openapi.json", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_cors_defaults_to_the_apps_own_origin(cors_origins) -> None:
    cors_origins(None, base_url="https://helpdesk.example.com/")
    with TestClient(with_reflex_cors(create_api())) as client:
        own = client.options("/api/tickets", headers={"Origin": "https://helpdesk.example.com", **PREFLIGHT})
        other = {"Origin": "https://helpdesk.example.com:8443", **PREFLIGHT}
        other_port = client.options("/api/tickets", headers=other)
    assert own.headers["access-control-allow-origin"] == "https://helpdesk.example.com"
    assert "access-control-allow-origin" not in other_port.headers
