"""Composing the e-mails the helpdesk sends.

Pure functions: plain values in, an :class:`OutgoingEmail` out. No database models, no I/O.

Every user- or AI-written string is treated as untrusted:
- in the HTML part it is escaped with :func:`html.escape` (quotes included) and newlines become ``<br>``;
- subjects are reduced to one line (CR, LF and other control / line-separator characters become
  spaces) and cut to :data:`MAX_SUBJECT_CHARS`, so a title can never inject a mail header;
- the only link in a message is the ``ticket_url`` / ``app_url`` the caller passes (http or https),
  escaped inside the ``href`` attribute. Nothing is rendered as Markdown and nothing is linkified.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ticketing_app.domain import EmailKind, ticket_reference
from ticketing_app.text import control_class, control_pattern

__all__ = [
    "MAX_SUBJECT_CHARS",
    "OutgoingEmail",
    "assignment_email",
    "format_ticket_number",
    "password_reset_email",
    "ticket_received_email",
    "ticket_resolved_email",
    "verify_email_email",
    "welcome_email",
]

MAX_SUBJECT_CHARS = 200
_ELLIPSIS = "\u2026"

# C0/C1 control characters (CR and LF included) plus Unicode line/paragraph separators.
_SINGLE_LINE_BREAKERS = re.compile(control_class(c1=True, line_separators=True) + "+")
# Control characters that have no business in a body; \n and \t are kept.
_BODY_CONTROL = control_pattern(keep="\t\n", c1=True, line_separators=True)
_URL_CONTROL = control_pattern()
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One composed e-mail: what a sender delivers and what the outbox row stores."""

    to: str
    subject: str
    text: str
    html: str
    kind: str


# --------------------------------------------------------------------------------------------------
# Sanitising helpers


def _plain(value: object) -> str:
    """A displayable string for a plain value (an Enum is shown by its value)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _one_line(value: object, limit: int | None = None) -> str:
    """Collapse to a single line: no CR/LF/control characters, single spaces, trimmed, optionally cut."""
    text = _SINGLE_LINE_BREAKERS.sub(" ", _plain(value))
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + _ELLIPSIS
    return text


def _subject(value: object) -> str:
    return _one_line(value, MAX_SUBJECT_CHARS)


def _multiline(value: object) -> str:
    """Normalise newlines to \\n and drop control characters; keep the author's line structure."""
    text = _plain(value).replace("\r\n", "\n").replace("\r", "\n")
    text = _BODY_CONTROL.sub(" ", text)
    lines = [_SPACES.sub(" ", line).rstrip() for line in text.split("\n")]
    # trim blank lines at both ends, keep inner paragraphs (collapse runs of blank lines to one)
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _h(value: object) -> str:
    """Escape a single-line value for HTML text or a quoted attribute."""
    return html.escape(_one_line(value), quote=True)


def _h_multiline(value: object) -> str:
    """Escape a multi-line value for HTML; newlines become <br>."""
    return html.escape(_multiline(value), quote=True).replace("\n", "<br>\n")


def _url(value: str) -> str:
    """The caller's link, checked: absolute http(s), no whitespace or control characters."""
    url = _plain(value).strip()
    if not url or any(ch.isspace() for ch in url) or _URL_CONTROL.search(url):
        raise ValueError("link URL must be non-empty and contain no whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("link URL must be an absolute http(s) URL")
    return url


def _address(value: str) -> str:
    to = _plain(value).strip()
    if not to or _SINGLE_LINE_BREAKERS.search(to) or "@" not in to:
        raise ValueError("recipient must be a single e-mail address")
    return to


def format_ticket_number(number: int | str) -> str:
    """1042 -> "TCK-1042"; a string (already formatted, e.g. "TCK-1042") is kept as given."""
    if isinstance(number, int) and not isinstance(number, bool):
        return ticket_reference(number)
    return _one_line(number, 40)


def _notes_text(notes: str | Sequence[str] | None) -> str:
    if notes is None:
        return ""
    if isinstance(notes, str):
        return _multiline(notes)
    return "\n".join(f"- {_one_line(n)}" for n in notes if _one_line(n))


def _notes_html(notes: str | Sequence[str] | None) -> str:
    if notes is None:
        return ""
    if isinstance(notes, str):
        body = _h_multiline(notes)
        return f'<p style="margin:0 0 12px">{body}</p>' if body else ""
    items = [_h(n) for n in notes if _one_line(n)]
    if not items:
        return ""
    lis = "".join(f"<li>{item}</li>" for item in items)
    return f'<ul style="margin:0 0 12px;padding-left:20px">{lis}</ul>'


# --------------------------------------------------------------------------------------------------
# Layout

_FONT = "font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#1f2933"


def _html_document(*, heading: str, blocks: Sequence[str], link_url: str, link_label: str) -> str:
    """A small inline-styled page. ``heading`` and ``link_label`` must already be escaped HTML;
    ``blocks`` are already-built HTML fragments; ``link_url`` is a checked URL (escaped here)."""
    href = html.escape(link_url, quote=True)
    body = "\n".join(blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html><head><meta charset="utf-8"></head>\n'
        '<body style="margin:0;padding:0;background:#f4f5f7">\n'
        f'<div style="max-width:600px;margin:0 auto;padding:24px;background:#ffffff;{_FONT}">\n'
        f'<h1 style="font-size:20px;margin:0 0 16px">{heading}</h1>\n'
        f"{body}\n"
        f'<p style="margin:24px 0 0"><a href="{href}" style="display:inline-block;padding:10px 16px;'
        f'background:#2563eb;color:#ffffff;text-decoration:none;border-radius:4px">{link_label}</a></p>\n'
        f'<p style="margin:12px 0 0;font-size:12px;color:#6b7280">{href}</p>\n'
        "</div>\n</body></html>\n"
    )


def _p(inner_html: str) -> str:
    return f'<p style="margin:0 0 12px">{inner_html}</p>'


def _facts_table(rows: Sequence[tuple[str, str]]) -> str:
    """rows: (label, value) pairs, both plain text (escaped here)."""
    trs = "".join(
        f'<tr><td style="padding:2px 12px 2px 0;color:#6b7280;vertical-align:top">{_h(label)}</td>'
        f'<td style="padding:2px 0">{_h(value)}</td></tr>'
        for label, value in rows
    )
    return f'<table role="presentation" style="border-collapse:collapse;margin:0 0 16px">{trs}</table>'


def _section(title: str, inner_html: str) -> str:
    return f'<h2 style="font-size:16px;margin:16px 0 6px">{_h(title)}</h2>\n{inner_html}'


def _greeting(name: object) -> str:
    clean = _one_line(name, 100)
    return f"Hello {clean}," if clean else "Hello,"


def _text_document(lines: Sequence[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------------
# Builders


_WELCOME_BODY = (
    "Your helpdesk account is ready. Submit a ticket whenever you need help: it is triaged automatically "
    "and routed to the right person, and we e-mail you when it is picked up and when it is resolved."
)


_VERIFY_BODY = "Please confirm that this is your e-mail address, so that we know our replies reach you."


def welcome_email(*, to: str, name: str, app_url: str, verify_url: str | None = None) -> OutgoingEmail:
    """Sent once after sign-up; with `verify_url`, it also asks to confirm the address (its one link)."""
    url = _url(verify_url or app_url)
    greeting = _greeting(name)
    subject = _subject("Welcome to the helpdesk")
    label = "Confirm your e-mail address" if verify_url else "Open the helpdesk"
    lines = [greeting, "", _WELCOME_BODY, ""]
    blocks = [_p(html.escape(greeting)), _p(html.escape(_WELCOME_BODY))]
    if verify_url:
        lines += [_VERIFY_BODY, ""]
        blocks.append(_p(html.escape(_VERIFY_BODY)))
    lines.append(f"{label}: {url}")
    html_body = _html_document(heading="Welcome to the helpdesk", blocks=blocks, link_url=url, link_label=label)
    return OutgoingEmail(
        to=_address(to), subject=subject, text=_text_document(lines), html=html_body, kind=EmailKind.WELCOME
    )


def _account_email(
    *, to: str, name: str, kind: EmailKind, subject: str, paragraphs: Sequence[str], link_label: str, link_url: str
) -> OutgoingEmail:
    """An account mail: a greeting, fixed paragraphs (our own text, escaped anyway) and one link."""
    url = _url(link_url)
    greeting = _greeting(name)
    text = _text_document([greeting, "", *(line for p in paragraphs for line in (p, "")), f"{link_label}: {url}"])
    html_body = _html_document(
        heading=html.escape(subject),
        blocks=[_p(html.escape(greeting)), *(_p(html.escape(p)) for p in paragraphs)],
        link_url=url,
        link_label=html.escape(link_label),
    )
    return OutgoingEmail(to=_address(to), subject=_subject(subject), text=text, html=html_body, kind=kind)


def password_reset_email(*, to: str, name: str, reset_url: str, minutes: int, by_admin: bool = False) -> OutgoingEmail:
    """A single-use link to choose a new password."""
    why = (
        "An administrator of the helpdesk sent you this link to set your password."
        if by_admin
        else "Someone (hopefully you) asked to reset the password of your helpdesk account."
    )
    return _account_email(
        to=to,
        name=name,
        kind=EmailKind.PASSWORD_RESET,
        subject="Reset your helpdesk password",
        paragraphs=[
            why,
            f"The link below works once, for {minutes} minutes. Setting a new password logs you out everywhere.",
            "If you did not ask for this, ignore this mail: your password stays as it is.",
        ],
        link_label="Choose a new password",
        link_url=reset_url,
    )


def verify_email_email(*, to: str, name: str, verify_url: str) -> OutgoingEmail:
    """A link that confirms the account's address."""
    return _account_email(
        to=to,
        name=name,
        kind=EmailKind.VERIFY_EMAIL,
        subject="Confirm your e-mail address",
        paragraphs=[_VERIFY_BODY, "If you did not create a helpdesk account, ignore this mail."],
        link_label="Confirm your e-mail address",
        link_url=verify_url,
    )


def assignment_email(
    *,
    to: str,
    assignee_name: str,
    number: int | str,
    title: str,
    priority: str | None,
    category: str | None,
    summary: str | None,
    helpful_notes: str | Sequence[str] | None,
    ticket_url: str,
    reason: str | None,
    reassigned: bool = False,
) -> OutgoingEmail:
    """To the moderator a ticket was (re)assigned to, with the AI summary and notes."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    action = "Reassigned to you" if reassigned else "Assigned to you"
    subject = _subject(f"[{ref}] {action}: {one_line_title}")
    facts = [
        ("Ticket", ref),
        ("Title", one_line_title),
        ("Priority", _one_line(priority) or "not set"),
        ("Category", _one_line(category) or "not set"),
    ]
    summary_text = _multiline(summary)
    notes_text = _notes_text(helpful_notes)
    reason_text = _multiline(reason)
    intro = f"Ticket {ref} has been reassigned to you." if reassigned else f"Ticket {ref} has been assigned to you."

    lines = [_greeting(assignee_name), "", intro, ""]
    lines += [f"{label}: {value}" for label, value in facts]
    lines += ["", "Summary:", summary_text or "(no summary)", ""]
    lines += ["Helpful notes:", notes_text or "(none)", ""]
    lines += ["Why you:", reason_text or "(no reason recorded)", ""]
    lines += [f"Open the ticket: {url}"]
    text = _text_document(lines)

    blocks = [
        _p(html.escape(_greeting(assignee_name))),
        _p(html.escape(intro)),
        _facts_table(facts),
        _section("Summary", _p(_h_multiline(summary) or "(no summary)")),
        _section("Helpful notes", _notes_html(helpful_notes) or _p("(none)")),
        _section("Why you", _p(_h_multiline(reason) or "(no reason recorded)")),
    ]
    html_body = _html_document(
        heading=f"{html.escape(action)}: {_h(ref)}",
        blocks=blocks,
        link_url=url,
        link_label="Open the ticket",
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_ASSIGNED)


def ticket_received_email(
    *,
    to: str,
    requester_name: str,
    number: int | str,
    title: str,
    priority: str | None,
    category: str | None,
    summary: str | None,
    ticket_url: str,
    assignee_name: str | None,
) -> OutgoingEmail:
    """To the requester once the ticket is triaged (and assigned): confirmation with the number."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    subject = _subject(f"[{ref}] We received your ticket: {one_line_title}")
    assignee = _one_line(assignee_name, 100)
    handled_by = f"It has been assigned to {assignee}." if assignee else "It is waiting for a moderator to pick it up."
    facts = [
        ("Ticket", ref),
        ("Title", one_line_title),
        ("Priority", _one_line(priority) or "not set"),
        ("Category", _one_line(category) or "not set"),
    ]
    if assignee:
        facts.append(("Assigned to", assignee))
    summary_text = _multiline(summary)
    intro = f"Thank you, we received your ticket. Its number is {ref}; please quote it if you contact us."

    lines = [_greeting(requester_name), "", intro, handled_by, ""]
    lines += [f"{label}: {value}" for label, value in facts]
    if summary_text:
        lines += ["", "Our summary:", summary_text]
    lines += ["", f"Follow your ticket: {url}"]
    text = _text_document(lines)

    blocks = [
        _p(html.escape(_greeting(requester_name))),
        _p(f"{html.escape(intro)}<br>\n{html.escape(handled_by)}"),
        _facts_table(facts),
    ]
    if summary_text:
        blocks.append(_section("Our summary", _p(_h_multiline(summary))))
    html_body = _html_document(
        heading=f"We received your ticket {_h(ref)}",
        blocks=blocks,
        link_url=url,
        link_label="Follow your ticket",
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_RECEIVED)


def ticket_resolved_email(
    *, to: str, requester_name: str, number: int | str, title: str, ticket_url: str
) -> OutgoingEmail:
    """To the requester when the ticket is marked resolved."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    subject = _subject(f"[{ref}] Resolved: {one_line_title}")
    intro = f"Your ticket {ref} has been marked as resolved."
    follow_up = "If the problem is not solved, let us know on the ticket page."

    text = _text_document(
        [
            _greeting(requester_name),
            "",
            intro,
            "",
            f"Ticket: {ref}",
            f"Title: {one_line_title}",
            "",
            follow_up,
            f"View the ticket: {url}",
        ]
    )
    html_body = _html_document(
        heading=f"Ticket {_h(ref)} resolved",
        blocks=[
            _p(html.escape(_greeting(requester_name))),
            _p(html.escape(intro)),
            _facts_table([("Ticket", ref), ("Title", one_line_title)]),
            _p(html.escape(follow_up)),
        ],
        link_url=url,
        link_label="View the ticket",
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_RESOLVED)
