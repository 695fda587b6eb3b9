"""The REST API over HTTP (httpx through Starlette's TestClient against the real ASGI app)."""

import pytest

from tests.factories import PASSWORD


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signup(api, email="sam@example.com", name="Sam"):
    r = api.post("/api/auth/signup", json={"name": name, "email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()


def test_signup_login_me(api):
    body = signup(api)
    assert set(body) == {"user", "access_token", "token_type"} and body["token_type"] == "bearer"
    assert "password" not in str(body) and "hash" not in str(body)
    r = api.post("/api/auth/login", json={"email": "SAM@example.com", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["id"] == body["user"]["id"]
    me = api.get("/api/auth/me", headers=auth(r.json()["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "sam@example.com"


def test_errors_are_json_with_the_right_status(api):
    signup(api)
    r = api.post("/api/auth/signup", json={"name": "Sam", "email": "sam@example.com", "password": PASSWORD})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    r = api.post("/api/auth/login", json={"email": "sam@example.com", "password": "nope nope"})
    assert r.status_code == 401 and r.json() == {"detail": "Wrong e-mail or password."}
    assert api.get("/api/auth/me").status_code == 401
    assert api.get("/api/auth/me", headers=auth("garbage")).status_code == 401
    r = api.post("/api/auth/signup", json={"name": "X", "email": "bad", "password": "short"})
    assert r.status_code == 422
    assert "email" in r.json()["detail"] and "password" in r.json()["detail"]


def test_login_throttle_answers_429_with_retry_after(api):
    signup(api)
    for _ in range(5):
        assert api.post("/api/auth/login", json={"email": "sam@example.com", "password": "x" * 9}).status_code == 401
    r = api.post("/api/auth/login", json={"email": "sam@example.com", "password": PASSWORD})
    assert r.status_code == 429
    assert 0 < int(r.headers["Retry-After"]) <= 900 and "Try again in" in r.json()["detail"]


def test_ticket_lifecycle_over_http(api, factory):
    factory.admin()
    moderator = factory.user("moderator", skills=["billing"])
    token = signup(api)["access_token"]
    r = api.post("/api/tickets", json={"title": "Charged twice", "description": "Two charges."}, headers=auth(token))
    assert r.status_code == 201
    ticket = r.json()
    expected_keys = {
        "id",
        "number",
        "title",
        "description",
        "status",
        "priority",
        "category",
        "required_skills",
        "summary",
        "helpful_notes",
        "triage_status",
        "triage_provider",
        "assigned_to",
        "assignment_reason",
        "created_by",
        "created_at",
        "updated_at",
    }
    assert expected_keys <= set(ticket)
    assert ticket["number"].startswith("TCK-") and ticket["status"] == "open"
    assert ticket["triage_status"] == "pending" and ticket["priority"] is None
    assert ticket["created_by"]["email"] == "sam@example.com" and "password_hash" not in str(ticket["created_by"])

    listed = api.get("/api/tickets", headers=auth(token)).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == ticket["id"]
    detail = api.get(f"/api/tickets/{ticket['id']}", headers=auth(token)).json()
    assert detail["events"][0]["kind"] == "created" and detail["comments"] == []

    r = api.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "Any news?"}, headers=auth(token))
    assert r.status_code == 201 and r.json()["body"] == "Any news?" and r.json()["internal"] is False
    r = api.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "x", "internal": True}, headers=auth(token))
    assert r.status_code == 403

    r = api.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"}, headers=auth(token))
    assert r.status_code == 403
    mod_headers = factory.headers(moderator)
    assert api.get(f"/api/tickets/{ticket['id']}", headers=mod_headers).status_code == 404  # not assigned yet


def test_list_filters_search_and_pagination(api, factory):
    user = factory.user()
    for i in range(25):
        factory.ticket(user, f"Issue number {i}", "printer" if i % 5 == 0 else "other")
    h = factory.headers(user)
    page1 = api.get("/api/tickets?limit=10", headers=h).json()
    page3 = api.get("/api/tickets?limit=10&offset=20", headers=h).json()
    assert page1["total"] == 25 and len(page1["items"]) == 10 and len(page3["items"]) == 5
    assert page1["items"][0]["title"] == "Issue number 24"  # newest first
    assert api.get("/api/tickets?q=printer", headers=h).json()["total"] == 5
    assert api.get("/api/tickets?q=TCK-1003", headers=h).json()["items"][0]["title"] == "Issue number 2"
    assert api.get("/api/tickets?status=resolved", headers=h).json()["total"] == 0
    assert api.get("/api/tickets?status=bogus", headers=h).status_code == 422
    assert api.get("/api/tickets?limit=1000", headers=h).status_code == 422
    assert api.get("/api/tickets?q=%25", headers=h).json()["total"] == 0


def test_other_peoples_tickets_answer_404_not_403(api, factory):
    alice, bob = factory.user(), factory.user()
    ticket = factory.ticket(alice)
    h = factory.headers(bob)
    assert api.get(f"/api/tickets/{ticket.id}", headers=h).status_code == 404
    assert api.patch(f"/api/tickets/{ticket.id}", json={"status": "open"}, headers=h).status_code == 404
    assert api.post(f"/api/tickets/{ticket.id}/comments", json={"body": "hi"}, headers=h).status_code == 404
    assert api.get("/api/tickets/999999", headers=h).status_code == 404
    assert api.get("/api/tickets/not-a-number", headers=h).status_code == 422


def test_admin_user_endpoints(api, factory):
    admin = factory.admin()
    user = factory.user(name="Pat Person")
    h = factory.headers(admin)
    r = api.get("/api/auth/users?q=pat", headers=h)
    assert r.status_code == 200 and r.json()["total"] == 1 and "password_hash" not in r.text
    r = api.post(
        "/api/auth/update-user", json={"email": user.email, "role": "moderator", "skills": ["Billing"]}, headers=h
    )
    assert r.status_code == 200 and r.json()["role"] == "moderator" and r.json()["skills"] == ["billing"]
    uh = factory.headers(user)
    assert api.get("/api/auth/users", headers=uh).status_code == 403
    r = api.post("/api/auth/update-user", json={"email": user.email, "role": "admin"}, headers=uh)
    assert r.status_code == 403
    r = api.post("/api/auth/update-user", json={"email": "nobody@example.com", "role": "user"}, headers=h)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/tickets", {"title": "ok title", "description": "d", "priority": "high"}),
        ("/api/tickets", {"title": "ok title", "description": "d", "created_by": 1}),
        ("/api/tickets", {"title": "no", "description": "d"}),
        ("/api/tickets", {"title": "ok title", "description": ""}),
        ("/api/tickets", {"title": "ok title"}),
        ("/api/tickets", {"title": "x" * 201, "description": "d"}),
        ("/api/tickets", {"title": "ok title", "description": "d" * 10_001}),
        ("/api/tickets", {"title": "nul\x00byte", "description": "d"}),
        ("/api/tickets", {"title": "ok title", "description": "nul\x00byte"}),
        ("/api/tickets", {"title": ["list"], "description": "d"}),
    ],
)
def test_bad_ticket_input_is_a_clear_422(api, factory, path, body):
    h = factory.headers(factory.user())
    r = api.post(path, json=body, headers=h)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def test_malformed_and_oversized_bodies(api, factory):
    h = factory.headers(factory.user())
    r = api.post("/api/tickets", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    r = api.post("/api/tickets", json={"title": "big", "description": "x" * 400_000}, headers=h)
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_odd_unicode_is_kept_as_text(api, factory):
    user = factory.user()
    h = factory.headers(user)
    title = "Ünïcödé 🚀 <script>alert(1)</script> ' OR 1=1 --"
    r = api.post("/api/tickets", json={"title": title, "description": "זה טקסט\n" + "a" * 5000}, headers=h)
    assert r.status_code == 201 and r.json()["title"] == title
    assert api.get(f"/api/tickets/{r.json()['id']}", headers=h).json()["title"] == title


def test_openapi_document_and_docs_page(api):
    spec = api.get("/api/openapi.json").json()
    for path in (
        "/api/auth/signup",
        "/api/auth/login",
        "/api/auth/me",
        "/api/tickets",
        "/api/tickets/{ticket_id}",
        "/api/tickets/{ticket_id}/comments",
        "/api/auth/users",
        "/api/auth/update-user",
    ):
        assert path in spec["paths"]
    page = api.get("/api/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower() and "cdn." not in page.text


def test_health(api):
    assert api.get("/api/health").json() == {"status": "ok", "database": True}
