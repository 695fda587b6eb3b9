"""The moderator queue page."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.badges import priority_badge, sla_clock, status_badge, ticket_title
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
        rx.table.cell(
            rx.checkbox(
                checked=QueueState.selected.contains(row.id),
                on_change=lambda checked: QueueState.toggle_selected(row.id, checked),
                aria_label="Select " + row.number,
                id="select-" + row.id.to_string(),
            )
        ),
        rx.table.cell(rx.link(row.number, href=link)),
        rx.table.cell(
            ticket_title(row, link),
            rx.cond(row.needs_review, rx.badge("Needs review", color_scheme="amber", high_contrast=True, ml="2")),
            max_width="24em",
        ),
        rx.table.cell(priority_badge(row.priority, row.priority_label)),
        rx.table.cell(row.category_label),
        rx.table.cell(status_badge(row.status, row.status_label)),
        rx.table.cell(
            rx.flex(
                sla_clock("Reply", row.first_response_left, row.first_response_late, "sla-first-" + row.id.to_string()),
                sla_clock("Resolve", row.resolution_left, row.resolution_late, "sla-resolution-" + row.id.to_string()),
                direction="column",
                spacing="1",
            ),
            title=rx.cond(row.due != "", "Due " + row.due, ""),
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
        rx.checkbox(
            "Needs review",
            checked=QueueState.review_only,
            on_change=QueueState.set_review_only,
            id="queue-needs-review",
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
        align="center",
        wrap="wrap",
        margin_bottom="1em",
    )


def _select(name: str, label: str, first: str, options: rx.Var | list[tuple[str, str]]) -> rx.Component:
    """A native <select> for a form (its value is submitted by name); "" is "leave as it is"."""
    items = (
        [rx.el.option(text, value=value) for value, text in options]
        if isinstance(options, list)
        else [rx.foreach(options, lambda o: rx.el.option(o.label, value=o.id))]
    )
    return rx.el.select(
        rx.el.option(first, value=""),
        *items,
        name=name,
        aria_label=label,
        style={"padding": "0.35em", "border_radius": "6px", "max_width": "16em"},
    )


def _bulk_bar() -> rx.Component:
    """Shown while tickets are ticked: one change for all of them."""
    return rx.cond(
        QueueState.selected.length() > 0,
        rx.form(
            rx.flex(
                rx.text(QueueState.selected.length(), " selected", weight="medium"),
                _select("status", "Set status of the selected tickets", "Status…", [(s, s) for s in STATUS_CHOICES]),
                _select(
                    "priority", "Set priority of the selected tickets", "Priority…", [(p, p) for p in PRIORITY_CHOICES]
                ),
                _select("assignee_id", "Assign the selected tickets to", "Assignee…", QueueState.staff_options),
                rx.input(
                    name="reason", placeholder="Reason (needed for priority)", aria_label="Reason", max_length=1000
                ),
                rx.button("Apply to selected", type="submit"),
                rx.button("Clear", type="button", variant="soft", on_click=QueueState.select_page(False)),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            on_submit=QueueState.apply_bulk,
            reset_on_submit=True,
            id="bulk-bar",
            padding="0.5em",
            border="1px solid var(--accent-a6)",
            border_radius="8px",
            margin_bottom="0.75em",
        ),
    )


def _saved_filters() -> rx.Component:
    return rx.flex(
        rx.cond(
            QueueState.saved_filters.length() > 0,
            rx.el.select(
                rx.el.option("Saved filters…", value="", disabled=True),
                rx.foreach(QueueState.saved_filters, lambda o: rx.el.option(o.label, value=o.id)),
                default_value="",
                on_change=QueueState.apply_saved,
                aria_label="Apply a saved filter",
                id="saved-filter-picker",
                style={"padding": "0.35em", "border_radius": "6px"},
            ),
        ),
        rx.foreach(
            QueueState.saved_filters,
            lambda o: rx.button(
                rx.icon("x", size=14),
                o.label,
                on_click=QueueState.delete_saved(o.id),
                variant="ghost",
                color_scheme="gray",
                size="1",
                aria_label="Delete saved filter " + o.label,
                title="Delete saved filter " + o.label,
            ),
        ),
        rx.form(
            rx.flex(
                rx.input(
                    name="name", placeholder="Name this filter", aria_label="Filter name", required=True, max_length=60
                ),
                rx.button("Save filter", type="submit", variant="soft"),
                spacing="2",
            ),
            on_submit=QueueState.save_current,
            reset_on_submit=True,
        ),
        spacing="3",
        align="center",
        wrap="wrap",
        margin_bottom="0.75em",
    )


@route("/queue", title="Queue · Helpdesk", on_load=[QueueState.load, QueueState.follow])
def queue_page() -> rx.Component:
    return page(
        rx.cond(
            QueueState.allowed,
            rx.box(
                _filters(),
                _saved_filters(),
                error_callout(QueueState.error),
                _bulk_bar(),
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
                                        rx.table.column_header_cell(
                                            rx.checkbox(
                                                checked=QueueState.selected.length() == QueueState.rows.length(),
                                                on_change=QueueState.select_page,
                                                aria_label="Select all tickets on this page",
                                                id="select-page",
                                            )
                                        ),
                                        *[
                                            rx.table.column_header_cell(h)
                                            for h in (
                                                "Number",
                                                "Title",
                                                "Priority",
                                                "Category",
                                                "Status",
                                                "Time left",
                                                "Assignee",
                                                "Quick status",
                                            )
                                        ],
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
