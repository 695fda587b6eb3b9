"""Files on tickets: stored in PostgreSQL, typed by their content, seen only by who may see the ticket."""

from __future__ import annotations

import hashlib
import unicodedata

import puremagic
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.errors import InvalidInput, TooLarge
from ticketing_app.models import Attachment, Comment, Ticket, User
from ticketing_app.text import control_pattern

__all__ = ["max_bytes", "safe_filename", "sniff_content_type", "store"]

MAX_FILENAME_CHARS = 255
_FILENAME_CONTROL = control_pattern(c1=True, line_separators=True)
GENERIC_TYPE = "application/octet-stream"


def max_bytes() -> int:
    """MAX_ATTACHMENT_MB in bytes."""
    return int(get_settings().max_attachment_mb * 1024 * 1024)


def safe_filename(name: str) -> str:
    """The file's own name without any path, control characters or quotes; never empty."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _FILENAME_CONTROL.sub("", name).replace('"', "'").strip().strip(".")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:20] if dot else ""
        name = (stem if dot else name)[: MAX_FILENAME_CHARS - len(ext) - 1] + (f".{ext}" if ext else "")
    return name or "file"


def sniff_content_type(data: bytes) -> str:
    """The type the bytes say they are (magic numbers), or plain text for valid UTF-8, else octet-stream."""
    try:
        sniffed = puremagic.from_string(data[:8192], mime=True)
    except (puremagic.PureError, ValueError):
        sniffed = ""
    if sniffed:
        return str(sniffed)
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return GENERIC_TYPE
    return "text/plain"


def store(
    session: Session,
    uploader: User,
    ticket: Ticket,
    *,
    filename: str,
    data: bytes,
    comment: Comment | None = None,
) -> Attachment:
    """Store one file on `ticket` (and `comment`), in the caller's transaction.

    The caller has already checked that `uploader` may see the ticket (and add the comment). Raises TooLarge
    above MAX_ATTACHMENT_MB and InvalidInput for an empty file.
    """
    if len(data) > max_bytes():
        raise TooLarge(f"The file is larger than {get_settings().max_attachment_mb:g} MB.")
    if not data:
        raise InvalidInput("The file is empty.", field="file")
    attachment = Attachment(
        ticket_id=ticket.id,
        comment_id=comment.id if comment else None,
        uploaded_by_id=uploader.id,
        filename=safe_filename(filename),
        content_type=sniff_content_type(data),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    session.add(attachment)
    session.flush()
    return attachment
