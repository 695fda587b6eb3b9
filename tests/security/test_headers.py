"""Security headers on every response: /api (wrapped as in production) and the pages beside it.

The app's ASGI stack is built as ticketing_app.py builds it (SecurityHeaders around ApiBesideReflex), with a
stand-in for Reflex that serves a built page, gzip-compressed as Reflex's static files are.
"""

from __future__ import annotations

import base64
import gzip
import hashlib

import pytest
from fastapi.testclient import TestClient

from ticketing_app.api.app import create_api
from ticketing_app.api.headers import SecurityHeaders, content_security_policy, inline_script_hashes
from ticketing_app.api.serving import ApiBesideReflex, with_reflex_cors
from ticketing_app.config import Settings, get_settings

THEME = b'const theme = localStorage.getItem("theme") || "system";'
PAGE = (
    b"<!DOCTYPE html><html><head><script>" + THEME + b"</script>"
    b'<script type="module" src="/assets/app.js"></script>'
    b'<script type="module" async="">import "/assets/manifest.js";</script>'
    b"</head><body><div id=root></div></body></html>"
)


def sha(text: bytes) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text).digest()).decode()}'"


async def fake_reflex(scope, receive, send) -> None:
    """Reflex's frontend: the page (gzip when asked) for /login, a 304 for /cached."""
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/cached":
        await send({"type": "http.response.start", "status": 304, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b""})
        return
    gz = b"gzip" in dict(scope["headers"]).get(b"accept-encoding", b"")
    body = gzip.compress(PAGE) if gz else PAGE
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if gz:
        headers.append((b"content-encoding", b"gzip"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    half = len(body) // 2  # in two chunks, as a file response may send it
    await send({"type": "http.response.body", "body": body[:half], "more_body": True})
    await send({"type": "http.response.body", "body": body[half:]})


def production_stack() -> SecurityHeaders:
    return SecurityHeaders(ApiBesideReflex(api=with_reflex_cors(create_api()), reflex=fake_reflex))


@pytest.fixture()
def app_client(clean_db):
    with TestClient(production_stack()) as client:
        yield client


COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def assert_security_headers(response) -> dict[str, str]:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    policy = dict([*part.split(" ", 1), ""][:2] for part in response.headers["content-security-policy"].split("; "))
    assert policy["frame-ancestors"] == "'none'"
    assert policy["img-src"] == "'self' data:"
    assert policy["object-src"] == "'none'"
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "strict-transport-security" not in response.headers  # development
    return policy


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/health", {}),
        ("GET", "/api/openapi.json", {}),
        ("GET", "/api/tickets", {}),  # 401
        ("POST", "/api/auth/login", {"json": {"email": "nobody@example.com", "password": "wrong-password-1"}}),
        ("POST", "/api/tickets", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("GET", "/api/no-such-route", {}),
    ],
)
def test_rest_responses_carry_the_security_headers(app_client, method: str, path: str, kwargs: dict):
    response = app_client.request(method, path, **kwargs)
    assert response.status_code < 500, response.text
    assert_security_headers(response)


def test_the_docs_page_runs_its_own_inline_script_and_no_other(app_client):
    response = app_client.get("/api/docs")
    assert response.status_code == 200
    policy = assert_security_headers(response)
    hashes = inline_script_hashes(response.content)
    assert hashes and all(h in policy["script-src"] for h in hashes)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_a_page_gets_the_hashes_of_exactly_its_inline_scripts(app_client, encoding: str):
    response = app_client.get("/login", headers={"Accept-Encoding": encoding})
    assert response.status_code == 200 and response.content == PAGE  # the body passes unchanged
    policy = assert_security_headers(response)
    sources = policy["script-src"].split()
    assert sources[:2] == ["'self'", "'unsafe-eval'"]
    assert sorted(sources[2:]) == sorted([sha(THEME), sha(b'import "/assets/manifest.js";')])
    settings = get_settings()
    assert f"ws://{settings.reflex_api_url.split('://', 1)[1]}" in policy["connect-src"]


def test_a_not_modified_page_keeps_the_policy_it_was_cached_with(app_client):
    response = app_client.get("/cached")
    assert response.status_code == 304
    assert "content-security-policy" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"


def test_hsts_only_in_production():
    dev = Settings(app_env="development", _env_file=None)
    prod = Settings(
        app_env="production",
        jwt_secret="k3Jd9-aQ2mZx81LpW0vNcT7yRb4HsE6u",
        database_url="postgresql://db/helpdesk",
        _env_file=None,
    )
    with TestClient(SecurityHeaders(fake_reflex, settings=prod)) as client:
        assert client.get("/login").headers["strict-transport-security"].startswith("max-age=63072000")
    with TestClient(SecurityHeaders(fake_reflex, settings=dev)) as client:
        assert "strict-transport-security" not in client.get("/login").headers


def test_the_event_socket_of_an_https_deployment_is_wss():
    settings = Settings(app_base_url="https://helpdesk.example.com", _env_file=None)
    policy = content_security_policy(settings)
    assert "connect-src 'self' https://helpdesk.example.com wss://helpdesk.example.com;" in policy


def test_a_page_sent_by_path_is_hashed_from_its_file(tmp_path):
    """granian offers the pathsend extension: Starlette then sends a static page by its path, not its body."""
    import asyncio

    page = tmp_path / "login.html.gz"
    page.write_bytes(gzip.compress(PAGE))
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(page)})

    async def send(message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/login", "headers": [], "extensions": {"http.response.pathsend": {}}}
    asyncio.run(SecurityHeaders(app)(scope, None, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    policy = dict(sent[0]["headers"])[b"content-security-policy"].decode()
    assert sha(THEME) in policy and sha(b'import "/assets/manifest.js";') in policy


def test_a_file_download_keeps_its_own_stricter_policy(app_client, factory):
    user = factory.user()
    ticket = factory.ticket(user)
    headers = factory.headers(user)
    page = b"<html><script>alert(document.cookie)</script></html>"
    r = app_client.post(
        f"/api/tickets/{ticket.id}/attachments", files={"file": ("x.html", page, "text/html")}, headers=headers
    )
    assert r.status_code == 201, r.text
    download = app_client.get(f"/api/tickets/{ticket.id}/attachments/{r.json()['id']}", headers=headers)
    assert download.content == page
    assert download.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["x-frame-options"] == "DENY"
