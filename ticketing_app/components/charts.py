"""Small chart and statistic pieces for the admin overview (Reflex's built-in recharts, Radix colour tokens).

Every chart comes with its numbers as text too (a legend list), so the page is readable without the SVG.
Bar-list and donut rows are SeriesRow (states/formatting.py): name, value and fill (a CSS colour such as
"var(--blue-9)"); the column chart reads the two fields it is given (DayCount: day, tickets).

Keyboard: recharts makes each bar chart one tab stop (role "application": arrow keys move the tooltip along
the bars), so those get a name. A donut's legend already has its numbers, so its sectors are no tab stop.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

AXIS_TICK = {"fontSize": 12, "fill": "var(--gray-11)"}


def _records(data: rx.Var) -> rx.Var:
    """Typed rows as recharts' `data` prop is typed: a list of dicts (what the rows are sent as anyway)."""
    return data.to(list[dict[str, Any]])


def stat_card(label: str, value: rx.Var | str, hint: rx.Var | str = "", **props) -> rx.Component:
    """A big number with a label; `hint` is a small line under it."""
    return rx.card(
        rx.flex(
            rx.text(label, size="2", color_scheme="gray", weight="medium"),
            rx.text(value, size="7", weight="bold", line_height="1.1"),
            rx.text(hint, size="1", color_scheme="gray", min_height="1.2em"),
            direction="column",
            spacing="1",
        ),
        width="100%",
        **props,
    )


def chart_card(title: str, *children: rx.Component, **props) -> rx.Component:
    return rx.card(
        rx.heading(title, size="3", margin_bottom="0.75em", as_="h2"),
        *children,
        width="100%",
        min_width="0",
        **props,
    )


def _tooltip() -> rx.Component:
    return rx.recharts.graphing_tooltip(
        cursor={"fill": "var(--gray-a3)"},
        content_style={
            "background": "var(--color-panel-solid)",
            "borderColor": "var(--gray-a6)",
            "borderRadius": "8px",
            "fontSize": "13px",
        },
        is_animation_active=False,
    )


def column_chart(
    data: rx.Var, x_key: str, y_key: str, *, label: str, height: int = 220, name: str = ""
) -> rx.Component:
    """Vertical bars over a category/time axis (e.g. tickets per day); `name` is what it is called to
    screen readers (default: `label`)."""
    return rx.box(
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(vertical=False, stroke="var(--gray-a5)"),
            rx.recharts.x_axis(data_key=x_key, tick=AXIS_TICK, stroke="var(--gray-a7)", min_tick_gap=8),
            rx.recharts.y_axis(allow_decimals=False, tick=AXIS_TICK, stroke="var(--gray-a7)", width=32),
            _tooltip(),
            rx.recharts.bar(
                data_key=y_key,
                name=label,
                fill="var(--accent-9)",
                radius=[4, 4, 0, 0],
                max_bar_size=36,
                is_animation_active=False,
            ),
            data=_records(data),
            margin={"top": 4, "right": 8, "left": 0, "bottom": 0},
            custom_attrs={"aria-label": f"{name or label} chart: use the arrow keys to read each bar"},
        ),
        height=f"{height}px",
        width="100%",
    )


def bar_list_chart(data: rx.Var, *, label: str, height: int = 220, name: str = "") -> rx.Component:
    """Horizontal bars, one per category, coloured by each row's "fill"; `name` as for column_chart."""
    return rx.box(
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(horizontal=False, stroke="var(--gray-a5)"),
            rx.recharts.x_axis(type_="number", allow_decimals=False, tick=AXIS_TICK, stroke="var(--gray-a7)"),
            rx.recharts.y_axis(
                data_key="name", type_="category", tick=AXIS_TICK, stroke="var(--gray-a7)", width=130, interval=0
            ),
            _tooltip(),
            rx.recharts.bar(
                rx.foreach(data, lambda row: rx.recharts.cell(fill=row.fill)),
                data_key="value",
                name=label,
                radius=[0, 4, 4, 0],
                max_bar_size=22,
                is_animation_active=False,
            ),
            data=_records(data),
            layout="vertical",
            margin={"top": 0, "right": 12, "left": 0, "bottom": 0},
            custom_attrs={"aria-label": f"{name or label} chart: use the arrow keys to read each bar"},
        ),
        height=f"{height}px",
        width="100%",
    )


def donut_chart(data: rx.Var, *, size: int = 180) -> rx.Component:
    """A donut with a text legend beside it (wraps under it on narrow screens)."""
    return rx.flex(
        rx.box(
            rx.recharts.pie_chart(
                _tooltip(),
                rx.recharts.pie(
                    rx.foreach(data, lambda row: rx.recharts.cell(fill=row.fill)),
                    data=_records(data),
                    data_key="value",
                    name_key="name",
                    inner_radius="58%",
                    outer_radius="92%",
                    padding_angle=rx.cond(data.length() > 1, 2, 0),
                    stroke=rx.cond(data.length() > 1, "var(--color-panel-solid)", "none"),
                    is_animation_active=False,
                    root_tab_index=-1,
                ),
                custom_attrs={"tabIndex": -1},
            ),
            height=rx.breakpoints(initial=f"{size * 3 // 4}px", sm=f"{size}px"),
            width=rx.breakpoints(initial=f"{size * 3 // 4}px", sm=f"{size}px"),
            flex_shrink="0",
        ),
        legend(data),
        align="center",
        spacing="4",
        wrap="wrap",
    )


def legend(data: rx.Var) -> rx.Component:
    """The chart's numbers as a list: a colour dot, the name and the count."""
    return rx.el.ul(
        rx.foreach(
            data,
            lambda row: rx.el.li(
                rx.flex(
                    rx.box(
                        width="10px",
                        height="10px",
                        border_radius="3px",
                        background=row.fill,
                        flex_shrink="0",
                        aria_hidden="true",
                    ),
                    rx.text(row.name, size="2"),
                    rx.spacer(),
                    rx.text(row.value, size="2", weight="bold"),
                    align="center",
                    spacing="2",
                ),
            ),
        ),
        style={
            "list_style": "none",
            "margin": "0",
            "padding": "0",
            "display": "grid",
            "gap": "0.35em",
            "min_width": "9em",
            "flex": "1",
        },
    )
