"""State of the notification settings page: which kinds of mail the logged-in person gets."""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx

from ticketing_app.domain import NOTIFICATION_EMAIL_KINDS
from ticketing_app.services import notifications
from ticketing_app.states.base import AuthState, a_flag, one_of, presents_errors


@dataclasses.dataclass(frozen=True)
class PreferenceRow:
    kind: str
    label: str
    enabled: bool


def preference_rows(prefs: dict[str, bool]) -> list[PreferenceRow]:
    return [
        PreferenceRow(kind=kind, label=notifications.KIND_LABELS.get(kind, kind), enabled=on)
        for kind, on in prefs.items()
    ]


class NotificationSettingsState(AuthState):
    rows: list[PreferenceRow] = []
    loading: bool = True
    saved: str = ""
    error: str = ""

    @rx.event
    @presents_errors
    async def load(self) -> Any:
        self.loading, self.saved, self.error = True, "", ""
        prefs = await self._actor_call(lambda _s, user: notifications.preferences(user))
        self.rows = preference_rows(prefs)
        self.loading = False
        return None

    @rx.event
    @presents_errors
    async def toggle(self, kind: Any, enabled: Any) -> Any:
        """Save one switch at once; the page shows what the server now holds."""
        change = {one_of(kind, NOTIFICATION_EMAIL_KINDS): a_flag(enabled)}
        self.error = ""
        prefs = await self._actor_call(lambda s, user: notifications.set_preferences(s, user, change))
        self.rows = preference_rows(prefs)
        row = next((r for r in self.rows if r.kind in change), None)
        if row is not None:
            self.saved = f"Saved: '{row.label}' e-mails are {'on' if row.enabled else 'off'}."
        return None
