"""The SLA mails: a warning to the assignee before a target is missed, and the breach to the admins.

Pure functions like `messages` (and built from its escaping helpers): plain values in, an OutgoingEmail out.
"""

from __future__ import annotations

import html

from ticketing_app.domain import EmailKind, SlaTarget, label
from ticketing_app.mail.messages import (
    OutgoingEmail,
    _address,
    _facts_table,
    _greeting,
    _h,
    _html_document,
    _one_line,
    _p,
    _subject,
    _text_document,
    _url,
    format_ticket_number,
)

_TARGET_WORDS = {SlaTarget.FIRST_RESPONSE: "first response", SlaTarget.RESOLUTION: "resolution"}


def sla_email(
    *,
    breached: bool,
    to: str,
    recipient_name: str,
    target: SlaTarget,
    number: int | str,
    title: str,
    priority: str | None,
    due: str,
    assignee_name: str | None,
    ticket_url: str,
) -> OutgoingEmail:
    """A warning (`breached` False: the target is close) or a breach notice; `due` is already formatted."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    what = _TARGET_WORDS[target]
    if breached:
        subject = _subject(f"[{ref}] SLA breached ({what}): {one_line_title}")
        intro = f"The {what} target of ticket {ref} was missed: it was due {due}."
        heading = f"SLA breached on {_h(ref)}"
    else:
        subject = _subject(f"[{ref}] SLA warning ({what} due {due}): {one_line_title}")
        intro = f"The {what} target of ticket {ref} is close: it is due {due}."
        heading = f"SLA warning on {_h(ref)}"
    facts = [
        ("Ticket", ref),
        ("Title", one_line_title),
        ("Priority", label(priority)),
        ("Due", due),
        ("Assignee", _one_line(assignee_name) or "nobody"),
    ]
    text = _text_document(
        [_greeting(recipient_name), "", intro, "", *(f"{k}: {v}" for k, v in facts), "", f"Open the ticket: {url}"]
    )
    html_body = _html_document(
        heading=heading,
        blocks=[_p(html.escape(_greeting(recipient_name))), _p(html.escape(intro)), _facts_table(facts)],
        link_url=url,
        link_label="Open the ticket",
    )
    kind = EmailKind.SLA_BREACHED if breached else EmailKind.SLA_WARNING
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=kind)
