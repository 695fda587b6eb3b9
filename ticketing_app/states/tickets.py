"""States of the requester's pages: my tickets, new ticket, and one ticket."""

from __future__ import annotations

from typing import Any

import reflex as rx
from pydantic import ValidationError

from ticketing_app.errors import DomainError, NotAuthenticated
from ticketing_app.schemas import CommentCreate, TicketCreate, TicketFilters, TicketUpdate
from ticketing_app.services import tickets
from ticketing_app.states.base import AuthState, error_message
from ticketing_app.states.formatting import comment_row, event_row, ticket_row

PAGE_SIZE = 20


class MyTicketsState(AuthState):
    rows: list[dict[str, Any]] = []
    total: int = 0
    page_index: int = 0
    status_filter: str = "all"
    search: str = ""
    loading: bool = True
    error: str = ""

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @rx.event
    async def load(self) -> Any:
        self.loading = True
        status = None if self.status_filter == "all" else self.status_filter
        filters = TicketFilters(
            status=status, q=self.search or None, limit=PAGE_SIZE, offset=self.page_index * PAGE_SIZE
        )
        try:
            page = await self.actor_call(lambda s, u: tickets.list_tickets(s, u, filters))
        except NotAuthenticated:
            return rx.redirect("/login")
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        finally:
            self.loading = False
        self.rows = [ticket_row(t) for t in page.items]
        self.total = page.total
        self.error = ""
        return None

    @rx.event
    async def set_status_filter(self, value: str) -> Any:
        self.status_filter, self.page_index = value, 0
        return await self.load()

    @rx.event
    async def apply_search(self, form: dict[str, Any]) -> Any:
        self.search, self.page_index = str(form.get("q", "")).strip()[:200], 0
        return await self.load()

    @rx.event
    async def next_page(self) -> Any:
        if self.page_index + 1 < self.page_count:
            self.page_index += 1
        return await self.load()

    @rx.event
    async def previous_page(self) -> Any:
        self.page_index = max(0, self.page_index - 1)
        return await self.load()


class NewTicketState(AuthState):
    error: str = ""
    title_length: int = 0
    description_length: int = 0

    @rx.event
    def count_title(self, value: str) -> None:
        self.title_length = len(value)

    @rx.event
    def count_description(self, value: str) -> None:
        self.description_length = len(value)

    @rx.event
    async def submit(self, form: dict[str, Any]) -> Any:
        self.error = ""
        try:
            data = TicketCreate(title=str(form.get("title", "")), description=str(form.get("description", "")))
            ticket = await self.actor_call(lambda s, u: tickets.create_ticket(s, u, data))
        except NotAuthenticated:
            return rx.redirect("/login")
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        self.title_length = self.description_length = 0
        return rx.redirect(f"/tickets/{ticket.id}")


class TicketState(AuthState):
    ticket: dict[str, Any] = {}
    comments: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    can_manage: bool = False
    staff_view: bool = False
    is_requester: bool = False
    not_found: bool = False
    error: str = ""
    notice: str = ""

    def _ticket_id(self) -> int:
        """The id from the URL (/tickets/[ticket_id]); 0 when it is not a number."""
        raw = str(self.ticket_id)  # route argument var that Reflex installs on the root state
        return int(raw) if raw.isdigit() and len(raw) < 10 else 0

    @rx.event
    async def load(self) -> Any:
        from ticketing_app.services.visibility import can_manage, sees_staff_view

        ticket_id = self._ticket_id()

        def read(s, u):
            detail = tickets.get_ticket_detail(s, u, ticket_id)
            model = tickets.get_visible_ticket(s, u, ticket_id)
            return detail, can_manage(u, model), sees_staff_view(u, model)

        try:
            detail, manage, staff = await self.actor_call(read)
        except NotAuthenticated:
            return rx.redirect("/login")
        except DomainError:
            self.not_found, self.ticket, self.comments, self.timeline = True, {}, [], []
            return None
        self.not_found = False
        self.ticket = ticket_row(detail)
        self.comments = [comment_row(c) for c in detail.comments]
        self.timeline = [event_row(e) for e in reversed(detail.events)]
        self.can_manage, self.staff_view = manage, staff
        self.is_requester = detail.created_by.id == self.user_id
        return None

    @rx.event
    async def reply(self, form: dict[str, Any]) -> Any:
        self.error = ""
        ticket_id = self._ticket_id()
        try:
            data = CommentCreate(body=str(form.get("body", "")), internal=bool(form.get("internal")))
            await self.actor_call(lambda s, u: tickets.add_comment(s, u, ticket_id, data))
        except NotAuthenticated:
            return rx.redirect("/login")
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        self.notice = "Internal note added." if data.internal else "Reply sent."
        return [rx.set_value("reply-body", ""), TicketState.load]

    async def _update(self, data: TicketUpdate, notice: str) -> Any:
        self.error = ""
        ticket_id = self._ticket_id()
        try:
            await self.actor_call(lambda s, u: tickets.update_ticket(s, u, ticket_id, data))
        except NotAuthenticated:
            return rx.redirect("/login")
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        self.notice = notice
        return TicketState.load

    @rx.event
    async def set_status(self, status: str) -> Any:
        try:
            data = TicketUpdate(status=status)  # type: ignore[arg-type]
        except ValidationError as exc:
            self.error = error_message(exc)
            return None
        return await self._update(data, f"Status changed to {status.replace('_', ' ')}.")

    @rx.event
    async def override(self, form: dict[str, Any]) -> Any:
        fields = {k: v for k, v in form.items() if k in ("priority", "category", "reason") and v}
        try:
            data = TicketUpdate(**fields)
        except ValidationError as exc:
            self.error = error_message(exc)
            return None
        return await self._update(data, "Ticket updated.")
