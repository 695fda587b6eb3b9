from ticketing_app.db import session_scope
from ticketing_app.jobs.handlers import HANDLERS, on_dead
from ticketing_app.jobs.worker import drain
from ticketing_app.models import EmailMessage, Ticket


def test_ticket_is_triaged_assigned_and_mailed(factory):
    factory.admin()
    mod = factory.user("moderator", skills=["billing", "payments"])
    requester = factory.user()
    t = factory.ticket(requester, "Charged twice for my subscription", "My card was charged twice this month.")
    ran = drain(HANDLERS, on_dead)
    assert ran >= 4
    with session_scope() as s:
        ticket = s.get(Ticket, t.id)
        assert ticket.triage_status == "done"
        assert ticket.category == "billing"
        assert ticket.assigned_to_id == mod.id, ticket.assignment_reason
        mails = s.query(EmailMessage).all()
        assert {m.kind for m in mails} >= {"ticket_assigned", "ticket_received", "welcome"}
        assert all(m.status == "recorded" for m in mails)
