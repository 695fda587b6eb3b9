"""Files on tickets: stored in PostgreSQL, typed by their content, seen only by who may see the ticket.

Who sees a file: whoever sees its ticket; a file on an internal note only staff who see the staff view
(services/visibility.py). Anything else answers NotFound, as for tickets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import struct
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

import puremagic
from PIL import Image
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session, undefer

from ticketing_app.config import get_settings
from ticketing_app.domain import EventKind, ThrottleBucket
from ticketing_app.errors import InvalidInput, NotAuthenticated, NotFound, TooLarge
from ticketing_app.models import Attachment, Comment, Ticket, User
from ticketing_app.schemas import MAX_ID, AttachmentOut
from ticketing_app.services import events, throttle
from ticketing_app.services.visibility import can_see, sees_staff_view
from ticketing_app.text import control_pattern

__all__ = [
    "MAX_FILES_PER_FORM",
    "PREVIEW_TYPES",
    "attachment_out",
    "content_disposition",
    "count_upload",
    "download_key",
    "download_link",
    "get_for_download",
    "make_preview",
    "max_bytes",
    "previews",
    "read_download_key",
    "safe_filename",
    "served_content_type",
    "sniff_content_type",
    "store",
    "upload",
    "visible_attachments",
]

MAX_FILENAME_CHARS = 255
MAX_FILES_PER_FORM = 10  # the browser's new-ticket and reply forms
_FILENAME_CONTROL = control_pattern(c1=True, line_separators=True)
GENERIC_TYPE = "application/octet-stream"
# Images a browser may show inline as a preview. Never SVG: it is a document that can carry script.
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Types that a browser would run or render as a document when opened: always served as octet-stream.
_ACTIVE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript", "x-sh", "x-httpd", "x-shockwave")
DOWNLOAD_KEY_SECONDS = 120
PREVIEW_PIXELS = 480  # the longest side of a preview
# Images larger than this are not decoded for a preview (a few bytes of PNG can claim gigapixels).
PREVIEW_MAX_SOURCE_PIXELS = 40_000_000

log = logging.getLogger(__name__)


def max_bytes() -> int:
    """MAX_ATTACHMENT_MB in bytes."""
    return int(get_settings().max_attachment_mb * 1024 * 1024)


def _too_large() -> TooLarge:
    return TooLarge(f"The file is larger than {get_settings().max_attachment_mb:g} MB.")


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
        return str(sniffed)[:100]
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return GENERIC_TYPE
    return "text/plain"


def served_content_type(content_type: str) -> str:
    """The Content-Type a download is served with: the sniffed type, except anything a browser would render
    as a document or run (HTML, SVG, XML, scripts), which is served as octet-stream."""
    lowered = content_type.lower()
    if any(marker in lowered for marker in _ACTIVE_MARKERS) or "/" not in lowered:
        return GENERIC_TYPE
    if lowered.startswith("text/"):
        return "text/plain; charset=utf-8" if lowered == "text/plain" else GENERIC_TYPE
    return lowered


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact one in RFC 5987 form (RFC 6266), safe for any
    name: quotes, backslashes, control and non-ASCII characters never reach the header as they are."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in filename) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def make_preview(data: bytes, content_type: str) -> bytes | None:
    """A small copy of a PNG, JPEG, GIF or WebP image, re-encoded (PNG when it has transparency, else JPEG)
    without any of the file's metadata; None for anything else or anything Pillow cannot read safely."""
    if content_type not in PREVIEW_TYPES:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > PREVIEW_MAX_SOURCE_PIXELS or image.format not in ("PNG", "JPEG", "GIF", "WEBP"):
                return None
            image.draft("RGB", (PREVIEW_PIXELS, PREVIEW_PIXELS))  # JPEG: decode at a reduced size
            image.seek(0)  # an animation's first frame
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            frame = image.convert("RGBA" if has_alpha else "RGB")
            frame.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
            out = io.BytesIO()
            if has_alpha:
                frame.save(out, format="PNG", optimize=True)
            else:
                frame.save(out, format="JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as exc:
        log.info("no preview for a %s file: %s", content_type, exc.__class__.__name__)
        return None


def store(
    session: Session,
    uploader: User,
    ticket: Ticket,
    *,
    filename: str,
    data: bytes,
    comment: Comment | None = None,
) -> Attachment:
    """Store one file on `ticket` (and `comment`), with its audit event, in the caller's transaction.

    The caller has already checked that `uploader` may see the ticket (and add the comment). Raises TooLarge
    above MAX_ATTACHMENT_MB and InvalidInput for an empty file.
    """
    if len(data) > max_bytes():
        raise _too_large()
    if not data:
        raise InvalidInput(f"The file {safe_filename(filename)} is empty.", field="file")
    content_type = sniff_content_type(data)
    attachment = Attachment(
        ticket_id=ticket.id,
        comment_id=comment.id if comment else None,
        uploaded_by_id=uploader.id,
        filename=safe_filename(filename),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        preview=make_preview(data, content_type),
    )
    session.add(attachment)
    session.flush()
    # `internal` hides the line from requesters' timelines, like the note it belongs to.
    events.record(
        session,
        ticket,
        EventKind.ATTACHED,
        uploader,
        attachment_id=attachment.id,
        filename=attachment.filename,
        comment_id=attachment.comment_id,
        internal=bool(comment and comment.internal),
    )
    ticket.updated_at = datetime.now(UTC)  # the live pages follow updated_at
    return attachment


def count_upload(session: Session, actor: User, address: str | None, files: int = 1) -> None:
    """Count `files` uploads against ATTACHMENTS_MAX_PER_USER / _PER_ADDRESS (TooManyAttempts past them)."""
    settings = get_settings()
    for _ in range(files):
        for bucket, key, limit in (
            (ThrottleBucket.ATTACHMENT_USER, str(actor.id), settings.attachments_max_per_user),
            (ThrottleBucket.ATTACHMENT_ADDRESS, address, settings.attachments_max_per_address),
        ):
            throttle.hit(
                session,
                bucket,
                key,
                limit=limit,
                window_seconds=settings.rate_window_seconds,
                message="You are uploading files too quickly.",
            )


def _visible_ticket(session: Session, actor: User, ticket_id: int) -> Ticket:
    # As services.tickets.get_visible_ticket (which imports this module, hence not imported from there).
    ticket = session.get(Ticket, ticket_id) if 0 < ticket_id <= MAX_ID else None
    if ticket is None or not can_see(actor, ticket):
        raise NotFound("Ticket not found.")
    return ticket


def upload(
    session: Session,
    actor: User,
    ticket_id: int,
    *,
    filename: str,
    data: bytes,
    comment_id: int | None = None,
    address: str | None = None,
) -> Attachment:
    """Attach a file to a ticket `actor` may see, or to one of their own comments on it.

    Counted by the upload rate limits. A comment that is not the actor's own on this ticket (or one they can
    no longer see) is refused with InvalidInput on `comment_id`.
    """
    count_upload(session, actor, address)
    ticket = _visible_ticket(session, actor, ticket_id)
    comment = None
    if comment_id is not None:
        comment = session.get(Comment, comment_id) if 0 < comment_id <= MAX_ID else None
        if (
            comment is None
            or comment.ticket_id != ticket.id
            or comment.author_id != actor.id
            or (comment.internal and not sees_staff_view(actor, ticket))
        ):
            raise InvalidInput("comment_id must name one of your own comments on this ticket.", field="comment_id")
    return store(session, actor, ticket, filename=filename, data=data, comment=comment)


def _visible_attachment(
    session: Session, actor: User, ticket_id: int, attachment_id: int, *, with_data: bool
) -> Attachment:
    ticket = _visible_ticket(session, actor, ticket_id)
    if not 0 < attachment_id <= 2**63 - 1:
        raise NotFound("File not found.")
    query = (
        select(Attachment, Comment.internal)
        .outerjoin(Comment, Comment.id == Attachment.comment_id)
        .where(Attachment.id == attachment_id, Attachment.ticket_id == ticket.id)
    )
    row = session.execute(query.options(undefer(Attachment.data)) if with_data else query).first()
    if row is None or (row.internal and not sees_staff_view(actor, ticket)):
        raise NotFound("File not found.")
    attachment: Attachment = row[0]
    return attachment


def get_for_download(session: Session, actor: User, ticket_id: int, attachment_id: int) -> Attachment:
    """The file with its bytes, if `actor` may see it; NotFound otherwise (never whether it exists)."""
    return _visible_attachment(session, actor, ticket_id, attachment_id, with_data=True)


def download_link(session: Session, actor: User, ticket_id: int, attachment_id: int) -> tuple[str, str]:
    """(path with a short-lived download key, file name) for a file `actor` may see; NotFound otherwise."""
    attachment = _visible_attachment(session, actor, ticket_id, attachment_id, with_data=False)
    key = download_key(attachment.id, actor)
    return f"/api/tickets/{ticket_id}/attachments/{attachment.id}?key={key}", attachment.filename


def attachment_out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        created_at=attachment.created_at,
    )


def _metadata(session: Session, condition: ColumnElement[bool]) -> Sequence[Attachment]:
    # `data` is deferred on the model: listing never reads the bytes.
    return session.scalars(select(Attachment).where(condition).order_by(Attachment.id)).all()


def visible_attachments(
    session: Session, ticket_ids: Iterable[int], comment_ids: Iterable[int] = ()
) -> tuple[dict[int, list[AttachmentOut]], dict[int, list[AttachmentOut]]]:
    """One query: the files on each ticket itself, and on each of `comment_ids` (the comments the viewer
    sees; files of any other comment are left out). Returns (by ticket id, by comment id)."""
    tickets, comments = list(dict.fromkeys(ticket_ids)), set(comment_ids)
    by_ticket: dict[int, list[AttachmentOut]] = defaultdict(list)
    by_comment: dict[int, list[AttachmentOut]] = defaultdict(list)
    if not tickets:
        return by_ticket, by_comment
    condition: ColumnElement[bool] = Attachment.ticket_id.in_(tickets)
    if not comments:
        condition = and_(condition, Attachment.comment_id.is_(None))
    for attachment in _metadata(session, condition):
        if attachment.comment_id is None:
            by_ticket[attachment.ticket_id].append(attachment_out(attachment))
        elif attachment.comment_id in comments:
            by_comment[attachment.comment_id].append(attachment_out(attachment))
    return by_ticket, by_comment


def previews(session: Session, attachment_ids: Iterable[int]) -> dict[int, tuple[str, bytes]]:
    """(type, bytes) of the previews of `attachment_ids` that have one: the caller has already decided that
    its viewer sees those files."""
    ids = list(attachment_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Attachment.id, Attachment.preview).where(Attachment.id.in_(ids), Attachment.preview.is_not(None))
    ).all()
    return {row.id: ("image/png" if row.preview.startswith(b"\x89PNG") else "image/jpeg", row.preview) for row in rows}


# ----- short-lived download keys for the browser -----
#
# The browser keeps its access token in localStorage, not in a cookie (README "Sessions"), so a plain link
# to the download endpoint would arrive unauthenticated. The ticket page's "Download" button instead asks its
# state (authorised by the state's user, over the websocket) for a key that names that user, their token
# version and that one file and lapses after DOWNLOAD_KEY_SECONDS, and the browser follows it at once. The key
# is never rendered into a page, and every use checks again that its user is active, still on that token
# version and still allowed to see the file. (Reflex's rx.download with the bytes themselves was considered:
# it sends the whole file base64-encoded through the state's websocket, up to MAX_ATTACHMENT_MB at a time.)

_KEY_PURPOSE = b"helpdesk-attachment-download-v1"
_KEY_FORMAT = ">QIIQ"  # attachment id, user id, token version, expiry (unix seconds)
_SIGNATURE_BYTES = 16


def _key_secret() -> bytes:
    return hmac.new(get_settings().resolved_jwt_secret().encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def download_key(attachment_id: int, user: User, *, now: float | None = None) -> str:
    """A key to download one file as `user` for the next DOWNLOAD_KEY_SECONDS."""
    expires = int((now if now is not None else time.time()) + DOWNLOAD_KEY_SECONDS)
    payload = struct.pack(_KEY_FORMAT, attachment_id, user.id, user.token_version or 0, expires)
    signature = hmac.new(_key_secret(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(payload + signature).decode().rstrip("=")


def read_download_key(session: Session, key: str, attachment_id: int) -> User:
    """The active user a genuine, unexpired key for `attachment_id` names; NotAuthenticated otherwise."""
    refused = NotAuthenticated("This download link has expired. Download the file again from its ticket.")
    size = struct.calcsize(_KEY_FORMAT) + _SIGNATURE_BYTES
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)) if len(key) < 100 else b""
    except ValueError:
        raise refused from None
    if len(raw) != size:
        raise refused
    payload, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
    expected = hmac.new(_key_secret(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    if not hmac.compare_digest(signature, expected):
        raise refused
    key_attachment, user_id, version, expires = struct.unpack(_KEY_FORMAT, payload)
    if key_attachment != attachment_id or expires < time.time():
        raise refused
    user = session.get(User, user_id)
    if user is None or not user.is_active or (user.token_version or 0) != version:
        raise refused
    return user
