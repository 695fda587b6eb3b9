"""Reading an inbound mail: pure functions from raw bytes to what the helpdesk needs of it. No database, no I/O.

Parsed with the standard library (`email` with `policy.default`), defensively: a mail is written by anyone,
so every header and part may be malformed. A bad mail is read as far as it goes: what could not be read is
said in `ParsedMail.notes` and the rest is still used. Hostile content that was neutralised (script in an HTML
body, line breaks smuggled into the Subject or the sender's name: header injection) is said in
`ParsedMail.warnings`, for the operator's log. Only a mail built to exhaust the parser (over
MAX_MIME_PARTS parts, or nested deeper than Python recurses) raises `MailUnreadable`.

- Text: the text/plain body, else the text/html body turned into plain text (`html_to_text`: script, style
  and other non-content elements dropped; the result is stored as text and escaped wherever it is shown).
  Charsets come from the parts (latin-1, windows-1251, shift_jis, iso-2022-jp ...); an unknown or lying
  charset falls back to UTF-8 with replacement characters.
- Quoted history and signatures are cut with `mail-parser-reply` (maintained, multi-language "On ... wrote:"
  headers, "-- " signatures, "Sent from my ..."), after lines quoted with ">" at the end are dropped.
- Auto-replies and bounces (`auto_reply_reason`) are recognised by the headers RFC 3834 and the common
  autoresponders set, by multipart/report (delivery and read reports) and by mailer-daemon senders.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

from mailparser_reply import EmailMessage as ReplyText

from ticketing_app.text import control_pattern

__all__ = [
    "InboundAttachment",
    "MailUnreadable",
    "ParsedMail",
    "auto_reply_reason",
    "html_to_text",
    "message_id_of",
    "parse_mail",
    "strip_quoted",
]

MAX_MIME_PARTS = 200  # more is no mail a person wrote; the standard library's parser is slow on thousands
_PART_HEADER = re.compile(rb"(?im)^content-type:")
MAX_HEADER_CHARS = 998  # RFC 5322's line limit: nothing longer is a real header value
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")
_TEXT_CONTROL = control_pattern(keep="\t\n", c1=True, line_separators=True)
_LINE_CONTROL = control_pattern(c1=True, line_separators=True)
_ANGLE_ADDRESS = re.compile(r"^(.*)<([^<>\s]+)>\s*$")
_BLANK_LINES = re.compile(r"\n{3,}")
_LINE_BREAK = re.compile(r"[\r\n]")
_URL_NOISE = re.compile(r"[\x00-\x20]+")  # browsers ignore these inside a URL's scheme ("java\tscript:")
_REPLY_LANGUAGES = ("en", "de", "cs", "da", "es", "fr", "it", "ja", "ko", "nl", "pl", "sv", "zh")
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_DAEMON_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")


class MailUnreadable(ValueError):
    """A mail built to exhaust the parser (thousands of parts, nesting deeper than Python recurses)."""


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    data: bytes


@dataclass
class ParsedMail:
    """What the helpdesk uses of one inbound mail."""

    message_id: str
    from_address: str  # lower-cased; "" when the From header has no usable address
    from_name: str
    subject: str  # one line
    text: str  # the new part of the body: plain text, quoted history and signature cut
    recipients: list[str]  # To, Cc, Delivered-To, X-Original-To (lower-cased)
    references: list[str]  # In-Reply-To first, then References, newest first
    helpdesk_token: str | None
    auto_reply: str | None  # why this is an auto-reply or bounce; None for a mail a person wrote
    attachments: list[InboundAttachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read
    warnings: list[str] = field(default_factory=list)  # hostile content found and neutralised (for the log)


def message_id_of(raw: bytes) -> str:
    """The mail's Message-ID (angle brackets kept), or a synthetic one from the sha256 of its bytes.

    Read from the header block only, so it is cheap enough for the SMTP listener to call before storing.
    """
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        headers = email.message_from_bytes(head + b"\n\n", policy=policy.compat32)
        found = _MESSAGE_ID.search(str(headers.get("Message-ID", "") or ""))
    except Exception:  # noqa: BLE001 - a broken header block gets the synthetic id
        found = None
    if found:
        return found.group(0)
    return f"<{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"


def _header(message: Message, name: str) -> str:
    """A header's decoded value on one line ("" when missing or unreadable)."""
    return one_line(_decoded_header(message, name))[:MAX_HEADER_CHARS]


def _decoded_header(message: Message, name: str) -> str:
    """A header's decoded value as the mail gives it: folding undone, but CR/LF from encoded words still in."""
    try:
        return str(message.get(name) or "")
    except Exception:  # noqa: BLE001 - policy.default raises for some malformed headers
        return ""


def _all_headers(message: Message, name: str) -> list[str]:
    try:
        return [one_line(str(value)) for value in message.get_all(name) or []]
    except Exception:  # noqa: BLE001
        return []


def one_line(value: str) -> str:
    """Control characters (CR and LF included: header injection) become spaces; runs of spaces one."""
    return " ".join(_LINE_CONTROL.sub(" ", value).split())


def clean_text(value: str) -> str:
    """Body text as stored: newlines normalised, control characters removed, blank runs shortened."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _TEXT_CONTROL.sub("", value)
    return _BLANK_LINES.sub("\n\n", value).strip()


def auto_reply_reason(message: Message, return_path_seen: bool | None = None) -> str | None:
    """Why `message` was sent by a machine (an auto-reply, a bounce, a list), or None.

    `return_path_seen`: whether the envelope sender is known (SMTP: MAIL FROM); an empty one (`<>`) is a
    bounce by definition. None: judge from the Return-Path header only (IMAP), when there is one.
    """
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted[:60]}"
    precedence = _header(message, "Precedence").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if name in message:
            return f"{name} header"
    if message.get_content_type() == "multipart/report":
        return "multipart/report (delivery or read report)"
    sender = parseaddr(_header(message, "From"))[1].lower()
    if sender.partition("@")[0] in _DAEMON_SENDERS:
        return f"sent by {sender.partition('@')[0]}"
    if "Return-Path" in message and parseaddr(_header(message, "Return-Path"))[1] == "":
        return "empty Return-Path (a bounce)"
    if return_path_seen is False:
        return "empty envelope sender (a bounce)"
    return None


class _TextExtractor(HTMLParser):
    """HTML to plain text: the text of content elements, block elements on lines of their own."""

    _SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "math", "iframe", "object"}
    _BLOCK = {
        "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
        "blockquote", "pre", "table", "ul", "ol", "hr", "section", "article", "header", "footer",
    }  # fmt: skip

    _EMBEDDED = {"iframe", "object", "embed", "applet"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self.active: dict[str, int] = {}  # what a browser would have run: kind -> how many (all dropped)

    def _count_active(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = ["script element"] if tag == "script" else []
        if tag in self._EMBEDDED:
            found.append("iframe/object/embed element")
        for name, value in attrs:
            if name.startswith("on"):
                found.append("event-handler attribute")
            elif value and _URL_NOISE.sub("", value).lower().startswith(("javascript:", "vbscript:")):
                found.append("javascript: link")
        for kind in found:
            self.active[kind] = self.active.get(kind, 0) + 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._count_active(tag, attrs)
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "li" and not self._skipping:
            self.parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._count_active(tag, attrs)
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML body: no markup, no script or style content.

    Hand-written on the standard library's tokenizer: html2text was considered, but it writes Markdown
    (which we would then have to escape), and sanitizers (nh3, bleach) keep HTML; we want only the text.
    """
    return _html_text(markup)[0]


def _html_text(markup: str) -> tuple[str, str]:
    """(the text of `markup`, what active content was dropped from it: "" or e.g. "2 script elements")."""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
    except Exception:  # noqa: BLE001 - the tokenizer is lenient; this is a last resort
        return "", ""
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).split("\n"))
    active = ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in extractor.active.items())
    return clean_text("\n".join(lines)), active


_QUOTED = re.compile(r"^\s*>")


def strip_quoted(text: str) -> str:
    """The new part of a reply: without the quoted history and the signature (kept whole if that is all)."""
    lines = text.split("\n")
    while lines and (_QUOTED.match(lines[-1]) or not lines[-1].strip()):  # trailing ">" quotes
        lines.pop()
    trimmed = "\n".join(lines)
    try:
        # keep_hyphen_lists: without it every "- item" line is taken for the start of a signature.
        replies = ReplyText(text=trimmed, languages=list(_REPLY_LANGUAGES), keep_hyphen_lists=True).read().replies
        body = replies[0].body if replies else trimmed
    except Exception:  # noqa: BLE001 - never lose a mail to the reply parser
        body = trimmed
    return body.strip() or text.strip()


def _decoded_text(part: EmailMessage, notes: list[str]) -> str:
    """A text part's content, whatever its charset claims."""
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError) as exc:
        notes.append(f"charset {part.get_content_charset()!r} unreadable ({type(exc).__name__}); decoded as UTF-8")
    except Exception as exc:  # noqa: BLE001
        notes.append(f"a text part could not be decoded ({type(exc).__name__})")
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


def _addresses(message: Message, *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        values += _all_headers(message, name)
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001
        return []
    return [address.strip().lower() for _, address in pairs if "@" in address]


def _references(message: Message) -> list[str]:
    ids = _MESSAGE_ID.findall(_header(message, "In-Reply-To"))
    ids += reversed(_MESSAGE_ID.findall(" ".join(_all_headers(message, "References"))))
    return list(dict.fromkeys(ids))[:50]


def _body_and_attachments(
    message: EmailMessage, notes: list[str], warnings: list[str]
) -> tuple[str, list[InboundAttachment]]:
    attachments: list[InboundAttachment] = []
    text = ""
    try:
        body = message.get_body(preferencelist=("plain", "html"))
    except Exception as exc:  # noqa: BLE001
        notes.append(f"the body could not be found ({type(exc).__name__})")
        body = None
    if body is not None:
        raw_text = _decoded_text(body, notes)  # type: ignore[arg-type]
        if body.get_content_type() == "text/html":
            text, active = _html_text(raw_text)
            if active:
                warnings.append(f"HTML body with active content ({active}): dropped, only its text is kept")
        else:
            text = clean_text(raw_text)
    elif not message.is_multipart():
        text = clean_text(_decoded_text(message, notes))
    try:
        parts = list(message.iter_attachments()) if message.is_multipart() else []
    except Exception as exc:  # noqa: BLE001
        notes.append(f"attachments could not be listed ({type(exc).__name__})")
        parts = []
    for index, part in enumerate(parts, start=1):
        if part.is_multipart() or part.get_content_type() == "message/rfc822":
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001
            data = None
        if not isinstance(data, bytes) or not data:
            notes.append(f"attachment {index} was empty or unreadable")
            continue
        name = one_line(part.get_filename() or "") if _filename_readable(part) else ""
        attachments.append(InboundAttachment(filename=name or f"attachment-{index}", data=data))
    for defect in message.defects[:5]:
        notes.append(f"malformed MIME: {type(defect).__name__}")
    return text, attachments


def _filename_readable(part: EmailMessage) -> bool:
    try:
        part.get_filename()
    except Exception:  # noqa: BLE001
        return False
    return True


def _sender(message: Message) -> tuple[str, str]:
    """(display name, address) of From; address "" unless From names exactly one usable mailbox."""
    try:  # policy.default's parsed header: encoded words in the display name stay in the name
        header: Any = message["From"]
        mailboxes: tuple[Any, ...] = tuple(header.addresses) if header is not None else ()
        name, address = (mailboxes[0].display_name, mailboxes[0].addr_spec) if len(mailboxes) == 1 else ("", "")
    except Exception:  # noqa: BLE001 - e.g. CR/LF in an encoded display name: read the raw header instead
        raw = next((str(value) for key, value in message.raw_items() if key.lower() == "from"), "")
        angle = _ANGLE_ADDRESS.match(one_line(raw))
        name, address = (angle.group(1).strip().strip('"'), angle.group(2)) if angle else parseaddr(one_line(raw))
        with contextlib.suppress(Exception):  # an undecodable name stays as written
            name = str(make_header(decode_header(name)))
    if address.count("@") != 1 or any(ch.isspace() or ch in '<>"' for ch in address):
        address = ""
    return name, address


def parse_mail(raw: bytes, *, envelope_from: str | None = None, message_id: str | None = None) -> ParsedMail:
    """Everything the helpdesk needs of `raw`. A malformed mail is read as far as it goes; only one built to
    exhaust the parser (over MAX_MIME_PARTS parts, or nested too deep) raises MailUnreadable.

    `envelope_from`: SMTP's MAIL FROM ("" for the null sender of bounces); None when unknown (IMAP).
    `message_id`: the one stored with the mail (spares reading the headers twice); None: `message_id_of(raw)`.
    """
    parts = len(_PART_HEADER.findall(raw))
    if parts > MAX_MIME_PARTS:
        raise MailUnreadable(f"{parts} MIME parts (at most {MAX_MIME_PARTS} are read)")
    try:
        return _parse(raw, envelope_from, message_id)
    except RecursionError:
        raise MailUnreadable("MIME parts nested too deep") from None


def _parse(raw: bytes, envelope_from: str | None, message_id: str | None) -> ParsedMail:
    notes: list[str] = []
    warnings: list[str] = []
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    name, address = _sender(message)
    subject = _decoded_header(message, "Subject")
    for label, value in (("Subject", subject), ("sender's name", name)):
        if _LINE_BREAK.search(value):
            warnings.append(f"possible header injection: line breaks in the {label}, joined onto one line")
    text, attachments = _body_and_attachments(message, notes, warnings)
    token = _header(message, "X-Helpdesk-Token").strip().lower() or None
    return ParsedMail(
        message_id=message_id or message_id_of(raw),
        from_address=address.strip().lower(),
        from_name=one_line(name)[:100],  # one line: CR/LF from encoded words become spaces
        subject=one_line(subject)[:MAX_HEADER_CHARS],
        text=strip_quoted(text) if text else "",
        recipients=list(dict.fromkeys(_addresses(message, "To", "Cc", "Delivered-To", "X-Original-To"))),
        references=_references(message),
        helpdesk_token=token[:200] if token else None,
        auto_reply=auto_reply_reason(message, None if envelope_from is None else bool(envelope_from.strip("<> "))),
        attachments=attachments,
        notes=notes,
        warnings=warnings,
    )
