"""Previous / next controls for a state that uses PagedMixin."""

from __future__ import annotations

import reflex as rx


def pager(state: type, noun: str = "tickets") -> rx.Component:
    return rx.flex(
        rx.button("Previous", on_click=state.previous_page, variant="soft", disabled=state.page_index == 0),
        rx.text("Page ", state.page_index + 1, " of ", state.page_count, " · ", state.total, f" {noun}", size="2"),
        rx.button("Next", on_click=state.next_page, variant="soft", disabled=state.page_index + 1 >= state.page_count),
        spacing="3",
        align="center",
        margin_top="1em",
    )
