"""The moderator queue: my assigned tickets by priority and due time; admins can look at all or unassigned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import Priority, TicketStatus, label
from ticketing_app.errors import PermissionDenied
from ticketing_app.models import User
from ticketing_app.schemas import TicketFilters, TicketUpdate
from ticketing_app.services import tickets
from ticketing_app.states.base import AuthState, a_form, an_id, form_text, one_of, presents_errors
from ticketing_app.states.formatting import TicketRow, ticket_row
from ticketing_app.states.live import LiveMixin
from ticketing_app.states.paging import PagedMixin

PAGE_SIZE = 25
ANY = "any"
ACTIVE = "active"
SCOPES = ("me", "any", "unassigned")


class QueueState(LiveMixin, PagedMixin, AuthState):
    rows: list[TicketRow] = []
    _page_size: int = PAGE_SIZE
    scope: str = "me"
    status_filter: str = ACTIVE
    priority_filter: str = ANY
    category_filter: str = ANY
    search: str = ""
    allowed: bool = True
    loading: bool = True
    error: str = ""
    _known_ids: set[int] = set()
    _seen_once: bool = False  # no toast for what was already there when the page opened

    def _filters(self) -> TicketFilters:
        return TicketFilters(
            active=self.status_filter == ACTIVE,
            status=None if self.status_filter in (ACTIVE, ANY) else self.status_filter,
            priority=None if self.priority_filter == ANY else self.priority_filter,
            category=None if self.category_filter == ANY else self.category_filter,
            q=self.search or None,
            assigned=self.scope,
            limit=PAGE_SIZE,
            offset=self._offset(),
        )

    def _marker_fn(self) -> Callable[[Session, User], str]:
        filters = self._filters()
        return lambda s, u: tickets.change_marker(s, u, filters=filters)

    def _denied(self, exc: PermissionDenied, *_args: Any, **_kwargs: Any) -> Any:
        """Not staff: the not-allowed view, and nothing of the queue kept."""
        self.allowed, self.rows, self.total = False, [], 0
        return None

    @presents_errors
    async def _refresh(self) -> Any:
        # State reaches the browser when the event ends, so this is what it sees however the read ends.
        self.loading = False
        filters = self._filters()
        page = await self._actor_call(lambda s, u: tickets.list_queue(s, u, filters))
        self.allowed, self.error = True, ""
        rows = [ticket_row(t) for t in page.items]
        new = [r for r in rows if r.id not in self._known_ids and r.assignee_id == self.user_id]
        first_load = not self._seen_once
        self._seen_once = True
        self._known_ids |= {r.id for r in rows}
        self.rows, self.total = rows, page.total
        if new and not first_load:
            names = ", ".join(r.number for r in new[:3])
            return rx.toast.info(f"New ticket assigned to you: {names}", duration=6000)
        return None

    @rx.event
    async def load(self) -> Any:
        self.loading = True
        self._known_ids, self._seen_once = set(), False
        self.rows = []
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_scope(self, value: str | list[str]) -> Any:
        chosen = value[0] if isinstance(value, list) and len(value) == 1 else value  # a segmented control's
        self.scope = one_of(chosen, SCOPES)
        self.page_index = 0
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_status_filter(self, value: str) -> Any:
        self.status_filter, self.page_index = one_of(value, (ACTIVE, ANY, *TicketStatus)), 0
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_priority_filter(self, value: str) -> Any:
        self.priority_filter, self.page_index = one_of(value, (ANY, *Priority)), 0
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_category_filter(self, value: str) -> Any:
        self.category_filter, self.page_index = one_of(value, (ANY, *get_settings().triage_categories)), 0
        return await self._refresh()

    @rx.event
    @presents_errors
    async def apply_search(self, form: dict[str, Any]) -> Any:
        self.search, self.page_index = form_text(a_form(form), "q").strip()[:200], 0
        return await self._refresh()

    @rx.event
    @presents_errors(denied=AuthState._refused)
    async def quick_status(self, ticket_id: int, status: str) -> Any:
        """Change a ticket's status straight from the queue."""
        ticket_id, status = an_id(ticket_id), one_of(status, tuple(TicketStatus))
        data = TicketUpdate(status=status)
        await self._actor_call(lambda s, u: tickets.update_ticket(s, u, ticket_id, data))
        await self._refresh()
        return rx.toast.success(f"Status changed to {label(status).lower()}.")
