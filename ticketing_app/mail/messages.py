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
    "DeadJobLine",
    "FileLink",
    "OutgoingEmail",
    "TicketLine",
    "admin_digest_email",
    "assignment_email",
    "format_ticket_number",
    "password_reset_email",
    "ticket_received_email",
    "ticket_reopened_email",
    "ticket_reply_email",
    "ticket_resolved_email",
    "ticket_status_email",
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
    # Extra headers (name, value): Reply-To, threading, List-Unsubscribe. The sender validates them again.
    headers: tuple[tuple[str, str], ...] = ()


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


def _html_document(
    *, heading: str, blocks: Sequence[str], link_url: str, link_label: str, unsubscribe_url: str | None = None
) -> str:
    """A small inline-styled page. ``heading`` and ``link_label`` must already be escaped HTML;
    ``blocks`` are already-built HTML fragments; ``link_url`` (and ``unsubscribe_url``) are checked URLs
    (escaped here)."""
    href = html.escape(link_url, quote=True)
    body = "\n".join(blocks)
    footer = ""
    if unsubscribe_url is not None:
        stop = html.escape(_url(unsubscribe_url), quote=True)
        footer = (
            f'<p style="margin:16px 0 0;font-size:12px;color:#6b7280">{html.escape(_UNSUBSCRIBE_TEXT)} '
            f'<a href="{stop}" style="color:#6b7280">Unsubscribe</a></p>\n'
        )
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
        f"{footer}"
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


def _text_document(lines: Sequence[str], unsubscribe_url: str | None = None) -> str:
    if unsubscribe_url is not None:
        lines = [*lines, "", "--", f"{_UNSUBSCRIBE_TEXT} Unsubscribe: {_url(unsubscribe_url)}"]
    return "\n".join(lines).rstrip("\n") + "\n"


_UNSUBSCRIBE_TEXT = "You get this e-mail because of your notification settings."


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
    unsubscribe_url: str | None = None,
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
    text = _text_document(lines, unsubscribe_url)

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
        unsubscribe_url=unsubscribe_url,
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
    unsubscribe_url: str | None = None,
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
    text = _text_document(lines, unsubscribe_url)

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
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_RECEIVED)


def ticket_resolved_email(
    *,
    to: str,
    requester_name: str,
    number: int | str,
    title: str,
    ticket_url: str,
    unsubscribe_url: str | None = None,
    rating_urls: tuple[str, str] | None = None,
) -> OutgoingEmail:
    """To the requester when the ticket is marked resolved; with `rating_urls` (good, bad) it asks for a rating."""
    url = _url(ticket_url)
    rating = rating_urls is not None
    good, bad = (_url(rating_urls[0]), _url(rating_urls[1])) if rating_urls else ("", "")
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
            *(["", "How did we do?", f"Good: {good}", f"Bad: {bad}"] if rating else []),
        ],
        unsubscribe_url,
    )
    html_body = _html_document(
        heading=f"Ticket {_h(ref)} resolved",
        blocks=[
            _p(html.escape(_greeting(requester_name))),
            _p(html.escape(intro)),
            _facts_table([("Ticket", ref), ("Title", one_line_title)]),
            _p(html.escape(follow_up)),
            *(
                [
                    _p(
                        "How did we do? "
                        f'<a href="{html.escape(good, quote=True)}">Good</a> &middot; '
                        f'<a href="{html.escape(bad, quote=True)}">Bad</a>'
                    )
                ]
                if rating
                else []
            ),
        ],
        link_url=url,
        link_label="View the ticket",
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_RESOLVED)


@dataclass(frozen=True, slots=True)
class FileLink:
    """An attachment named in a mail: its file name and the (log-in protected) link to it."""

    name: str
    url: str


def _files_text(files: Sequence[FileLink]) -> list[str]:
    if not files:
        return []
    return ["", "Attachments (log in to open them):", *(f"- {_one_line(f.name, 255)}: {_url(f.url)}" for f in files)]


def _files_html(files: Sequence[FileLink]) -> str:
    if not files:
        return ""
    items = "".join(
        f'<li><a href="{html.escape(_url(f.url), quote=True)}">{_h(_one_line(f.name, 255))}</a></li>' for f in files
    )
    return _section("Attachments", f'<ul style="margin:0 0 12px;padding-left:20px">{items}</ul>')


def _quoted_html(body: object) -> str:
    inner = _h_multiline(body) or "(empty)"
    return (
        '<blockquote style="margin:0 0 12px;padding:8px 12px;border-left:3px solid #d1d5db;color:#1f2933">'
        f"{inner}</blockquote>"
    )


def ticket_reply_email(
    *,
    to: str,
    recipient_name: str,
    author_name: str,
    number: int | str,
    title: str,
    body: str,
    ticket_url: str,
    from_requester: bool,
    files: Sequence[FileLink] = (),
    unsubscribe_url: str | None = None,
) -> OutgoingEmail:
    """A new public reply on a ticket: from staff to the requester (ticket_reply), or from the requester to
    the assignee (requester_reply). Shows the reply itself and its attachments' names."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    author = _one_line(author_name, 100) or "Someone"
    subject = _subject(f"[{ref}] {'New reply from the requester' if from_requester else 'New reply'}: {one_line_title}")
    intro = f"{author} replied on ticket {ref} ({one_line_title}):"
    answer = "Reply to this e-mail or on the ticket page to answer."
    text = _text_document(
        [
            _greeting(recipient_name),
            "",
            intro,
            "",
            _multiline(body) or "(empty)",
            *_files_text(files),
            "",
            answer,
            f"Open the ticket: {url}",
        ],
        unsubscribe_url,
    )
    html_body = _html_document(
        heading=f"New reply on {_h(ref)}",
        blocks=[
            _p(html.escape(_greeting(recipient_name))),
            _p(html.escape(intro)),
            _quoted_html(body),
            _files_html(files),
            _p(html.escape(answer)),
        ],
        link_url=url,
        link_label="Open the ticket",
        unsubscribe_url=unsubscribe_url,
    )
    kind = EmailKind.REQUESTER_REPLY if from_requester else EmailKind.TICKET_REPLY
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=kind)


_STATUS_WORDS = {"open": "reopened", "in_progress": "in progress", "resolved": "resolved", "closed": "closed"}


def ticket_status_email(
    *,
    to: str,
    recipient_name: str,
    actor_name: str,
    number: int | str,
    title: str,
    new_status: str,
    ticket_url: str,
    unsubscribe_url: str | None = None,
) -> OutgoingEmail:
    """To the requester when staff move the ticket to in progress, closed or back to open."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    word = _STATUS_WORDS.get(_plain(new_status), _one_line(new_status).replace("_", " "))
    actor = _one_line(actor_name, 100) or "Someone"
    subject = _subject(f"[{ref}] {word.capitalize()}: {one_line_title}")
    intro = f"{actor} marked your ticket {ref} as {word}."
    text = _text_document(
        [
            _greeting(recipient_name),
            "",
            intro,
            "",
            f"Ticket: {ref}",
            f"Title: {one_line_title}",
            "",
            f"View the ticket: {url}",
        ],
        unsubscribe_url,
    )
    html_body = _html_document(
        heading=f"Ticket {_h(ref)} {html.escape(word)}",
        blocks=[
            _p(html.escape(_greeting(recipient_name))),
            _p(html.escape(intro)),
            _facts_table([("Ticket", ref), ("Title", one_line_title), ("Status", word)]),
        ],
        link_url=url,
        link_label="View the ticket",
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_STATUS)


def ticket_reopened_email(
    *,
    to: str,
    recipient_name: str,
    actor_name: str,
    number: int | str,
    title: str,
    ticket_url: str,
    unsubscribe_url: str | None = None,
) -> OutgoingEmail:
    """To the assignee when a resolved or closed ticket is opened again."""
    url = _url(ticket_url)
    ref = format_ticket_number(number)
    one_line_title = _one_line(title)
    actor = _one_line(actor_name, 100) or "Someone"
    subject = _subject(f"[{ref}] Reopened: {one_line_title}")
    intro = f"{actor} reopened ticket {ref}, which is assigned to you."
    text = _text_document(
        [
            _greeting(recipient_name),
            "",
            intro,
            "",
            f"Ticket: {ref}",
            f"Title: {one_line_title}",
            "",
            f"Open the ticket: {url}",
        ],
        unsubscribe_url,
    )
    html_body = _html_document(
        heading=f"Ticket {_h(ref)} reopened",
        blocks=[
            _p(html.escape(_greeting(recipient_name))),
            _p(html.escape(intro)),
            _facts_table([("Ticket", ref), ("Title", one_line_title)]),
        ],
        link_url=url,
        link_label="Open the ticket",
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_REOPENED)


def ticket_merged_email(
    *,
    to: str,
    recipient_name: str,
    number: int | str,
    title: str,
    into_number: int | str,
    into_title: str,
    ticket_url: str,
    note: str | None = None,
    unsubscribe_url: str | None = None,
) -> OutgoingEmail:
    """To the requester (and followers) of a duplicate: it was merged into another ticket, where the
    conversation goes on; `ticket_url` is the original's page."""
    url = _url(ticket_url)
    ref, into_ref = format_ticket_number(number), format_ticket_number(into_number)
    one_line_title, one_line_into = _one_line(title), _one_line(into_title)
    subject = _subject(f"[{ref}] Merged into {into_ref}: {one_line_title}")
    intro = f"Your request {ref} was merged into {into_ref}, which is about the same issue."
    after = (
        f"Its messages and files are now on {into_ref}; you will hear from us there. "
        f"Replying to this e-mail adds to {into_ref}."
    )
    text = _text_document(
        [
            _greeting(recipient_name),
            "",
            intro,
            *(["", _multiline(note)] if note and note.strip() else []),
            "",
            f"Your request: {ref} ({one_line_title})",
            f"Continued in: {into_ref} ({one_line_into})",
            "",
            after,
            f"Open {into_ref}: {url}",
        ],
        unsubscribe_url,
    )
    html_body = _html_document(
        heading=f"{_h(ref)} merged into {_h(into_ref)}",
        blocks=[
            _p(html.escape(_greeting(recipient_name))),
            _p(html.escape(intro)),
            _quoted_html(note) if note and note.strip() else "",
            _facts_table(
                [("Your request", f"{ref} ({one_line_title})"), ("Continued in", f"{into_ref} ({one_line_into})")]
            ),
            _p(html.escape(after)),
        ],
        link_url=url,
        link_label=f"Open {_h(into_ref)}",
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.TICKET_MERGED)


@dataclass(frozen=True, slots=True)
class TicketLine:
    """A ticket listed in the admin digest."""

    number: int | str
    title: str
    url: str
    waiting_since: str  # already formatted, e.g. "2026-12-01 09:30 UTC"


@dataclass(frozen=True, slots=True)
class DeadJobLine:
    """A dead-lettered job listed in the admin digest."""

    job_id: int
    kind: str
    error: str
    died_at: str


def admin_digest_email(
    *,
    to: str,
    recipient_name: str,
    period: str,
    unassigned: Sequence[TicketLine],
    unassigned_total: int,
    dead_jobs: Sequence[DeadJobLine],
    dead_total: int,
    admin_url: str,
    unsubscribe_url: str | None = None,
) -> OutgoingEmail:
    """The admins' periodic digest: tickets left unassigned and jobs dead-lettered in the period."""
    url = _url(admin_url)
    period_text = _one_line(period, 100)
    subject = _subject(f"Helpdesk digest: {unassigned_total} unassigned ticket(s), {dead_total} dead job(s)")
    lines = [_greeting(recipient_name), "", f"What needs an admin ({period_text}):", ""]
    lines += [f"Tickets left unassigned: {unassigned_total}"]
    lines += [
        f"- {format_ticket_number(t.number)} {_one_line(t.title)} (since {_one_line(t.waiting_since)}): {_url(t.url)}"
        for t in unassigned
    ]
    if unassigned_total > len(unassigned):
        lines.append(f"- and {unassigned_total - len(unassigned)} more")
    lines += ["", f"Jobs dead-lettered: {dead_total}"]
    lines += [
        f"- job {j.job_id} ({_one_line(j.kind, 40)}, {_one_line(j.died_at)}): {_one_line(j.error, 200)}"
        for j in dead_jobs
    ]
    if dead_total > len(dead_jobs):
        lines.append(f"- and {dead_total - len(dead_jobs)} more")
    lines += ["", f"Open the overview: {url}"]
    text = _text_document(lines, unsubscribe_url)

    ticket_items = "".join(
        f'<li><a href="{html.escape(_url(t.url), quote=True)}">{_h(format_ticket_number(t.number))}</a> '
        f'{_h(t.title)} <span style="color:#6b7280">(since {_h(t.waiting_since)})</span></li>'
        for t in unassigned
    )
    job_items = "".join(
        f"<li>job {j.job_id} ({_h(_one_line(j.kind, 40))}, {_h(j.died_at)}): {_h(_one_line(j.error, 200))}</li>"
        for j in dead_jobs
    )
    more_tickets = unassigned_total - len(unassigned)
    more_jobs = dead_total - len(dead_jobs)
    blocks = [
        _p(html.escape(_greeting(recipient_name))),
        _p(html.escape(f"What needs an admin ({period_text}):")),
        _section(
            f"Tickets left unassigned: {unassigned_total}",
            f'<ul style="margin:0 0 12px;padding-left:20px">{ticket_items}</ul>' if ticket_items else "",
        ),
        _p(html.escape(f"and {more_tickets} more")) if more_tickets > 0 else "",
        _section(
            f"Jobs dead-lettered: {dead_total}",
            f'<ul style="margin:0 0 12px;padding-left:20px">{job_items}</ul>' if job_items else "",
        ),
        _p(html.escape(f"and {more_jobs} more")) if more_jobs > 0 else "",
    ]
    html_body = _html_document(
        heading="Helpdesk digest",
        blocks=[b for b in blocks if b],
        link_url=url,
        link_label="Open the overview",
        unsubscribe_url=unsubscribe_url,
    )
    return OutgoingEmail(to=_address(to), subject=subject, text=text, html=html_body, kind=EmailKind.ADMIN_DIGEST)
