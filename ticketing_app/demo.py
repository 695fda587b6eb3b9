"""Demo data: a few moderators with skills, requesters and tickets that the pipeline then works."""

from __future__ import annotations

from sqlalchemy import select

from ticketing_app.db import session_scope
from ticketing_app.domain import Role
from ticketing_app.models import User
from ticketing_app.schemas import SignupIn, TicketCreate, UserUpdate
from ticketing_app.services import accounts, tickets

DEMO_PASSWORD = "demo-password-1"

MODERATORS = [
    ("Maya Billing", "maya@demo.example", ["billing", "payments", "refunds", "invoicing"]),
    ("Omar Access", "omar@demo.example", ["account access", "sso", "2fa", "passwords"]),
    ("Lena Platform", "lena@demo.example", ["performance", "postgres", "apis", "webhooks"]),
    ("Ravi Security", "ravi@demo.example", ["security", "incident response"]),
    ("Dana Data", "dana@demo.example", ["data", "imports", "exports", "reports"]),
]

TICKETS = [
    ("Charged twice for March", "My card was charged twice for the March invoice INV-2291 ($49). Please refund one."),
    ("Can't log in after enabling 2FA", "I enabled 2FA yesterday and now the code is always rejected. Locked out."),
    (
        "Dashboard takes 30 seconds to load",
        "Since v4.2 the dashboard is very slow for our whole team (about 40 users).",
    ),
    (
        "Webhook deliveries failing with 401",
        "Our webhook endpoint gets HTTP 401 since this morning. Using the REST API v2.",
    ),
    ("CSV export is missing rows", "Exporting the March report gives 1,204 rows but the UI shows 1,310."),
    ("Suspicious login from another country", "I got an alert about a login from an unknown IP. I did not do that."),
    ("How do I add a teammate?", "Where in the settings can I invite a colleague to our workspace?"),
    ("Please add dark mode to the mobile app", "It would be great to have a dark theme on Android."),
]


def load_demo_data() -> str:
    """Create demo users and tickets (idempotent by e-mail); returns a short summary."""
    with session_scope() as session:
        admin = session.scalar(select(User).where(User.role == Role.ADMIN).order_by(User.id))
        if admin is None:
            admin, _ = accounts.ensure_admin(session, "admin@demo.example", DEMO_PASSWORD, name="Demo Admin")
    created = 0
    for name, email, skills in MODERATORS:
        with session_scope() as session:
            if accounts.find_user_by_email(session, email) is None:
                accounts.signup(session, SignupIn(name=name, email=email, password=DEMO_PASSWORD), verified=True)
                created += 1
        with session_scope() as session:
            actor = session.get_one(User, admin.id)
            accounts.update_user(session, actor, UserUpdate(email=email, role=Role.MODERATOR, skills=skills))
    with session_scope() as session:
        requester = accounts.find_user_by_email(session, "casey@demo.example")
        if requester is None:
            requester, _ = accounts.signup(
                session,
                SignupIn(name="Casey Customer", email="casey@demo.example", password=DEMO_PASSWORD),
                verified=True,
            )
            for title, description in TICKETS:
                tickets.create_ticket(session, requester, TicketCreate(title=title, description=description))
    return (
        f"demo data ready: {created} new moderators, requester casey@demo.example, {len(TICKETS)} tickets "
        f"(password for every demo account: {DEMO_PASSWORD}); the background loop triages and routes them"
    )
