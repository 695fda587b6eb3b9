"""The moderator queue page."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.badges import priority_badge, status_badge, ticket_title
from ticketing_app.components.layout import empty_state, error_callout, not_allowed, page
from ticketing_app.components.pager import pager
from ticketing_app.config import get_settings
from ticketing_app.domain import Priority, TicketStatus
from ticketing_app.pages import route
from ticketing_app.states.queue import ACTIVE, ANY, QueueState

STATUS_CHOICES = [str(s) for s in TicketStatus]
PRIORITY_CHOICES = [str(p) for p in Priority]


def _row(row: rx.Var) -> rx.Component:
    link = "/tickets/" + row.id.to_string()
    return rx.table.row(
        rx.table.cell(rx.link(row.number, href=link)),
        rx.table.cell(ticket_title(row, link), max_width="24em"),
        rx.table.cell(priority_badge(row.priority, row.priority_label)),
        rx.table.cell(row.category_label),
        rx.table.cell(status_badge(row.status, row.status_label)),
        rx.table.cell(
            rx.cond(
                row.overdue,
                rx.badge("Overdue " + row.due, color_scheme="red", high_contrast=True),
                rx.text(row.due, size="1"),
            )
        ),
        rx.table.cell(row.assignee),
        rx.table.cell(
            rx.select(
                STATUS_CHOICES,
                value=row.status,
                on_change=lambda value: QueueState.quick_status(row.id, value),
                size="1",
                custom_attrs={"aria-label": "Change status of " + row.number},
            )
        ),
        background=rx.cond(row.overdue, "var(--red-a2)", "transparent"),
        id="queue-row-" + row.id.to_string(),
    )


def _filters() -> rx.Component:
    return rx.flex(
        rx.cond(
            QueueState.is_admin,
            rx.segmented_control.root(
                rx.segmented_control.item("Mine", value="me"),
                rx.segmented_control.item("All", value="any"),
                rx.segmented_control.item("Unassigned", value="unassigned"),
                value=QueueState.scope,
                on_change=QueueState.set_scope,
                aria_label="Whose tickets",
            ),
        ),
        rx.select(
            [ACTIVE, ANY, *STATUS_CHOICES],
            value=QueueState.status_filter,
            on_change=QueueState.set_status_filter,
            custom_attrs={"aria-label": "Status"},
        ),
        rx.select(
            [ANY, *PRIORITY_CHOICES],
            value=QueueState.priority_filter,
            on_change=QueueState.set_priority_filter,
            custom_attrs={"aria-label": "Priority"},
        ),
        rx.select(
            [ANY, *get_settings().triage_categories],
            value=QueueState.category_filter,
            on_change=QueueState.set_category_filter,
            custom_attrs={"aria-label": "Category"},
        ),
        rx.form(
            rx.flex(
                rx.input(name="q", placeholder="Search tickets", aria_label="Search", id="search-box"),
                rx.button("Search", type="submit", variant="soft"),
                spacing="2",
            ),
            on_submit=QueueState.apply_search,
            reset_on_submit=False,
        ),
        spacing="3",
        wrap="wrap",
        margin_bottom="1em",
    )


@route("/queue", title="Queue · Helpdesk", on_load=[QueueState.load, QueueState.follow])
def queue_page() -> rx.Component:
    return page(
        rx.cond(
            QueueState.allowed,
            rx.box(
                _filters(),
                error_callout(QueueState.error),
                rx.cond(
                    QueueState.loading & (QueueState.rows.length() == 0),
                    rx.center(rx.spinner(), padding="2em"),
                    rx.cond(
                        QueueState.rows.length() == 0,
                        empty_state("Nothing in this queue. New tickets appear here as soon as they are routed."),
                        rx.box(
                            rx.table.root(
                                rx.table.header(
                                    rx.table.row(
                                        *[
                                            rx.table.column_header_cell(h)
                                            for h in (
                                                "Number",
                                                "Title",
                                                "Priority",
                                                "Category",
                                                "Status",
                                                "Due",
                                                "Assignee",
                                                "Quick status",
                                            )
                                        ]
                                    )
                                ),
                                rx.table.body(rx.foreach(QueueState.rows, _row)),
                                width="100%",
                            ),
                            overflow_x="auto",
                        ),
                    ),
                ),
                pager(QueueState),
                width="100%",
            ),
            not_allowed(),
        ),
        title="Queue",
    )
