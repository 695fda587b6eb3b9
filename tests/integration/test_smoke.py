def test_signup_login_create_ticket(api, factory):
    r = api.post("/api/auth/signup", json={"name": "Sam", "email": "Sam@Example.com", "password": "long enough pw"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["email"] == "sam@example.com"
    assert "password_hash" not in r.text
    token = body["access_token"]
    r = api.post("/api/tickets", json={"title": "Printer on fire", "description": "Help"},
                 headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    assert r.json()["number"] == "TCK-1001"
