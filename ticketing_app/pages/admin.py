"""Admin pages: manage users (roles, skills, access) and the system overview (tickets, jobs, e-mails)."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.badges import priority_badge
from ticketing_app.components.charts import bar_list_chart, chart_card, column_chart, donut_chart, stat_card
from ticketing_app.components.layout import empty_state, error_callout, not_allowed, page
from ticketing_app.components.pager import pager
from ticketing_app.domain import EmailStatus, JobStatus, label
from ticketing_app.pages import route
from ticketing_app.states.admin import ALL_ROLES, ROLES, AdminOverviewState, AdminUsersState

# Below this width each table row becomes a card: headers hidden, each cell labelled by its data-label.
STACKED_TABLE = {
    "@media (max-width: 767px)": {
        "& thead": {"display": "none"},
        "& tr": {"display": "block", "padding": "0.75em 0", "border_bottom": "1px solid var(--gray-a5)"},
        "& td": {
            "display": "flex",
            "gap": "0.75em",
            "align_items": "flex-start",
            "padding": "0.3em 0.25em",
            "box_shadow": "none",
            "width": "100%",
            "height": "auto",
            "min_height": "0",
            "text_align": "left !important",
        },
        "& td::before": {
            "content": "attr(data-label)",
            "flex": "0 0 6.5em",
            "color": "var(--gray-11)",
            "white_space": "nowrap",
            "font_size": "var(--font-size-1)",
            "padding_top": "0.2em",
        },
        "& td[data-label='User']::before, & td[data-label='']::before": {"display": "none"},
        "& td[data-empty='true']": {"display": "none"},
    },
}


SR_ONLY = {
    "position": "absolute",
    "width": "1px",
    "height": "1px",
    "overflow": "hidden",
    "clip": "rect(0 0 0 0)",
    "white_space": "nowrap",
}


def _cell(label: str, *children: rx.Component, **props) -> rx.Component:
    props.setdefault("custom_attrs", {"data-label": label})
    return rx.table.cell(*children, **props)


def _loaded(state: type[AdminUsersState] | type[AdminOverviewState]) -> rx.Var:
    """Data is shown only to the user it was loaded for (never stale data of a previous log-in)."""
    return (state.loaded_for == state.user_id) & (state.user_id > 0)


def _spinner() -> rx.Component:
    return rx.center(rx.spinner(size="3"), padding="3em", aria_label="Loading", role="status")


# ----- /admin/users -----


def _identity(row: rx.Var) -> rx.Component:
    return rx.flex(
        rx.flex(
            rx.text(row.name, weight="medium", color=rx.cond(row.active, "var(--gray-12)", "var(--gray-11)")),
            rx.cond(row.is_self, rx.badge("You", variant="outline", size="1")),
            rx.cond(
                ~row.verified, rx.badge("E-mail not verified", color_scheme="orange", size="1", high_contrast=True)
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.text(row.email, size="1", color_scheme="gray", overflow_wrap="anywhere"),
        rx.cond(
            row.error != "",
            rx.callout(
                row.error,
                icon="triangle_alert",
                color_scheme="red",
                size="1",
                role="alert",
                margin_top="0.4em",
                overflow_wrap="anywhere",
            ),
        ),
        rx.cond(
            row.notice != "",
            rx.text(row.notice, size="1", color_scheme="green", role="status", margin_top="0.2em"),
        ),
        direction="column",
        spacing="1",
        min_width="12em",
        max_width="20em",
    )


def _role_select(row: rx.Var) -> rx.Component:
    email = row.email
    return rx.select.root(
        rx.select.trigger(aria_label="Role for " + email, min_width="8.5em"),
        rx.select.content(*[rx.select.item(label(r), value=r) for r in ROLES]),
        value=row.role,
        on_change=lambda value: AdminUsersState.change_role(row.id, value),
        disabled=row.is_self,
        size="2",
    )


def _skill_chip(row: rx.Var, skill: rx.Var) -> rx.Component:
    return rx.badge(
        rx.text(skill, as_="span", overflow_wrap="anywhere", white_space="normal"),
        rx.icon_button(
            rx.icon("x", size=12),
            type="button",
            size="1",
            variant="ghost",
            radius="full",
            color_scheme="gray",
            aria_label="Remove skill " + skill + " for " + row.email,
            on_click=AdminUsersState.remove_skill(row.id, skill),
            style={"height": "16px", "width": "16px", "min_width": "16px", "margin": "0 -2px 0 2px"},
        ),
        size="2",
        variant="soft",
        radius="full",
        style={"padding_right": "4px", "max_width": "100%"},
    )


def _skills_editor(row: rx.Var) -> rx.Component:
    email = row.email
    uid = row.id.to_string()
    return rx.flex(
        rx.cond(
            row.draft.length() > 0,
            rx.flex(rx.foreach(row.draft, lambda s: _skill_chip(row, s)), spacing="1", wrap="wrap"),
            rx.text("No skills", size="1", color_scheme="gray"),
        ),
        rx.form(
            rx.el.input(type="hidden", name="user_id", value=uid),
            rx.flex(
                rx.input(
                    id="add-skill-" + uid,
                    name="skill",
                    placeholder="Add a skill…",
                    aria_label="Add skill for " + email,
                    max_length=200,
                    auto_complete="off",
                    custom_attrs={"list": "skill-suggestions"},
                    size="1",
                    flex="1",
                    min_width="8em",
                ),
                rx.button("Add", type="submit", size="1", variant="soft"),
                spacing="1",
                width="100%",
            ),
            # The row id travels in the form (a handler inside foreach cannot capture the row var).
            on_submit=AdminUsersState.add_skill,
            reset_on_submit=True,
            width="100%",
        ),
        rx.cond(
            row.dirty,
            rx.flex(
                rx.button("Save skills", size="1", on_click=AdminUsersState.save_skills(row.id)),
                rx.button(
                    "Undo",
                    size="1",
                    variant="ghost",
                    color_scheme="gray",
                    on_click=AdminUsersState.reset_skills(row.id),
                ),
                rx.text("Unsaved changes", size="1", color_scheme="amber"),
                spacing="3",
                align="center",
                wrap="wrap",
            ),
        ),
        direction="column",
        spacing="2",
        min_width="15em",
        width="100%",
    )


def _active_cell(row: rx.Var) -> rx.Component:
    active = row.active
    email = row.email
    return rx.flex(
        rx.cond(
            active,
            rx.badge("Active", color_scheme="green", high_contrast=True),
            rx.badge("Inactive", color_scheme="gray"),
        ),
        rx.button(
            rx.cond(active, "Deactivate", "Activate"),
            size="1",
            variant="soft",
            color_scheme=rx.cond(active, "red", "green"),
            high_contrast=True,
            aria_label=rx.cond(active, "Deactivate ", "Activate ") + email,
            on_click=AdminUsersState.set_active(row.id, ~active),
            disabled=row.is_self,
        ),
        rx.button(
            "Send reset link",
            size="1",
            variant="soft",
            high_contrast=True,
            aria_label="Send reset link to " + email,
            on_click=AdminUsersState.send_reset(row.id),
            disabled=~active,
        ),
        direction=rx.breakpoints(initial="row", md="column"),
        spacing="2",
        align="start",
        wrap="wrap",
    )


def _user_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        _cell("User", _identity(row)),
        _cell("Role", _role_select(row)),
        _cell("Skills", _skills_editor(row)),
        _cell("Status", _active_cell(row)),
        _cell("Open tickets", rx.text(row.load, size="2"), text_align="center"),
        id="user-row-" + row.id.to_string(),
        vertical_align="top",
    )


def _users_toolbar() -> rx.Component:
    return rx.flex(
        rx.form(
            rx.flex(
                rx.input(
                    rx.input.slot(rx.icon("search", size=16)),
                    id="user-search",
                    name="q",
                    type="search",
                    placeholder="Search name or e-mail",
                    aria_label="Search users by name or e-mail",
                    default_value=AdminUsersState.search,
                    max_length=200,
                    flex="1",
                ),
                rx.button("Search", type="submit", variant="soft"),
                spacing="2",
                width="100%",
            ),
            on_submit=AdminUsersState.apply_search,
            reset_on_submit=False,
            flex="1 1 18em",
        ),
        rx.select.root(
            rx.select.trigger(aria_label="Filter by role", min_width="9em"),
            rx.select.content(
                rx.select.item("All roles", value=ALL_ROLES),
                *[rx.select.item(label(r) + "s", value=r) for r in ROLES],
            ),
            value=AdminUsersState.role_filter,
            on_change=AdminUsersState.set_role_filter,
        ),
        rx.flex(
            rx.cond(AdminUsersState.loading, rx.spinner(size="1")),
            rx.text(
                AdminUsersState.total,
                rx.cond(AdminUsersState.total == 1, " user", " users"),
                size="2",
                color_scheme="gray",
                id="user-total",
            ),
            spacing="2",
            align="center",
        ),
        spacing="3",
        wrap="wrap",
        align="center",
        margin_bottom="1em",
        width="100%",
    )


def _users_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[rx.table.column_header_cell(h) for h in ("User", "Role", "Skills", "Status")],
                    rx.table.column_header_cell("Open tickets", text_align="center"),
                )
            ),
            rx.table.body(rx.foreach(AdminUsersState.rows, _user_row)),
            width="100%",
            style=STACKED_TABLE,
        ),
        width="100%",
        overflow_x="auto",
    )


@route("/admin/users", title="Users · Helpdesk", on_load=AdminUsersState.load)
def admin_users_page() -> rx.Component:
    return page(
        rx.cond(
            AdminUsersState.forbidden,
            not_allowed(),
            rx.cond(
                _loaded(AdminUsersState),
                rx.box(
                    rx.text(
                        "Change roles, moderator skills (used to route tickets) and who can log in.",
                        color_scheme="gray",
                        size="2",
                        margin_bottom="1em",
                        as_="p",
                    ),
                    _users_toolbar(),
                    error_callout(AdminUsersState.error),
                    rx.el.datalist(
                        rx.foreach(AdminUsersState.suggestions, lambda s: rx.el.option(value=s)),
                        id="skill-suggestions",
                    ),
                    rx.cond(
                        AdminUsersState.rows.length() == 0,
                        empty_state("No users match this search."),
                        _users_table(),
                    ),
                    pager(AdminUsersState, "users"),
                    width="100%",
                ),
                rx.cond(AdminUsersState.error == "", _spinner(), error_callout(AdminUsersState.error)),
            ),
        ),
        title="Users",
    )


# ----- /admin -----

EMAIL_COLORS = {
    EmailStatus.SENT: "green",
    EmailStatus.RECORDED: "blue",
    EmailStatus.PENDING: "amber",
    EmailStatus.FAILED: "red",
}


def _toolbar() -> rx.Component:
    s = AdminOverviewState
    return rx.flex(
        rx.text("Updated ", s.updated_at, size="2", color_scheme="gray", id="overview-updated"),
        rx.spacer(),
        rx.flex(
            rx.switch(id="auto-refresh", checked=s.auto_refresh, on_change=s.set_auto_refresh),
            rx.el.label("Auto refresh", html_for="auto-refresh", style={"font_size": "var(--font-size-2)"}),
            spacing="2",
            align="center",
        ),
        rx.button(rx.icon("refresh-cw", size=16), "Refresh", on_click=s.refresh, loading=s.refreshing, variant="soft"),
        spacing="3",
        align="center",
        wrap="wrap",
        width="100%",
    )


def _stats() -> rx.Component:
    s = AdminOverviewState
    return rx.grid(
        stat_card("Total tickets", s.total, "all time", id="stat-total"),
        stat_card("Open tickets", s.open_count, "open, in progress or pending", id="stat-open"),
        stat_card(
            "Median time to assignment", s.median_assignment, "from submit to assignee, last 14 days", id="stat-median"
        ),
        stat_card(
            "Dead jobs",
            s.job_counts.dead,
            "need a retry or a fix",
            id="stat-dead",
            style={"border": rx.cond(s.job_counts.dead > 0, "1px solid var(--red-8)", "none")},
        ),
        columns=rx.breakpoints(initial="2", md="4"),
        spacing="3",
        width="100%",
    )


def _charts() -> rx.Component:
    s = AdminOverviewState
    return rx.grid(
        chart_card(
            "Tickets per day (last 14 days)",
            column_chart(s.per_day, "day", "tickets", label="Tickets", name="Tickets per day"),
            grid_column=rx.breakpoints(initial="auto", md="span 2"),
        ),
        chart_card(
            "By category",
            rx.cond(
                s.by_category.length() > 0,
                bar_list_chart(s.by_category, label="Tickets", height=240, name="Tickets by category"),
                empty_state("No tickets yet."),
            ),
        ),
        chart_card(
            "By priority",
            rx.cond(s.by_priority.length() > 0, donut_chart(s.by_priority), empty_state("No tickets yet.")),
        ),
        chart_card(
            "By status", rx.cond(s.by_status.length() > 0, donut_chart(s.by_status), empty_state("No tickets yet."))
        ),
        chart_card(
            "Triage provider",
            rx.cond(s.by_provider.length() > 0, donut_chart(s.by_provider), empty_state("No tickets yet.")),
        ),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="3",
        width="100%",
    )


def _sla_attainment() -> rx.Component:
    """Per priority, the share of tickets that met each SLA target (filed in the last 14 days)."""
    s = AdminOverviewState
    return chart_card(
        "SLA attainment (last 14 days)",
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[
                        rx.table.column_header_cell(h)
                        for h in (
                            "Priority",
                            "First response target",
                            "First response met",
                            "Resolution target",
                            "Resolution met",
                        )
                    ]
                )
            ),
            rx.table.body(
                rx.foreach(
                    s.sla_attainment,
                    lambda row: rx.table.row(
                        _cell("Priority", priority_badge(row.priority, row.priority_label)),
                        _cell("First response target", rx.text(row.first_response_target, size="2")),
                        _cell("First response met", rx.text(row.first_response, size="2")),
                        _cell("Resolution target", rx.text(row.resolution_target, size="2")),
                        _cell("Resolution met", rx.text(row.resolution, size="2")),
                        id="sla-attainment-" + row.priority,
                    ),
                )
            ),
            width="100%",
        ),
        rx.text(
            "Of the tickets filed in the window whose target is met or missed. Targets in business hours: ",
            AdminOverviewState.business_hours,
            " (settings: BUSINESS_HOURS, BUSINESS_TIMEZONE, HOLIDAYS, SLA_*_HOURS_*).",
            size="1",
            color_scheme="gray",
            margin_top="0.5em",
            id="business-hours",
        ),
        id="sla-attainment",
    )


def _acceptance_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(row.category),
        rx.table.cell(row.closed),
        rx.table.cell(row.category_kept),
        rx.table.cell(row.priority_kept),
        rx.table.cell(row.assignee_kept),
    )


def _acceptance() -> rx.Component:
    """The AI acceptance rate: what staff left of the AI's category, priority and assignee on closed tickets."""
    s = AdminOverviewState
    return rx.card(
        rx.heading("AI acceptance rate", size="3", as_="h2"),
        rx.text("Share of AI-set fields still unchanged when tickets were resolved or closed.", size="2"),
        rx.cond(
            s.acceptance.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Category (as triaged)", "Closed", "Category", "Priority", "Assignee")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(s.acceptance, _acceptance_row)),
                size="1",
            ),
            empty_state("No triaged ticket has been closed yet."),
        ),
        id="ai-acceptance",
        width="100%",
    )


def _count_pill(status: JobStatus, color: str) -> rx.Component:
    key = str(status)
    return rx.flex(
        rx.text(label(status), size="2", color_scheme="gray"),
        rx.badge(getattr(AdminOverviewState.job_counts, key), color_scheme=color, size="2", variant="soft"),
        spacing="2",
        align="center",
        id=f"jobs-{key}",
    )


def _dead_row(job: rx.Var) -> rx.Component:
    return rx.table.row(
        _cell("Job", rx.text("#", job.id, size="2")),
        _cell("Kind", rx.code(job.kind, size="2")),
        _cell("Attempts", rx.text(job.attempts, size="2")),
        _cell(
            "Error",
            rx.text(
                job.error,
                size="1",
                overflow_wrap="anywhere",
                white_space="pre-wrap",
                title=job.error_full,
                font_family="var(--code-font-family)",
            ),
        ),
        _cell("Died", rx.text(job.finished, size="1", color_scheme="gray", white_space="nowrap")),
        _cell(
            "",
            rx.button(
                "Retry",
                size="1",
                on_click=AdminOverviewState.retry(job.id),
                aria_label="Retry job #" + job.id.to_string(),
            ),
        ),
        id="dead-job-" + job.id.to_string(),
        vertical_align="top",
    )


def _satisfaction() -> rx.Component:
    s = AdminOverviewState
    return rx.card(
        rx.heading("Satisfaction", size="4", as_="h2", margin_bottom="0.5em"),
        rx.text(s.satisfaction_summary, size="2", id="satisfaction-summary"),
        rx.cond(
            s.satisfaction.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(*[rx.table.column_header_cell(h) for h in ("", "Name", "Good", "Bad", "Share good")])
                ),
                rx.table.body(
                    rx.foreach(
                        s.satisfaction,
                        lambda r: rx.table.row(
                            rx.table.cell(r.group),
                            rx.table.cell(r.name),
                            rx.table.cell(r.good),
                            rx.table.cell(r.bad),
                            rx.table.cell(r.share),
                        ),
                    )
                ),
                size="1",
                margin_top="0.5em",
            ),
        ),
        width="100%",
        id="satisfaction",
    )


def _jobs() -> rx.Component:
    s = AdminOverviewState
    return rx.card(
        rx.flex(
            rx.heading("Job queue", size="4", as_="h2"),
            rx.spacer(),
            _count_pill(JobStatus.QUEUED, "blue"),
            _count_pill(JobStatus.RUNNING, "amber"),
            _count_pill(JobStatus.DONE, "green"),
            _count_pill(JobStatus.DEAD, "red"),
            spacing="4",
            align="center",
            wrap="wrap",
            margin_bottom="0.75em",
        ),
        rx.cond(
            s.dead_jobs.length() == 0,
            rx.flex(
                rx.icon("circle_check", color="var(--green-9)", size=18),
                rx.text("No dead-lettered jobs. The queue is healthy.", size="2", color_scheme="gray"),
                spacing="2",
                align="center",
                padding="0.5em 0",
                id="no-dead-jobs",
            ),
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(h)
                                for h in ("Job", "Kind", "Attempts", "Last error", "Died")
                            ],
                            rx.table.column_header_cell(rx.el.span("Action", style=SR_ONLY)),
                        )
                    ),
                    rx.table.body(rx.foreach(s.dead_jobs, _dead_row)),
                    width="100%",
                    size="1",
                    style=STACKED_TABLE,
                ),
                width="100%",
                overflow_x="auto",
            ),
        ),
        width="100%",
        id="job-health",
    )


def _email_status(e: rx.Var) -> rx.Component:
    return rx.badge(e.status, color_scheme=rx.match(e.status, *EMAIL_COLORS.items(), "gray"), variant="soft")


def _email_item(e: rx.Var) -> rx.Component:
    """The phone layout of one e-mail: subject first, then who, what and when."""
    return rx.el.li(
        rx.flex(
            rx.text(e.subject, size="2", weight="medium", overflow_wrap="break-word"),
            rx.flex(
                rx.text(e.recipient, size="1", color_scheme="gray", overflow_wrap="anywhere"),
                rx.spacer(),
                _email_status(e),
                spacing="2",
                align="center",
            ),
            rx.text(e.kind, " · ", e.created, size="1", color_scheme="gray"),
            rx.cond(e.error != "", rx.text(e.error, size="1", color_scheme="red", overflow_wrap="anywhere")),
            direction="column",
            spacing="1",
        ),
        style={"padding": "0.6em 0", "border_bottom": "1px solid var(--gray-a5)"},
    )


def _email_row(e: rx.Var) -> rx.Component:
    return rx.table.row(
        _cell("To", rx.text(e.recipient, size="2", overflow_wrap="break-word")),
        _cell("Subject", rx.text(e.subject, size="2", overflow_wrap="break-word")),
        _cell("Kind", rx.text(e.kind, size="2", white_space="nowrap")),
        _cell("Status", _email_status(e)),
        _cell("Created", rx.text(e.created, size="1", color_scheme="gray", white_space="nowrap")),
        _cell(
            "Last error",
            rx.text(e.error, size="1", color_scheme="red", overflow_wrap="break-word", title=e.error_full),
            custom_attrs={"data-label": "Last error", "data-empty": rx.cond(e.error == "", "true", "false")},
        ),
        vertical_align="top",
    )


def _emails() -> rx.Component:
    s = AdminOverviewState
    return rx.card(
        rx.heading("Recent e-mails", size="4", margin_bottom="0.75em", as_="h2"),
        rx.cond(
            s.emails.length() == 0,
            empty_state("No e-mails yet."),
            rx.fragment(
                rx.mobile_only(
                    rx.el.ul(
                        rx.foreach(s.emails, _email_item), style={"list_style": "none", "margin": "0", "padding": "0"}
                    ),
                ),
                rx.tablet_and_desktop(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                *[
                                    rx.table.column_header_cell(h)
                                    for h in ("To", "Subject", "Kind", "Status", "Created", "Last error")
                                ]
                            )
                        ),
                        rx.table.body(rx.foreach(s.emails, _email_row)),
                        width="100%",
                        size="1",
                    ),
                    width="100%",
                    overflow_x="auto",
                ),
            ),
        ),
        width="100%",
        id="recent-emails",
    )


@route("/admin", title="Overview · Helpdesk", on_load=[AdminOverviewState.load, AdminOverviewState.follow])
def admin_overview_page() -> rx.Component:
    s = AdminOverviewState
    return page(
        rx.cond(
            s.forbidden,
            not_allowed(),
            rx.cond(
                _loaded(s),
                rx.flex(
                    _toolbar(),
                    error_callout(s.error),
                    _stats(),
                    _charts(),
                    _satisfaction(),
                    _sla_attainment(),
                    _acceptance(),
                    _jobs(),
                    _emails(),
                    direction="column",
                    spacing="4",
                    width="100%",
                ),
                rx.cond(s.error == "", _spinner(), error_callout(s.error)),
            ),
        ),
        title="Overview",
    )
