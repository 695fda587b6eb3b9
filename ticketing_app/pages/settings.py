"""The notification settings page: a labelled switch per kind of notification mail."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.layout import error_callout, page
from ticketing_app.pages import route
from ticketing_app.states.notifications import NotificationSettingsState, PreferenceRow

S = NotificationSettingsState


def _switch(row: PreferenceRow) -> rx.Component:
    control_id = f"notify-{row.kind}"
    return rx.flex(
        rx.switch(
            id=control_id,
            checked=row.enabled,
            on_change=lambda on: S.toggle(row.kind, on),
        ),
        rx.el.label(row.label, html_for=control_id),
        spacing="3",
        align="center",
    )


@route("/settings/notifications", title="Notifications · Helpdesk", on_load=S.load)
def notification_settings_page() -> rx.Component:
    return page(
        rx.card(
            rx.flex(
                error_callout(S.error),
                rx.text(
                    "Choose which e-mails you get. Mails about your account itself are always sent, and every "
                    "notification mail has an unsubscribe link.",
                    size="2",
                ),
                rx.cond(
                    S.loading,
                    rx.spinner(size="3"),
                    rx.el.fieldset(
                        rx.el.legend("E-mail me when", style={"font_weight": "500", "margin_bottom": "0.5em"}),
                        rx.flex(rx.foreach(S.rows, _switch), direction="column", spacing="3"),
                        style={"border": "none", "padding": "0", "margin": "0"},
                    ),
                ),
                rx.text(S.saved, size="2", color_scheme="green", role="status", id="notify-saved"),
                direction="column",
                spacing="4",
            ),
            max_width="40em",
        ),
        title="Notification settings",
    )
