"""States of the ticket pages: my tickets, new ticket, and one ticket (live: they follow changes)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from typing import Any

import reflex as rx
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import TicketStatus, label
from ticketing_app.errors import Conflict, DomainError, InvalidInput, TooLarge
from ticketing_app.models import User
from ticketing_app.schemas import CommentCreate, TicketCreate, TicketFilters, TicketUpdate
from ticketing_app.services import attachments, canned_replies, drafts, merge, presence, satisfaction, similar, tickets
from ticketing_app.states.base import (
    AuthState,
    UnexpectedEventArgument,
    a_flag,
    a_form,
    a_text,
    an_id,
    form_text,
    one_of,
    presents_errors,
)
from ticketing_app.states.formatting import (
    AttachmentRow,
    CannedOption,
    CommentRow,
    EventRow,
    SimilarRow,
    StaffOption,
    TicketRow,
    ViewerRow,
    attachment_row,
    comment_row,
    event_row,
    similar_row,
    staff_option,
    ticket_row,
)
from ticketing_app.states.live import LiveMixin
from ticketing_app.states.paging import PagedMixin

PAGE_SIZE = 20
ALL = "all"

# The upload areas of the new-ticket and reply forms (rx.upload ids).
NEW_TICKET_FILES = "new-ticket-files"
REPLY_FILES = "reply-files"
# Images are shown inline by their previews (small re-encoded copies made when they were stored), as data: URLs
# (the page's CSP allows img-src data:). At most PREVIEWS_PER_PAGE of them, so a ticket full of images keeps
# its page light.
PREVIEWS_PER_PAGE = 24
# A form sent without files (the uploads parameter is filled only by the upload endpoint).
NO_FILES: list[rx.UploadFile] = []


def _megabytes() -> str:
    return f"{get_settings().max_attachment_mb:g} MB"


async def read_uploads(uploads: Any) -> list[tuple[str, bytes]]:
    """The files a form sent, as (name, bytes): each one's size is checked before it is read (the upload
    endpoint spools them to disk), so nothing larger than MAX_ATTACHMENT_MB is ever held in memory."""
    if not isinstance(uploads, list) or not all(isinstance(u, rx.UploadFile) for u in uploads):
        raise UnexpectedEventArgument()
    if len(uploads) > attachments.MAX_FILES_PER_FORM:
        raise InvalidInput(f"Attach at most {attachments.MAX_FILES_PER_FORM} files at once.")
    limit = attachments.max_bytes()
    files = []
    for upload in uploads:
        name = attachments.safe_filename(upload.name or "file")
        if upload.size is not None and upload.size > limit:
            raise TooLarge(f"{name} is larger than {_megabytes()}; nothing was sent.")
        data = await asyncio.to_thread(upload.file.read, limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{name} is larger than {_megabytes()}; nothing was sent.")
        if not data:
            raise InvalidInput(f"{name} is empty; nothing was sent.")
        files.append((upload.name or "file", data))
    return files


def rejected_message(rejected: Any) -> str:
    """What the file picker refused, in words: a list of {"name", "codes"} (react-dropzone's error codes;
    components/files.py sends only these, never the files themselves)."""
    if not isinstance(rejected, list) or not rejected or len(rejected) > 1000:
        raise UnexpectedEventArgument()
    reasons = []
    for item in rejected:
        if not isinstance(item, dict) or not isinstance(item.get("codes"), list):
            raise UnexpectedEventArgument()
        name = attachments.safe_filename(a_text(item.get("name"), 1000))
        codes = {a_text(code, 100) for code in item["codes"]}
        if "too-many-files" in codes:
            return f"Attach at most {attachments.MAX_FILES_PER_FORM} files at once. Nothing was added."
        if "file-too-large" in codes:
            reasons.append(f"{name} is larger than {_megabytes()}.")
        elif "file-too-small" in codes:
            reasons.append(f"{name} is empty.")
        else:
            reasons.append(f"{name} cannot be attached.")
    shown = " ".join(reasons[:5]) + (f" And {len(reasons) - 5} more." if len(reasons) > 5 else "")
    return f"{shown} {'It was' if len(reasons) == 1 else 'They were'} not added."


def _data_url(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


class MyTicketsState(LiveMixin, PagedMixin, AuthState):
    rows: list[TicketRow] = []
    _page_size: int = PAGE_SIZE
    status_filter: str = ALL
    search: str = ""
    loading: bool = True
    error: str = ""

    def _filters(self) -> TicketFilters:
        status = None if self.status_filter == ALL else self.status_filter
        return TicketFilters(
            status=status,
            q=self.search or None,
            limit=PAGE_SIZE,
            offset=self._offset(),
        )

    def _marker_fn(self) -> Callable[[Session, User], str]:
        return lambda s, u: tickets.change_marker(s, u)

    @presents_errors
    async def _refresh(self) -> Any:
        # State reaches the browser when the event ends, so this is what it sees however the read ends.
        self.loading = False
        filters = self._filters()
        page = await self._actor_call(lambda s, u: tickets.list_tickets(s, u, filters))
        self.rows = [ticket_row(t) for t in page.items]
        self.total = page.total
        self.error = ""
        return None

    @rx.event
    async def load(self) -> Any:
        self.loading = True
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_status_filter(self, value: str) -> Any:
        self.status_filter, self.page_index = one_of(value, (ALL, *TicketStatus)), 0
        return await self._refresh()

    @rx.event
    @presents_errors
    async def apply_search(self, form: dict[str, Any]) -> Any:
        self.search, self.page_index = form_text(a_form(form), "q").strip()[:200], 0
        return await self._refresh()


class NewTicketState(AuthState):
    error: str = ""
    title_length: int = 0
    description_length: int = 0

    @rx.event
    @presents_errors
    async def count_title(self, value: str) -> None:
        self.title_length = len(a_text(value))

    @rx.event
    @presents_errors
    async def count_description(self, value: str) -> None:
        self.description_length = len(a_text(value))

    @rx.event
    @presents_errors
    async def files_rejected(self, rejected: list[dict[str, Any]]) -> None:
        self.error = rejected_message(rejected)

    @rx.event
    @presents_errors
    async def submit(self, form: dict[str, Any], uploads: list[rx.UploadFile] = NO_FILES) -> Any:
        """The form, sent through the upload endpoint with its files (none is fine): the ticket and its files
        are saved in one transaction, or nothing is."""
        self.error = ""
        form = a_form(form)
        data = TicketCreate(title=form_text(form, "title"), description=form_text(form, "description"))
        files = await read_uploads(uploads)
        address = self._client_address()
        ticket = await self._actor_call(
            lambda s, u: tickets.create_ticket_with_files(s, u, data, files, address=address)
        )
        self.title_length = self.description_length = 0
        return [rx.clear_selected_files(NEW_TICKET_FILES), rx.redirect(f"/tickets/{ticket.id}")]


class TicketState(LiveMixin, AuthState):
    ticket: TicketRow = TicketRow()
    ticket_files: list[AttachmentRow] = []  # on the ticket itself; a reply's are in its CommentRow
    comments: list[CommentRow] = []
    timeline: list[EventRow] = []
    staff_options: list[StaffOption] = []
    categories: list[str] = []
    can_manage: bool = False
    staff_view: bool = False
    is_requester: bool = False
    not_found: bool = False
    error: str = ""
    notice: str = ""
    # Controlled, and cleared after every send: a note meant to be internal must be ticked each time.
    internal_note: bool = False
    # Other staff on this ticket now, e.g. "Mo is typing a reply" (services/presence.py, via the live loop).
    viewers: list[ViewerRow] = []
    _typing_at: float = 0.0  # when this page last reported a key press in the reply box
    # The newest comment shown when the ticket was opened or last replied to: a reply sent while someone else's
    # newer one arrived is held back once with a warning (services/tickets.add_comment, 409).
    _seen_comment_id: int = 0
    canned_options: list[CannedOption] = []
    # The status a canned reply sets when the reply is sent ("" none); cleared after every send.
    reply_status: str = ""
    reply_status_label: str = ""
    # "Merge into…": the target found by number, shown for confirmation (its id stays on the server side).
    merge_target_number: str = ""
    merge_target_title: str = ""
    _merge_target_id: int = 0
    # Similar earlier tickets (staff): loaded once per visit; "pending" while this ticket's embedding is computed.
    similar_rows: list[SimilarRow] = []
    similar_note: str = ""
    draft_note: str = ""  # where the suggested reply came from

    @rx.event
    @presents_errors
    async def set_internal_note(self, value: bool) -> None:
        self.internal_note = a_flag(value)

    def _ticket_id(self) -> int:
        """The id from the URL (/tickets/[ticket_id]); 0 when it is not a number."""
        raw = str(self.ticket_id)  # type: ignore[attr-defined]  # the route argument Reflex adds to the root state
        return int(raw) if raw.isdigit() and len(raw) < 10 else 0

    def _marker_fn(self) -> Callable[[Session, User], str]:
        ticket_id = self._ticket_id()
        return lambda s, u: tickets.change_marker(s, u, ticket_id=ticket_id)

    def _live_side_fn(self) -> Callable[[Session, User], Any] | None:
        ticket_id, typing = self._ticket_id(), time.monotonic() - self._typing_at < presence.TYPING_SECONDS
        if not self.staff_view or not ticket_id:
            return None

        def report(s: Session, u: User) -> list[ViewerRow]:
            ticket = tickets.get_visible_ticket(s, u, ticket_id)
            return [ViewerRow(name=v.name, typing=v.typing) for v in presence.heartbeat(s, u, ticket, typing=typing)]

        return report

    async def _live_side(self, value: Any) -> None:
        self.viewers = value or []

    def _live_period(self) -> float:
        # Staff report in twice a second, so the others' pages show them within the 2 s the issue asks for.
        return presence.REPORT_SECONDS if self.staff_view else self._live_seconds

    async def _report_presence(self) -> None:
        """Report in now rather than at the live loop's next round (best effort: the loop reports again)."""
        report = self._live_side_fn()
        if report is None:
            return
        try:
            self.viewers = await self._actor_call(report)
        except DomainError:  # signed out, or no longer this person's ticket: the live loop ends the page
            return

    @rx.event
    async def typing(self) -> None:
        """A key press in the reply box (the page sends at most one a second): others see "… is typing".

        The first press after a pause is reported at once; while typing goes on, the live loop reports it."""
        was_typing = time.monotonic() - self._typing_at < presence.TYPING_SECONDS
        self._typing_at = time.monotonic()
        if not was_typing:
            await self._report_presence()

    def _lose_ticket(self, exc: DomainError) -> Any:
        """Not there, or not this person's to see: the not-found view, and nothing of the ticket kept."""
        self.not_found, self.ticket, self.comments, self.timeline = True, TicketRow(), [], []
        self.ticket_files = []
        return None

    @presents_errors(refused=_lose_ticket, denied=_lose_ticket)
    async def _refresh(self) -> Any:
        ticket_id = self._ticket_id()
        view, previews = await self._actor_call(lambda s, u: _view_with_previews(s, u, ticket_id))
        self.not_found = False
        self.ticket = ticket_row(view.detail)
        self.ticket_files = [attachment_row(a, previews) for a in view.detail.attachments]
        self.comments = [comment_row(c, previews) for c in view.detail.comments]
        self.timeline = [event_row(e) for e in reversed(view.detail.events)]
        self.can_manage, self.staff_view = view.can_manage, view.staff_view
        self.is_requester = view.detail.created_by.id == self.user_id
        self.staff_options = [staff_option(u) for u in view.assignable]
        self.categories = view.categories
        return None

    @rx.event
    async def load(self) -> Any:
        self.error = self.notice = ""
        self.reply_status = self.reply_status_label = ""
        self._forget_merge_target()
        self.viewers = []
        result = await self._refresh()
        if result is not None or self.not_found:  # signed out (to the log-in page), or not this person's
            return result
        self._seen_comment_id = max((c.id for c in self.comments), default=0)
        await self._report_presence()  # the other staff on this ticket see this page open at their next round
        await self._load_similar()
        return await self._load_canned()

    @presents_errors
    async def _load_similar(self) -> Any:
        """The similar-tickets panel, for staff working the ticket."""
        self.similar_rows, self.similar_note, self.draft_note = [], "", ""
        if self.staff_view:
            ticket_id = self._ticket_id()
            found = await self._actor_call(lambda s, u: similar.similar_tickets(s, u, ticket_id))
            self.similar_rows = [similar_row(item) for item in found.items]
            if not found.embedded:
                self.similar_note = "Still being analysed: similar tickets appear when the page is opened again."
            elif not found.items:
                self.similar_note = "No similar earlier ticket."
        return None

    @rx.event
    @presents_errors
    async def suggest_reply(self) -> Any:
        """Fill the reply box with a suggested reply for a person to edit and send (it is never sent by itself)."""
        ticket_id = self._ticket_id()
        draft = await self._actor_call(lambda s, u: drafts.reply_draft(s, u, ticket_id))
        sources = ", ".join(f"{s.number} ({s.title})" for s in draft.sources)
        if draft.provider == "gemini":
            self.draft_note = f"Written by Gemini from {sources}. Check it before sending."
        elif draft.provider == "offline":
            self.draft_note = f"From the reply that solved {sources}. Check it before sending."
        else:
            self.draft_note = "No similar resolved ticket: only a greeting and a sign-off."
        if draft.ai_status == "pending":
            self.draft_note += " Gemini is writing a draft: press again in a few seconds."
        elif draft.ai_status == "failed":
            self.draft_note += " (Gemini could not write one.)"
        return rx.set_value("reply-body", draft.body)

    @presents_errors
    async def _load_canned(self) -> Any:
        """The canned-reply picker, for staff working the ticket (loaded once per visit, not on each change)."""
        self.canned_options = []
        if self.staff_view:
            replies = await self._actor_call(lambda s, u: canned_replies.list_replies(s, u))
            self.canned_options = [
                CannedOption(id=str(r.id), label=r.title + (f" (sets {label(r.status).lower()})" if r.status else ""))
                for r in replies
            ]
        return None

    @rx.event
    @presents_errors
    async def insert_canned(self, value: str) -> Any:
        """Fill the reply box with a canned reply for this ticket; its status goes with the reply when sent."""
        reply_id, ticket_id = int(one_of(value, [o.id for o in self.canned_options])), self._ticket_id()
        rendered = await self._actor_call(lambda s, u: canned_replies.render(s, u, reply_id, ticket_id))
        self.reply_status = rendered.status or ""
        self.reply_status_label = label(rendered.status).lower() if rendered.status else ""
        return [rx.set_value("reply-body", rendered.body), rx.set_value("canned-picker", "")]

    @rx.event
    @presents_errors
    async def clear_reply_status(self) -> None:
        self.reply_status = self.reply_status_label = ""

    @rx.event
    @presents_errors
    async def files_rejected(self, rejected: list[dict[str, Any]]) -> None:
        self.notice, self.error = "", rejected_message(rejected)

    @rx.event
    @presents_errors
    async def reply(self, form: dict[str, Any], uploads: list[rx.UploadFile] = NO_FILES) -> Any:
        """The reply form, sent through the upload endpoint with its files: the comment and its files are
        saved in one transaction, or nothing is."""
        self.error = ""
        ticket_id = self._ticket_id()
        data = CommentCreate(
            body=form_text(a_form(form), "body"),
            internal=self.internal_note,
            last_seen_comment_id=self._seen_comment_id,
        )
        files = await read_uploads(uploads)
        address = self._client_address()
        # A canned reply's status goes with a public reply only, in the same transaction as the reply.
        status = TicketUpdate(status=self.reply_status) if self.reply_status and not data.internal else None

        def send(s: Session, u: User) -> None:
            tickets.add_comment(s, u, ticket_id, data, address=address, files=files)
            if status is not None:
                tickets.update_ticket(s, u, ticket_id, status)

        try:
            await self._actor_call(send)
        except Conflict:
            # Someone else replied meanwhile: show it and warn; the text stays, and sending again goes through.
            await self._refresh()
            self._seen_comment_id = max((c.id for c in self.comments), default=0)
            raise
        self.notice = "Internal note added." if data.internal else "Reply sent."
        if status is not None:
            self.notice = f"Reply sent; status changed to {self.reply_status_label}."
        self.internal_note = False
        self.reply_status = self.reply_status_label = ""
        self._typing_at = 0.0
        await self._refresh()
        self._seen_comment_id = max((c.id for c in self.comments), default=0)
        return [rx.set_value("reply-body", ""), rx.clear_selected_files(REPLY_FILES)]

    @rx.event
    @presents_errors
    async def rate(self, form: dict[str, Any]) -> Any:
        """The requester's rating of their resolved ticket (the page's good / bad buttons and comment)."""
        form = a_form(form)
        rating, comment, ticket_id = (
            one_of(form.get("rating"), ("good", "bad")),
            form_text(form, "comment"),
            self._ticket_id(),
        )
        self.error = self.notice = ""
        await self._actor_call(lambda s, u: satisfaction.rate(s, u, ticket_id, rating, comment or None))
        self.notice = "Thank you for your rating."
        return await self._refresh()

    @rx.event
    @presents_errors
    async def download_file(self, attachment_id: int) -> Any:
        """Start the download of a file of this ticket: a key for this user and file, valid for a couple of
        minutes, that the browser follows at once (services/attachments.py says why not a plain link)."""
        file_id, ticket_id = an_id(attachment_id), self._ticket_id()
        path, filename = await self._actor_call(lambda s, u: attachments.download_link(s, u, ticket_id, file_id))
        return rx.download(url=path, filename=filename)

    @presents_errors
    async def _update(self, fields: dict[str, Any], notice: str) -> Any:
        self.error = self.notice = ""
        ticket_id = self._ticket_id()
        data = TicketUpdate(**fields)
        await self._actor_call(lambda s, u: tickets.update_ticket(s, u, ticket_id, data))
        self.notice = notice
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_status(self, status: str) -> Any:
        status = one_of(status, tuple(TicketStatus))
        return await self._update({"status": status}, f"Status changed to {label(status).lower()}.")

    @rx.event
    @presents_errors
    async def override(self, form: dict[str, Any]) -> Any:
        form = a_form(form)
        fields = {k: form_text(form, k) for k in ("priority", "category", "reason") if form.get(k)}
        if not ({"priority", "category"} & set(fields)):
            self.error = "Choose a new priority or category."
            return None
        return await self._update(fields, "Ticket updated.")

    @rx.event
    @presents_errors
    async def reassign(self, form: dict[str, Any]) -> Any:
        form = a_form(form)
        raw = form_text(form, "assignee_id")
        if not raw.isdigit():
            self.error = "Choose who should work on this ticket."
            return None
        if len(raw) > 9:  # beyond the tables' key range: nobody
            return self._refused(UnexpectedEventArgument())
        fields = {"assignee_id": int(raw), "reason": form_text(form, "reason") or None}
        return await self._update(fields, "Reassigned.")

    def _forget_merge_target(self) -> None:
        self.merge_target_number = self.merge_target_title = ""
        self._merge_target_id = 0

    @rx.event
    @presents_errors
    async def find_merge_target(self, form: dict[str, Any]) -> Any:
        """The first step of "Merge into…": look the number up (the same checks as the merge) and ask to confirm."""
        self.error = self.notice = ""
        self._forget_merge_target()
        reference = form_text(a_form(form), "into", 40).strip()
        if not reference:
            self.error = "Enter the number of the ticket to merge into, e.g. TCK-1042."
            return None
        await self._ask_merge_into(reference)
        return None

    @rx.event
    @presents_errors
    async def merge_into_similar(self, similar_id: int) -> Any:
        """ "Merge into this" on a similar ticket: the same confirm step as "Merge into…", with that ticket as the
        target. Only a ticket the panel lists (read from the server's copy of it, not from the page)."""
        self.error = self.notice = ""
        self._forget_merge_target()
        wanted = an_id(similar_id)
        row = next((r for r in self.similar_rows if r.id == wanted), None)
        if row is None:  # a stale page or a crafted message
            raise UnexpectedEventArgument()
        await self._ask_merge_into(row.number)
        return None

    async def _ask_merge_into(self, reference: str) -> None:
        """Look the target up with merge.find_target (every rule of the merge) and show it for confirmation."""
        ticket_id = self._ticket_id()
        target = await self._actor_call(lambda s, u: merge.find_target(s, u, ticket_id, reference))
        self.merge_target_number, self.merge_target_title = target.number, target.title
        self._merge_target_id = target.id

    @rx.event
    @presents_errors
    async def confirm_merge(self, form: dict[str, Any]) -> Any:
        """The second step: merge this ticket into the target confirmed on the page (all rules checked again)."""
        self.error = self.notice = ""
        note, ticket_id, target = form_text(a_form(form), "note").strip(), self._ticket_id(), self._merge_target_id
        if not target:
            self.error = "Find the ticket to merge into first."
            return None
        original = await self._actor_call(lambda s, u: merge.merge_ticket(s, u, ticket_id, target, note or None))
        self.notice = f"Merged into {original.reference}."
        self._forget_merge_target()
        return await self._refresh()

    @rx.event
    @presents_errors
    async def cancel_merge(self) -> None:
        self._forget_merge_target()


def _view_with_previews(session: Session, actor: User, ticket_id: int) -> tuple[tickets.TicketView, dict[int, str]]:
    """The ticket page's data and, in the same transaction, data: URLs of the small images it shows (only
    files the view already let `actor` see)."""
    view = tickets.get_ticket_view(session, actor, ticket_id)
    detail = view.detail
    shown = [*detail.attachments, *(a for c in detail.comments for a in c.attachments)]
    wanted = [a.id for a in shown if a.content_type in attachments.PREVIEW_TYPES]
    found = attachments.previews(session, wanted[:PREVIEWS_PER_PAGE])
    return view, {file_id: _data_url(kind, data) for file_id, (kind, data) in found.items()}
