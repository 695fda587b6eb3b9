"""Requester pages: my tickets, submit a ticket, and the ticket page."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.badges import plain_text, priority_badge, sla_clock, status_badge, ticket_title
from ticketing_app.components.files import file_list, file_picker
from ticketing_app.components.layout import empty_state, error_callout, page
from ticketing_app.components.pager import pager
from ticketing_app.domain import Priority, TicketStatus, TriageStatus
from ticketing_app.pages import route
from ticketing_app.states.tickets import (
    ALL,
    NEW_TICKET_FILES,
    REPLY_FILES,
    MyTicketsState,
    NewTicketState,
    TicketState,
)


def _ticket_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row.number, href="/tickets/" + row.id.to_string())),
        rx.table.cell(ticket_title(row, "/tickets/" + row.id.to_string()), max_width="28em"),
        rx.table.cell(status_badge(row.status, row.status_label)),
        rx.table.cell(priority_badge(row.priority, row.priority_label)),
        rx.table.cell(row.category_label),
        rx.table.cell(row.assignee),
        rx.table.cell(rx.text(row.updated, size="1", color_scheme="gray")),
    )


@route("/tickets", title="My tickets · Helpdesk", on_load=[MyTicketsState.load, MyTicketsState.follow])
def my_tickets_page() -> rx.Component:
    return page(
        rx.flex(
            rx.select(
                [ALL, *(str(s) for s in TicketStatus)],
                value=MyTicketsState.status_filter,
                on_change=MyTicketsState.set_status_filter,
                custom_attrs={"aria-label": "Filter by status"},  # reaches the trigger; aria_label would not
            ),
            rx.form(
                rx.flex(
                    rx.input(
                        name="q",
                        placeholder="Search title, text, replies or TCK-number",
                        aria_label="Search",
                        id="search-box",
                    ),
                    rx.button("Search", type="submit", variant="soft"),
                    spacing="2",
                ),
                on_submit=MyTicketsState.apply_search,
                reset_on_submit=False,
            ),
            rx.spacer(),
            rx.link(rx.button("New ticket", tab_index=-1), href="/tickets/new"),  # one tab stop: the link
            spacing="3",
            wrap="wrap",
            margin_bottom="1em",
        ),
        error_callout(MyTicketsState.error),
        rx.cond(
            MyTicketsState.loading & (MyTicketsState.rows.length() == 0),
            rx.center(rx.spinner(), padding="2em"),
            rx.cond(
                MyTicketsState.rows.length() == 0,
                empty_state("No tickets yet. Submit one and the AI will triage it in seconds."),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(h)
                                    for h in (
                                        "Number",
                                        "Title",
                                        "Status",
                                        "Priority",
                                        "Category",
                                        "Assignee",
                                        "Updated",
                                    )
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(MyTicketsState.rows, _ticket_row)),
                        width="100%",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
            ),
        ),
        pager(MyTicketsState),
        title="My tickets",
    )


@route("/tickets/new", title="New ticket · Helpdesk", on_load=NewTicketState.require_login)
def new_ticket_page() -> rx.Component:
    return page(
        rx.card(
            rx.form(
                rx.flex(
                    error_callout(NewTicketState.error),
                    rx.el.label("Title", html_for="title", style={"font_weight": "500"}),
                    rx.input(
                        id="title",
                        name="title",
                        required=True,
                        min_length=3,
                        max_length=200,
                        size="3",
                        on_change=NewTicketState.count_title.debounce(200),
                    ),
                    rx.text(
                        NewTicketState.title_length, " / 200 characters (at least 3)", size="1", color_scheme="gray"
                    ),
                    rx.el.label("Describe the problem", html_for="description", style={"font_weight": "500"}),
                    rx.text_area(
                        id="description",
                        name="description",
                        required=True,
                        max_length=10000,
                        rows="8",
                        size="3",
                        on_change=NewTicketState.count_description.debounce(300),
                    ),
                    rx.text(NewTicketState.description_length, " / 10,000 characters", size="1", color_scheme="gray"),
                    file_picker(NEW_TICKET_FILES, NewTicketState.files_rejected),
                    rx.button("Submit ticket", type="submit", size="3"),
                    direction="column",
                    spacing="2",
                ),
                # Sent through Reflex's upload endpoint with the chosen files (or none): one event, so the
                # ticket and its files are saved together.
                on_submit=lambda form: NewTicketState.submit(form, rx.upload_files(upload_id=NEW_TICKET_FILES)),
                reset_on_submit=False,
            ),
            width="100%",
        ),
        title="Submit a ticket",
    )


def _ai_panel() -> rx.Component:
    t = TicketState.ticket
    return rx.card(
        rx.heading("AI triage", size="4", margin_bottom="0.5em", as_="h2"),
        rx.cond(
            t.triage_status == TriageStatus.PENDING,
            rx.flex(rx.spinner(), rx.text("AI is triaging…"), spacing="2", align="center", id="triage-pending"),
            rx.flex(
                rx.flex(priority_badge(t.priority, t.priority_label), rx.badge(t.category_label), spacing="2"),
                plain_text(t.summary, id="ai-summary"),
                rx.text("Skills: ", t.skills, size="2"),
                rx.cond(
                    TicketState.staff_view,
                    rx.flex(
                        rx.text("Helpful notes", weight="bold", size="2"),
                        plain_text(t.helpful_notes, size="2", id="ai-notes"),
                        rx.text("Routing: ", t.assignment_reason, size="2", color_scheme="gray"),
                        direction="column",
                        spacing="1",
                    ),
                ),
                rx.text("By ", t.triage_provider, " ", t.confidence, size="1", color_scheme="gray"),
                rx.cond(
                    t.needs_review,
                    rx.badge("Needs review: low triage confidence", color_scheme="amber", high_contrast=True),
                ),
                direction="column",
                spacing="2",
                id="triage-result",
            ),
        ),
        width="100%",
    )


def _sla_target(name: str, due: rx.Var, left: rx.Var, late: rx.Var, id: str) -> rx.Component:
    return rx.flex(
        rx.text(name, weight="medium", size="2"),
        rx.text("due ", due, size="2", color_scheme="gray"),
        sla_clock("Now", left, late, id),
        direction="column",
        spacing="1",
    )


def _sla_panel() -> rx.Component:
    """Both SLA targets and where the ticket stands, in business time (staff working it only)."""
    t = TicketState.ticket
    return rx.cond(
        TicketState.staff_view & ((t.first_response_due != "") | (t.due != "")),
        rx.card(
            rx.heading("Service level", size="4", margin_bottom="0.5em", as_="h2"),
            rx.flex(
                _sla_target(
                    "First response", t.first_response_due, t.first_response_left, t.first_response_late, "sla-first"
                ),
                _sla_target("Resolution", t.due, t.resolution_left, t.resolution_late, "sla-resolution"),
                direction="column",
                spacing="3",
            ),
            rx.text(
                "Counted in business hours; paused while pending.", size="1", color_scheme="gray", margin_top="0.5em"
            ),
            width="100%",
            id="sla-panel",
        ),
    )


def _comment(c: rx.Var) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.text(c.author, weight="bold", size="2"),
            rx.cond(c.internal, rx.badge("Internal note", color_scheme="amber")),
            rx.spacer(),
            rx.text(c.created, size="1", color_scheme="gray"),
            spacing="2",
        ),
        plain_text(c.body, size="2", margin_top="0.25em"),
        file_list(c.attachments, TicketState.download_file),
        background=rx.cond(c.internal, "var(--amber-a3)", "transparent"),
        width="100%",
    )


def _actions() -> rx.Component:
    return rx.flex(
        rx.cond(
            TicketState.can_manage,
            rx.flex(
                rx.button("Start", on_click=TicketState.set_status(TicketStatus.IN_PROGRESS), variant="soft"),
                rx.button(
                    "Wait on requester",
                    on_click=TicketState.set_status(TicketStatus.PENDING),
                    variant="soft",
                    color_scheme="purple",
                    title="Pending: the SLA clock pauses until the requester replies",
                ),
                rx.button(
                    "Resolve",
                    on_click=TicketState.set_status(TicketStatus.RESOLVED),
                    color_scheme="green",
                    high_contrast=True,
                ),
                rx.button(
                    "Close", on_click=TicketState.set_status(TicketStatus.CLOSED), variant="soft", color_scheme="gray"
                ),
                rx.button("Reopen", on_click=TicketState.set_status(TicketStatus.OPEN), variant="soft"),
                spacing="2",
                wrap="wrap",
            ),
            rx.cond(
                TicketState.is_requester
                & (
                    (TicketState.ticket.status == TicketStatus.RESOLVED)
                    | (TicketState.ticket.status == TicketStatus.CLOSED)
                ),
                rx.button("Reopen ticket", on_click=TicketState.set_status(TicketStatus.OPEN), variant="soft"),
            ),
        ),
        spacing="2",
    )


def _rating() -> rx.Component:
    """The requester rates a resolved ticket; staff see the rating once given."""
    t = TicketState.ticket
    resolved = (t.status == TicketStatus.RESOLVED) | (t.status == TicketStatus.CLOSED)
    given = rx.flex(
        rx.badge(
            rx.cond(t.rating == "good", "Rated good", "Rated bad"),
            color_scheme=rx.cond(t.rating == "good", "green", "red"),
            size="2",
        ),
        rx.cond(t.rating_comment != "", plain_text(t.rating_comment, size="2")),
        spacing="2",
        align="center",
        wrap="wrap",
        id="rating-given",
    )
    ask = rx.card(
        rx.form(
            rx.flex(
                rx.text("How did we do?", weight="medium"),
                rx.text_area(
                    name="comment",
                    placeholder="Anything to add? (optional)",
                    max_length=2000,
                    rows="2",
                    aria_label="Comment on your rating",
                ),
                rx.flex(
                    *[
                        rx.el.label(
                            rx.el.input(type="radio", name="rating", value=value, required=True, id=f"rating-{value}"),
                            f" {value.capitalize()}",
                            style={"margin_right": "1em"},
                        )
                        for value in ("good", "bad")
                    ],
                    rx.button("Send my rating", type="submit", variant="soft"),
                    spacing="2",
                    align="center",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=TicketState.rate,
            reset_on_submit=True,
        ),
        id="rate-ticket",
        width="100%",
    )
    return rx.cond(
        t.rating != "",
        given,
        rx.cond(TicketState.is_requester & resolved, ask),
    )


def _staff_forms() -> rx.Component:
    return rx.cond(
        TicketState.can_manage,
        rx.card(
            rx.heading("Manage", size="3", margin_bottom="0.5em", as_="h2"),
            rx.form(
                rx.flex(
                    rx.select(
                        [str(p) for p in Priority],
                        name="priority",
                        placeholder="Priority",
                        custom_attrs={"aria-label": "Override priority"},
                    ),
                    rx.select(
                        TicketState.categories,
                        name="category",
                        placeholder="Category",
                        custom_attrs={"aria-label": "Override category"},
                    ),
                    rx.input(
                        name="reason",
                        placeholder="Reason (required)",
                        aria_label="Reason for override",
                        required=True,
                        max_length=1000,
                    ),
                    rx.button("Override", type="submit", variant="soft"),
                    spacing="2",
                    wrap="wrap",
                ),
                on_submit=TicketState.override,
                reset_on_submit=True,
            ),
            rx.form(
                rx.flex(
                    rx.el.select(
                        rx.el.option("Reassign to…", value=""),
                        rx.foreach(TicketState.staff_options, lambda o: rx.el.option(o.label, value=o.id)),
                        name="assignee_id",
                        aria_label="Reassign to",
                        style={"padding": "0.35em", "border_radius": "6px", "max_width": "100%"},
                    ),
                    rx.input(
                        name="reason",
                        placeholder="Reason (optional)",
                        aria_label="Reason for reassignment",
                        max_length=1000,
                    ),
                    rx.button("Reassign", type="submit", variant="soft"),
                    spacing="2",
                    wrap="wrap",
                    margin_top="0.5em",
                ),
                on_submit=TicketState.reassign,
                reset_on_submit=True,
            ),
            width="100%",
        ),
    )


def _merge_control() -> rx.Component:
    """ "Merge into…" for staff who manage this ticket: find the original by number, see its title, confirm."""
    return rx.cond(
        TicketState.can_manage & (TicketState.ticket.merged_into_id == 0),
        rx.card(
            rx.heading("Merge into…", size="3", margin_bottom="0.5em", as_="h2"),
            rx.cond(
                TicketState.merge_target_number == "",
                rx.form(
                    rx.flex(
                        rx.input(
                            name="into",
                            id="merge-into",
                            placeholder="Ticket number, e.g. TCK-1042",
                            aria_label="Number of the ticket to merge into",
                            max_length=40,
                            required=True,
                        ),
                        rx.button("Find ticket", type="submit", variant="soft", id="merge-find"),
                        spacing="2",
                        wrap="wrap",
                    ),
                    on_submit=TicketState.find_merge_target,
                    reset_on_submit=True,
                ),
                rx.form(
                    rx.text(
                        "Merge this ticket into ",
                        rx.text.strong(TicketState.merge_target_number),
                        ": ",
                        TicketState.merge_target_title,
                        "? Its conversation is copied there, its requester follows that ticket and is told by"
                        " e-mail, and this ticket is closed.",
                        size="2",
                        id="merge-confirm-text",
                    ),
                    rx.input(
                        name="note",
                        placeholder="Note for the requester (optional)",
                        aria_label="Note for the requester",
                        max_length=2000,
                        margin_top="0.5em",
                    ),
                    rx.flex(
                        rx.button("Merge", type="submit", color_scheme="orange", id="merge-confirm"),
                        rx.button("Cancel", type="button", variant="soft", on_click=TicketState.cancel_merge),
                        spacing="2",
                        margin_top="0.5em",
                    ),
                    on_submit=TicketState.confirm_merge,
                    reset_on_submit=True,
                ),
            ),
            width="100%",
        ),
    )


def _merged_into() -> rx.Component:
    t = TicketState.ticket
    return rx.cond(
        t.merged_into_id > 0,
        rx.callout(
            rx.text(
                "Merged into ",
                rx.link(t.merged_into_number, href="/tickets/" + t.merged_into_id.to_string(), id="merged-into-link"),
                ": the conversation continues there.",
            ),
            icon="git_merge",
            color_scheme="gray",
            id="merged-into",
        ),
    )


def _timeline_line(e: rx.Var) -> rx.Component:
    return rx.box(
        rx.text(
            e.who,
            " ",
            e.what,
            rx.cond(e.link != "", rx.fragment(" ", rx.link(e.link_label, href=e.link))),
            size="2",
            weight="medium",
        ),
        rx.cond(e.detail != "", plain_text(e.detail, size="1")),
        rx.text(e.created, size="1", color_scheme="gray"),
        padding_y="0.3em",
    )


def _canned_picker() -> rx.Component:
    """Staff fill the reply box with a canned reply; a status it sets is shown and can be dropped."""
    return rx.cond(
        TicketState.staff_view & (TicketState.canned_options.length() > 0),
        rx.flex(
            rx.el.select(
                rx.el.option("Insert a canned reply…", value="", disabled=True),
                rx.foreach(TicketState.canned_options, lambda o: rx.el.option(o.label, value=o.id)),
                id="canned-picker",
                default_value="",
                aria_label="Insert a canned reply",
                on_change=TicketState.insert_canned,
                style={"padding": "0.35em", "border_radius": "6px", "max_width": "100%"},
            ),
            rx.cond(
                TicketState.reply_status != "",
                rx.badge(
                    "Sending also sets the status to ",
                    TicketState.reply_status_label,
                    rx.icon_button(
                        rx.icon("x", size=12),
                        on_click=TicketState.clear_reply_status,
                        size="1",
                        variant="ghost",
                        type="button",
                        aria_label="Do not change the status",
                    ),
                    id="canned-status",
                    color_scheme="indigo",
                    size="2",
                ),
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
    )


def _suggest_reply() -> rx.Component:
    """Staff fill the reply box with a suggested reply (from similar resolved tickets); a person sends it."""
    return rx.cond(
        TicketState.staff_view,
        rx.flex(
            rx.button(
                rx.icon("sparkles", size=14, aria_hidden="true"),
                "Suggest a reply",
                on_click=TicketState.suggest_reply,
                type="button",
                variant="soft",
                size="1",
                id="suggest-reply",
            ),
            rx.cond(TicketState.draft_note != "", rx.text(TicketState.draft_note, size="1", id="draft-note")),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
    )


def _similar_item(item: rx.Var) -> rx.Component:
    return rx.box(
        rx.link(item.number, " ", item.title, href=item.href, size="2", weight="medium"),
        rx.text(item.status_label, " · ", item.similarity, size="1", color_scheme="gray"),
        rx.cond(item.resolution != "", rx.text(item.resolution, size="1", class_name="similar-resolution")),
        rx.cond(
            TicketState.can_manage & (TicketState.ticket.merged_into_id == 0),
            rx.button(
                "Merge into this",
                type="button",
                variant="soft",
                size="1",
                color_scheme="orange",
                on_click=TicketState.merge_into_similar(item.id),
                aria_label="Merge this ticket into " + item.number,
                class_name="similar-merge",
            ),
        ),
        padding_y="0.3em",
        class_name="similar-ticket",
    )


def _similar_panel() -> rx.Component:
    """Up to 5 similar earlier tickets the viewer may see, with how they were solved (staff only)."""
    return rx.cond(
        TicketState.staff_view,
        rx.card(
            rx.heading("Similar tickets", size="4", margin_bottom="0.5em", as_="h2"),
            rx.foreach(TicketState.similar_rows, _similar_item),
            rx.cond(TicketState.similar_note != "", rx.text(TicketState.similar_note, size="2", color_scheme="gray")),
            width="100%",
            id="similar-tickets",
        ),
    )


def _viewers() -> rx.Component:
    """Other staff on this ticket now, and who of them is typing a reply (collision detection)."""
    return rx.box(
        rx.cond(
            TicketState.viewers.length() > 0,
            rx.flex(
                rx.icon("users", size=16, aria_hidden="true"),
                rx.text("Also on this ticket:", size="2"),
                rx.foreach(
                    TicketState.viewers,
                    lambda v: rx.badge(
                        v.name,
                        rx.cond(v.typing, " is typing a reply…", ""),
                        color_scheme=rx.cond(v.typing, "amber", "gray"),
                        size="2",
                    ),
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
        ),
        id="viewers",
        aria_live="polite",
    )


def _reply_form() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.el.label("Reply", html_for="reply-body", style={"font_weight": "500"}),
            _canned_picker(),
            _suggest_reply(),
            rx.text_area(
                id="reply-body",
                name="body",
                required=True,
                max_length=10000,
                rows="4",
                # At most one event a second while typing: the live loop tells other staff someone is replying.
                on_key_down=TicketState.typing.throttle(1000),
            ),
            file_picker(REPLY_FILES, TicketState.files_rejected),
            rx.flex(
                rx.cond(
                    TicketState.staff_view,
                    # Named so the form owns it (Reflex 0.11 drops id-only controls); reply() still reads
                    # the flag from TicketState.internal_note, never from the submitted "internal" field.
                    rx.checkbox(
                        "Internal note (staff only)",
                        id="internal",
                        name="internal",
                        checked=TicketState.internal_note,
                        on_change=TicketState.set_internal_note,
                    ),
                ),
                rx.spacer(),
                rx.button(
                    rx.cond(TicketState.internal_note, "Add internal note", "Send"),
                    type="submit",
                    color_scheme=rx.cond(TicketState.internal_note, "amber", "indigo"),
                ),
                align="center",
            ),
            direction="column",
            spacing="2",
        ),
        on_submit=lambda form: TicketState.reply(form, rx.upload_files(upload_id=REPLY_FILES)),
        reset_on_submit=False,
    )


@route("/tickets/[ticket_id]", title="Ticket · Helpdesk", on_load=[TicketState.load, TicketState.follow])
def ticket_page() -> rx.Component:
    t = TicketState.ticket
    return page(
        rx.cond(
            TicketState.not_found,
            rx.callout(
                "Ticket not found. It does not exist or you are not allowed to see it.",
                icon="search_x",
                color_scheme="gray",
                id="not-found",
            ),
            rx.cond(
                t.id > 0,  # the blank row: still loading
                rx.grid(
                    rx.flex(
                        rx.flex(
                            rx.text(t.number, color_scheme="gray"),
                            status_badge(t.status, t.status_label),
                            spacing="2",
                            align="center",
                        ),
                        rx.heading(t.title, size="6", as_="h2"),
                        _merged_into(),
                        rx.text(
                            "From ",
                            t.requester,
                            " · ",
                            t.created,
                            " · assigned to ",
                            t.assignee,
                            size="2",
                            color_scheme="gray",
                        ),
                        rx.card(
                            plain_text(t.description),
                            file_list(TicketState.ticket_files, TicketState.download_file),
                            width="100%",
                        ),
                        error_callout(TicketState.error),
                        rx.cond(TicketState.notice != "", rx.callout(TicketState.notice, color_scheme="green")),
                        _viewers(),
                        rx.cond(
                            TicketState.is_requester & (t.status == TicketStatus.PENDING),
                            rx.callout(
                                "We are waiting for your reply: answer below and we pick the ticket up again.",
                                icon="message-circle-question",
                                color_scheme="purple",
                                id="waiting-on-you",
                            ),
                        ),
                        _actions(),
                        _rating(),
                        _staff_forms(),
                        _merge_control(),
                        rx.heading("Conversation", size="4", as_="h2"),
                        rx.foreach(TicketState.comments, _comment),
                        rx.cond(t.merged_into_id == 0, _reply_form()),  # a merged ticket's conversation moved
                        direction="column",
                        spacing="3",
                    ),
                    rx.flex(
                        _sla_panel(),
                        _ai_panel(),
                        _similar_panel(),
                        rx.card(
                            rx.heading("Timeline", size="4", margin_bottom="0.5em", as_="h2"),
                            rx.foreach(TicketState.timeline, _timeline_line),
                            width="100%",
                        ),
                        direction="column",
                        spacing="3",
                    ),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="5",
                    width="100%",
                ),
                rx.center(rx.spinner(), padding="2em"),
            ),
        ),
        title="Ticket",
    )
