"""The canned replies page: staff list, write, change and delete the replies they share."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from ticketing_app.domain import Role, TicketStatus, label
from ticketing_app.errors import PermissionDenied
from ticketing_app.models import CannedReply
from ticketing_app.schemas import CannedReplyIn, CannedReplyUpdate
from ticketing_app.services import canned_replies
from ticketing_app.states.base import AuthState, a_form, an_id, form_text, one_of, presents_errors

NO_STATUS = "none"


@dataclasses.dataclass(frozen=True)
class CannedRow:
    id: int = 0
    title: str = ""
    body: str = ""
    status: str = NO_STATUS
    status_label: str = ""
    author: str = ""
    can_edit: bool = False


def _row(reply: CannedReply, user_id: int, role: str) -> CannedRow:
    return CannedRow(
        id=reply.id,
        title=reply.title,
        body=reply.body,
        status=reply.status or NO_STATUS,
        status_label=label(reply.status).lower() if reply.status else "",
        author=reply.created_by.name,
        can_edit=role == Role.ADMIN or reply.created_by_id == user_id,
    )


class CannedRepliesState(AuthState):
    rows: list[CannedRow] = []
    editing_id: int = 0  # 0: the form adds a new reply
    allowed: bool = True
    loading: bool = True
    error: str = ""
    notice: str = ""

    def _not_staff(self, exc: PermissionDenied, *_args: Any, **_kwargs: Any) -> Any:
        """Not staff: the not-allowed view, and nothing kept."""
        self.allowed, self.rows = False, []
        return None

    @presents_errors(denied=_not_staff)
    async def _refresh(self) -> Any:
        self.loading = False
        self.rows = await self._actor_call(
            lambda s, u: [_row(r, u.id, u.role) for r in canned_replies.list_replies(s, u)]
        )
        self.allowed = True
        return None

    @rx.event
    async def load(self) -> Any:
        self.loading, self.error, self.notice, self.editing_id = True, "", "", 0
        return await self._refresh()

    @rx.event
    @presents_errors
    async def save(self, form: dict[str, Any]) -> Any:
        self.error = self.notice = ""
        form = a_form(form)
        status_value = one_of(form.get("status") or NO_STATUS, (NO_STATUS, *TicketStatus))
        status = None if status_value == NO_STATUS else status_value
        title, body, editing = form_text(form, "title"), form_text(form, "body"), self.editing_id
        if editing:
            update = CannedReplyUpdate(title=title, body=body, status=status, clear_status=status is None)
            await self._actor_call(lambda s, u: canned_replies.update(s, u, editing, update))
            self.notice = "Canned reply saved."
        else:
            data = CannedReplyIn(title=title, body=body, status=status)
            await self._actor_call(lambda s, u: canned_replies.create(s, u, data))
            self.notice = "Canned reply added."
        self.editing_id = 0
        await self._refresh()
        return _fill_form("", "", NO_STATUS)

    @rx.event
    @presents_errors
    async def edit(self, reply_id: int) -> Any:
        reply_id = an_id(reply_id)
        row = next((r for r in self.rows if r.id == reply_id and r.can_edit), None)
        if row is None:
            self.error = "This canned reply cannot be changed here."
            return None
        self.editing_id, self.error, self.notice = reply_id, "", ""
        return _fill_form(row.title, row.body, row.status)

    @rx.event
    @presents_errors
    async def cancel_edit(self) -> Any:
        self.editing_id = 0
        return _fill_form("", "", NO_STATUS)

    @rx.event
    @presents_errors
    async def delete(self, reply_id: int) -> Any:
        reply_id = an_id(reply_id)
        self.error = self.notice = ""
        await self._actor_call(lambda s, u: canned_replies.delete(s, u, reply_id))
        self.notice = "Canned reply deleted."
        if self.editing_id == reply_id:
            self.editing_id = 0
        return await self._refresh()


def _fill_form(title: str, body: str, status: str) -> list[Any]:
    return [
        rx.set_value("canned-title", title),
        rx.set_value("canned-body", body),
        rx.set_value("canned-status", status),
    ]
