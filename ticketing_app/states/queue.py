"""The moderator queue: my assigned tickets by priority and due time; admins can look at all or unassigned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import reflex as rx
from sqlalchemy.orm import Session

from ticketing_app.config import get_settings
from ticketing_app.domain import Priority, TicketStatus, label
from ticketing_app.errors import PermissionDenied
from ticketing_app.models import User
from ticketing_app.schemas import BulkTicketUpdate, SavedFilterIn, TicketFilters, TicketUpdate
from ticketing_app.services import accounts, bulk, tickets
from ticketing_app.states.base import AuthState, a_flag, a_form, an_id, form_text, one_of, presents_errors
from ticketing_app.states.formatting import StaffOption, TicketRow, staff_option, ticket_row
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
    review_only: bool = False  # only tickets whose triage needs review
    search: str = ""
    allowed: bool = True
    loading: bool = True
    error: str = ""
    # Bulk actions: the rows ticked on this page, who tickets can go to, and this person's saved filters.
    selected: list[int] = []
    staff_options: list[StaffOption] = []
    saved_filters: list[StaffOption] = []  # (id, name) pairs, shaped like the staff options for a <select>
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
            needs_review=self.review_only,
            limit=PAGE_SIZE,
            offset=self._offset(),
        )

    def _marker_fn(self) -> Callable[[Session, User], str]:
        filters = self._filters()
        # The minute too: the SLA time left moves with the clock, so the rows are re-read once a minute.
        return lambda s, u: f"{tickets.change_marker(s, u, filters=filters)}:{datetime.now(UTC):%H%M}"

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
        self.rows, self.selected = [], []
        result = await self._refresh()
        if result is None and self.allowed:
            await self._load_extras()
        return result

    @presents_errors
    async def _load_extras(self) -> Any:
        staff, saved = await self._actor_call(lambda s, u: (accounts.assignable_staff(s, u), bulk.list_filters(s, u)))
        self.staff_options = [staff_option(u) for u in staff]
        self.saved_filters = [StaffOption(id=str(f.id), label=f.name) for f in saved]
        return None

    @rx.event
    @presents_errors
    async def toggle_selected(self, ticket_id: int, checked: bool) -> None:
        ticket_id, checked = an_id(ticket_id), a_flag(checked)
        chosen = [i for i in self.selected if i != ticket_id]
        self.selected = [*chosen, ticket_id] if checked else chosen

    @rx.event
    @presents_errors
    async def select_page(self, checked: bool) -> None:
        self.selected = [r.id for r in self.rows] if a_flag(checked) else []

    @rx.event
    @presents_errors
    async def apply_bulk(self, form: dict[str, Any]) -> Any:
        """The bulk bar: one change for every ticked ticket (each with the rules of one update)."""
        form = a_form(form)
        fields: dict[str, Any] = {}
        if status := form_text(form, "status"):
            fields["status"] = one_of(status, tuple(TicketStatus))
        if priority := form_text(form, "priority"):
            fields["priority"] = one_of(priority, tuple(Priority))
        if assignee := form_text(form, "assignee_id"):
            fields["assignee_id"] = an_id(int(one_of(assignee, [o.id for o in self.staff_options])))
        if reason := form_text(form, "reason"):
            fields["reason"] = reason
        if not self.selected or not set(fields) - {"reason"}:
            self.error = "Tick some tickets and choose a status, priority or assignee."
            return None
        data = BulkTicketUpdate(ticket_ids=self.selected, **fields)
        result = await self._actor_call(lambda s, u: bulk.bulk_update(s, u, data))
        self.selected, self.error = [f.id for f in result.failed], ""
        await self._refresh()
        message = f"Changed {len(result.updated)} ticket{'s' if len(result.updated) != 1 else ''}."
        if result.failed:
            reasons = "; ".join(sorted({f.detail for f in result.failed}))
            self.error = f"{len(result.failed)} not changed (still ticked): {reasons}"
        return rx.toast.success(message)

    @rx.event
    @presents_errors
    async def apply_saved(self, value: str) -> Any:
        """Switch to one of this person's saved filters."""
        filter_id = int(one_of(value, [f.id for f in self.saved_filters]))
        saved = await self._actor_call(
            lambda s, u: next((f for f in bulk.list_filters(s, u) if f.id == filter_id), None)
        )
        if saved is None:
            return await self._load_extras()
        f = TicketFilters.model_validate(saved.filters)
        self.status_filter = ACTIVE if f.active else (f.status or ANY)
        self.priority_filter, self.category_filter = f.priority or ANY, f.category or ANY
        self.scope = f.assigned if self.is_admin else "me"
        self.page_index, self.selected = 0, []
        return await self._refresh()

    @rx.event
    @presents_errors
    async def delete_saved(self, value: str) -> Any:
        """Delete one of this person's saved filters (the service refuses anyone else's)."""
        chosen = one_of(value, [f.id for f in self.saved_filters])
        name, filter_id = next(f.label for f in self.saved_filters if f.id == chosen), int(chosen)
        await self._actor_call(lambda s, u: bulk.delete_filter(s, u, filter_id))
        await self._load_extras()
        return rx.toast.success(f"Filter {name!r} deleted.")

    @rx.event
    @presents_errors
    async def save_current(self, form: dict[str, Any]) -> Any:
        data = SavedFilterIn(name=form_text(a_form(form), "name"), filters=self._filters())
        await self._actor_call(lambda s, u: bulk.save_filter(s, u, data))
        await self._load_extras()
        return rx.toast.success(f"Filter saved as {data.name!r}.")

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
    async def set_review_only(self, value: bool) -> Any:
        self.review_only, self.page_index = a_flag(value), 0
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
