"""Hostile input to the API: schemathesis against the app's own OpenAPI document, then hand-picked cases.

The fuzzing is bounded (30 examples per operation and phase, a fixed seed, derandomized, no example
database) and runs authenticated as a user and as an admin. Every answer must be below 500, and every 4xx
must be JSON {"detail": <non-empty string>}.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error

from tests.factories import Factory
from tests.security.conftest import World, build_world, reset_database
from tests.security.test_api_access_matrix import snapshot
from ticketing_app.api.app import create_api

MAX_EXAMPLES = 30
SEED = 20_251_122
# Hypothesis caches what it learns under ./.hypothesis; keep the work tree clean.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))


@schemathesis.check
def error_is_json_detail(ctx, response, case) -> None:
    """Every 4xx answer is JSON {"detail": "<a non-empty message>"} (extra keys such as `errors` allowed)."""
    if not 400 <= response.status_code < 500:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), f"{response.status_code} answered as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    detail = body.get("detail")
    assert isinstance(detail, str) and detail.strip(), f"{response.status_code} without a readable detail: {body!r}"


# Loading the document needs no database (only generated requests do), so the schema is built at import;
# schemathesis' lazy `from_fixture` loader does not run under pytest 9.
schema = schemathesis.openapi.from_asgi(
    "/api/openapi.json",
    create_api(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@pytest.fixture(scope="module")
def fuzz_world(database: str) -> World:
    """One world for all fuzzed operations (they change it as they please: that is the point)."""
    reset_database()
    return build_world(Factory())


@pytest.fixture(params=["user", "admin"])
def fuzz_headers(request, fuzz_world: World) -> dict[str, str]:
    """The role's token, sent with every generated request."""
    return fuzz_world.headers(request.param)


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the headers are the same for every input
def test_fuzz_every_operation(case, fuzz_headers):
    case.call_and_validate(headers=fuzz_headers, checks=[not_a_server_error, error_is_json_detail])


def test_the_fuzzer_sees_every_operation(api):
    """The schema the fuzzer reads lists every API operation (a route hidden from it would go unfuzzed)."""
    from tests.security.test_api_access_matrix import app_endpoints

    spec = api.get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    undocumented = {e for e in app_endpoints() if e[0] not in ("MOUNT", "HEAD")} - documented
    assert undocumented == {("GET", "/api/openapi.json"), ("GET", "/api/docs"), ("GET", "/docs/oauth2-redirect")}


# ----- explicit hostile inputs -----
# One world and one client for the whole module (built after the fuzzing above has run): these calls are
# refused or add rows of their own, and a fresh database per case would cost more than the cases themselves.


@pytest.fixture(scope="module")
def world(database: str, fuzz_world: World) -> World:
    reset_database()
    return build_world(Factory())


@pytest.fixture(scope="module")
def api(database: str):
    from fastapi.testclient import TestClient

    with TestClient(create_api()) as client:
        yield client


def _assert_clear_error(r, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json")
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


ODD_BUT_VALID = [
    "RTL: \u05d6\u05d4 \u05d8\u05e7\u05e1\u05d8 \u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c",
    "emoji 🚀🧑‍💻👩🏽‍🚒 and a flag 🇳🇱",
    "combining: e\u0301\u0301\u0301 Z\u0351\u0352\u0353\u0354\u0355\u0356 a\u0300",
    "zero width: a\u200bb\u200cc\u200dd\ufeff",
    "astral: \U0001d573\U0001d58a \U0002070e\U00020731",
    "a" * 200,
]


@pytest.mark.parametrize("text", ODD_BUT_VALID, ids=range(len(ODD_BUT_VALID)))
def test_odd_unicode_round_trips(api, world: World, text: str):
    h = world.headers("user")
    r = api.post("/api/tickets", json={"title": text[:200], "description": text}, headers=h)
    assert r.status_code == 201, r.text
    expected = unicodedata.normalize("NFC", text[:200]).strip()
    assert r.json()["title"] == expected
    got = api.get(f"/api/tickets/{r.json()['id']}", headers=h).json()
    assert got["title"] == expected and got["description"] == unicodedata.normalize("NFC", text).strip()
    r = api.post(f"/api/tickets/{r.json()['id']}/comments", json={"body": text}, headers=h)
    assert r.status_code == 201
    assert api.get(f"/api/tickets?q={text[:20]}", headers=h).status_code == 200


@pytest.mark.parametrize("escaped", [r"\ud800", r"\udfff", r"x\ud83dy", r"\udc00\ud800"])
@pytest.mark.parametrize("field", ["title", "description"])
def test_lone_surrogates_escaped_in_json_are_422(api, world: World, escaped: str, field: str):
    body = {"title": "A fine title", "description": "fine"}
    raw = json.dumps(body).replace(f'"{body[field]}"', f'"bad {escaped} text"')
    r = api.post(
        "/api/tickets", content=raw.encode(), headers={**world.headers("user"), "content-type": "application/json"}
    )
    _assert_clear_error(r, 422)


def test_lone_surrogates_everywhere_else_are_not_500(api, world: World):
    h = {**world.headers("admin"), "content-type": "application/json"}
    bodies = {
        (
            "POST",
            "/api/auth/signup",
        ): '{"name": "\\ud800", "email": "a\\udfff@example.com", "password": "\\ud800xxxxxxxx"}',
        ("POST", "/api/auth/login"): '{"email": "\\ud800@example.com", "password": "\\udfff"}',
        ("POST", "/api/auth/update-user"): '{"email": "\\ud800@example.com", "skills": ["\\udfff"]}',
        ("POST", f"/api/tickets/{world.ticket_id}/comments"): '{"body": "\\ud800"}',
        ("PATCH", f"/api/tickets/{world.ticket_id}"): '{"category": "\\ud800", "reason": "\\udfff"}',
    }
    for (method, path), raw in bodies.items():
        r = api.request(method, path, content=raw.encode(), headers=h)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert r.json()["detail"]
    for q in ("%ED%A0%80", "%FF%FE", "%C0%AF"):  # surrogate and invalid UTF-8 in the query string
        r = api.get(f"/api/tickets?q={q}", headers=h)
        assert r.status_code in (200, 422), (q, r.status_code, r.text)
        r = api.get(f"/api/auth/users?q={q}", headers=h)
        assert r.status_code in (200, 422), (q, r.status_code, r.text)


NUL_BODIES = [
    ("POST", "/api/tickets", {"title": "nul\x00title", "description": "d"}),
    ("POST", "/api/tickets", {"title": "ok title", "description": "nul\x00desc"}),
    ("POST", "/api/tickets/{tid}/comments", {"body": "nul\x00body"}),
    ("PATCH", "/api/tickets/{tid}", {"category": "bug\x00", "reason": "r"}),
    ("PATCH", "/api/tickets/{tid}", {"priority": "high", "reason": "because\x00"}),
    ("POST", "/api/auth/signup", {"name": "Nul\x00Name", "email": "nul@example.com", "password": "long enough pw"}),
    ("POST", "/api/auth/signup", {"name": "Nul", "email": "nul\x00@example.com", "password": "long enough pw"}),
    ("POST", "/api/auth/signup", {"name": "Nul", "email": "nul2@example.com", "password": "long\x00enough pw"}),
    ("POST", "/api/auth/login", {"email": "nul\x00@example.com", "password": "whatever pw"}),
    ("POST", "/api/auth/login", {"email": "nul@example.com", "password": "what\x00ever"}),
    ("POST", "/api/auth/update-user", {"email": "x\x00@example.com", "role": "user"}),
    ("POST", "/api/auth/update-user", {"email": "{user_email}", "skills": ["bill\x00ing"]}),
    ("POST", "/api/auth/update-user", {"email": "{user_email}", "skills": ["two\nlines"]}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_BODIES)
def test_nul_bytes_anywhere_in_a_body_are_refused_not_500(api, world: World, method, path, body):
    body = {
        k: v.replace("{user_email}", world.user("user").email) if isinstance(v, str) else v for k, v in body.items()
    }
    before = snapshot()
    r = api.request(method, path.format(tid=world.ticket_id), json=body, headers=world.headers("admin"))
    _assert_clear_error(r, 422)
    assert snapshot() == before


@pytest.mark.parametrize("query", ["q=a%00b", "category=bug%00", "status=open%00"])
def test_nul_bytes_in_query_strings_are_not_500(api, world: World, query: str):
    for path in ("/api/tickets", "/api/auth/users"):
        r = api.get(f"{path}?{query}", headers=world.headers("admin"))
        assert r.status_code in (200, 422), (path, query, r.status_code, r.text)
        if r.status_code == 422:
            assert r.json()["detail"]


def test_nul_bytes_in_path_and_headers_are_not_500(api, world: World):
    assert api.get("/api/tickets/1%00", headers=world.headers("user")).status_code == 422
    r = api.get("/api/auth/me", headers={"Authorization": b"Bearer abc\x00def"})
    _assert_clear_error(r, 401)


def test_one_extremely_long_word(api, world: World):
    word = "x" * 10_000
    h = world.headers("user")
    r = api.post("/api/tickets", json={"title": "Long word inside", "description": word}, headers=h)
    assert r.status_code == 201 and r.json()["description"] == word
    _assert_clear_error(api.post("/api/tickets", json={"title": word, "description": "d"}, headers=h), 422)
    r = api.post(f"/api/tickets/{r.json()['id']}/comments", json={"body": word}, headers=h)
    assert r.status_code == 201
    _assert_clear_error(api.get(f"/api/tickets?q={word}", headers=h), 422)  # q is capped at 200
    _assert_clear_error(
        api.post("/api/auth/signup", json={"name": word, "email": "w@example.com", "password": "long enough pw"}), 422
    )
    _assert_clear_error(api.post("/api/auth/login", json={"email": word, "password": word}), 422)
    _assert_clear_error(
        api.post(
            "/api/auth/update-user", json={"email": "a@example.com", "skills": [word]}, headers=world.headers("admin")
        ),
        422,
    )


def test_long_words_reach_the_offline_triage_without_trouble(world: World):
    from ticketing_app.ai.offline import OfflineTriageProvider
    from ticketing_app.ai.types import TriageRequest

    result = OfflineTriageProvider().triage(TriageRequest(title="y" * 200, description="x" * 10_000))
    assert result.priority in ("low", "medium", "high") and len(result.summary) <= 400


def test_oversized_bodies_are_413_before_parsing(api, world: World):
    h = world.headers("user")
    big = {"title": "big", "description": "x" * 300_000}
    _assert_clear_error(api.post("/api/tickets", json=big, headers=h), 413)
    _assert_clear_error(
        api.post("/api/auth/signup", json={"name": "n", "email": "e@example.com", "password": "p" * 300_000}), 413
    )
    # a lying Content-Length, and one that is not a number
    r = api.post(
        "/api/tickets", content=b"{}", headers={**h, "content-type": "application/json", "content-length": "999999999"}
    )
    assert r.status_code == 413

    # streamed without a length (chunked): counted while reading
    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    r = api.post("/api/tickets", content=chunks(), headers={**h, "content-type": "application/json"})
    _assert_clear_error(r, 413)


def test_deeply_nested_json_is_a_clear_error(api, world: World):
    h = {**world.headers("user"), "content-type": "application/json"}
    for depth in (100, 5_000, 50_000):
        raw = '{"title": "nested ok", "description": ' + "[" * depth + "]" * depth + "}"
        r = api.post("/api/tickets", content=raw.encode(), headers=h)
        assert r.status_code in (400, 413, 422), (depth, r.status_code, r.text[:200])  # 400: unparsable
        assert r.json()["detail"]
        raw = '{"title": "nested ok", "description": "d", "x": ' + '{"a":' * depth + "1" + "}" * depth + "}"
        r = api.post("/api/tickets", content=raw.encode(), headers=h)
        assert r.status_code in (400, 413, 422), (depth, r.status_code, r.text[:200])
        assert r.json()["detail"]
    r = api.post(
        "/api/auth/update-user",
        content=('{"email": "a@example.com", "skills": ' + "[" * 5000 + "]" * 5000 + "}").encode(),
        headers={**world.headers("admin"), "content-type": "application/json"},
    )
    assert r.status_code in (400, 422) and r.json()["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        "application/json-patch+json",
        "application/json\x7f",
    ],
)
def test_wrong_content_types(api, world: World, content_type):
    h = world.headers("user")
    if content_type is not None:
        h = {**h, "content-type": content_type}
    payload = b"title=Hello+there&description=form"
    r = api.post("/api/tickets", content=payload, headers=h)
    assert 400 <= r.status_code < 500 and r.json()["detail"], (content_type, r.status_code, r.text)
    r = api.post("/api/tickets", content=json.dumps({"title": "Plain JSON", "description": "d"}).encode(), headers=h)
    assert r.status_code < 500, (content_type, r.status_code, r.text)
    if r.status_code >= 400:
        assert r.json()["detail"]


def test_non_object_json_bodies(api, world: World):
    h = world.headers("user")
    for body in ([], ["title"], "a string", 42, None, True, {"title": None, "description": None}):
        r = api.post("/api/tickets", json=body, headers=h)
        _assert_clear_error(r, 422)
    for raw in (b"", b"{", b"\xff\xfe{}", b'{"title": "x", "title": "duplicate key", "description": "d"}'):
        r = api.post("/api/tickets", content=raw, headers={**h, "content-type": "application/json"})
        assert r.status_code in (201, 422), (raw, r.status_code, r.text)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=1e9",
        "limit=99999999999999999999999",
        "limit=abc",
        "limit=",
        "offset=-1",
        "offset=1000001",
        "offset=18446744073709551616",
        "offset=NaN",
        "status=deleted",
        "priority=urgent",
        "assigned=everyone",
        "order=random",
        "active=maybe",
        "q=" + "q" * 201,
        "category=" + "c" * 51,
        "unknown_param=1",
        "limit=5&limit=abc",
    ],
)
def test_query_params_out_of_range(api, world: World, query: str):
    for path in ("/api/tickets", "/api/auth/users"):
        r = api.get(f"{path}?{query}", headers=world.headers("admin"))
        if query in ("unknown_param=1",) or (
            path == "/api/auth/users"
            and query.split("=")[0] in ("status", "priority", "assigned", "order", "active", "category")
        ):
            assert r.status_code in (200, 422), (path, query, r.status_code)
            continue
        _assert_clear_error(r, 422)


@pytest.mark.parametrize(
    "path",
    [
        "/api/tickets/0",
        "/api/tickets/-1",
        "/api/tickets/99999999999999999999",
        "/api/tickets/9223372036854775808",
        "/api/tickets/1.5",
        "/api/tickets/%20",
        "/api/tickets/1e3",
    ],
)
def test_ticket_ids_out_of_range(api, world: World, path: str):
    r = api.get(path, headers=world.headers("admin"))
    assert r.status_code in (404, 422), (path, r.status_code, r.text)
    assert r.json()["detail"]
    r = api.patch(path, json={"status": "closed"}, headers=world.headers("admin"))
    assert r.status_code in (404, 422), (path, r.status_code, r.text)
    r = api.post(path + "/comments", json={"body": "x"}, headers=world.headers("admin"))
    assert r.status_code in (404, 422), (path, r.status_code, r.text)


def test_ids_out_of_range_in_bodies(api, world: World):
    h = world.headers("admin")
    for assignee in (0, -1, 2**31, 2**63, 2**64, 10**30):
        r = api.patch(f"/api/tickets/{world.ticket_id}", json={"assignee_id": assignee, "reason": "x"}, headers=h)
        assert r.status_code == 422, (assignee, r.status_code, r.text)
        assert r.json()["detail"]
