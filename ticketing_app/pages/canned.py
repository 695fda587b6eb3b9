"""The canned replies page (staff)."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.badges import plain_text
from ticketing_app.components.layout import empty_state, error_callout, not_allowed, page
from ticketing_app.domain import TicketStatus, label
from ticketing_app.pages import route
from ticketing_app.services.canned_replies import PLACEHOLDERS
from ticketing_app.states.canned import NO_STATUS, CannedRepliesState

S = CannedRepliesState
PLACEHOLDER_HELP = "Placeholders: " + ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)


def _form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.flex(
                rx.heading(rx.cond(S.editing_id > 0, "Change canned reply", "New canned reply"), size="4", as_="h2"),
                rx.el.label("Title", html_for="canned-title", style={"font_weight": "500"}),
                rx.input(id="canned-title", name="title", required=True, max_length=100),
                rx.el.label("Reply", html_for="canned-body", style={"font_weight": "500"}),
                rx.text_area(id="canned-body", name="body", required=True, max_length=10000, rows="5"),
                rx.text(PLACEHOLDER_HELP, size="1", color_scheme="gray"),
                rx.el.label("When sent, set the status to", html_for="canned-status", style={"font_weight": "500"}),
                rx.el.select(
                    rx.el.option("leave it as it is", value=NO_STATUS),
                    *[rx.el.option(label(s).lower(), value=str(s)) for s in TicketStatus],
                    id="canned-status",
                    name="status",
                    style={"padding": "0.35em", "border_radius": "6px", "max_width": "20em"},
                ),
                rx.flex(
                    rx.button(rx.cond(S.editing_id > 0, "Save", "Add"), type="submit"),
                    rx.cond(
                        S.editing_id > 0,
                        rx.button("Cancel", type="button", variant="soft", on_click=S.cancel_edit),
                    ),
                    spacing="2",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=S.save,
            reset_on_submit=False,
        ),
        width="100%",
    )


def _reply(row: rx.Var) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.text(row.title, weight="bold"),
            rx.cond(row.status_label != "", rx.badge("sets ", row.status_label, color_scheme="indigo")),
            rx.spacer(),
            rx.text("by ", row.author, size="1", color_scheme="gray"),
            rx.cond(
                row.can_edit,
                rx.flex(
                    rx.button(
                        "Edit", size="1", variant="soft", on_click=S.edit(row.id), aria_label="Edit " + row.title
                    ),
                    rx.button(
                        "Delete",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=S.delete(row.id),
                        aria_label="Delete " + row.title,
                    ),
                    spacing="2",
                ),
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        plain_text(row.body, size="2"),
        id="canned-" + row.id.to_string(),
        width="100%",
    )


@route("/canned-replies", title="Canned replies · Helpdesk", on_load=CannedRepliesState.load)
def canned_replies_page() -> rx.Component:
    return page(
        rx.cond(
            S.allowed,
            rx.flex(
                error_callout(S.error),
                rx.cond(S.notice != "", rx.callout(S.notice, color_scheme="green", role="status")),
                _form(),
                rx.cond(
                    S.loading,
                    rx.center(rx.spinner(), padding="2em"),
                    rx.cond(
                        S.rows.length() > 0,
                        rx.flex(rx.foreach(S.rows, _reply), direction="column", spacing="2", width="100%"),
                        empty_state("No canned replies yet."),
                    ),
                ),
                direction="column",
                spacing="3",
            ),
            not_allowed(),
        ),
        title="Canned replies",
    )
