"""Small visual pieces shared by the ticket pages."""

from __future__ import annotations

import reflex as rx

from ticketing_app.domain import PRIORITY_COLORS, STATUS_COLORS


def status_badge(status: rx.Var, label: rx.Var) -> rx.Component:
    return rx.badge(
        label, color_scheme=rx.match(status, *STATUS_COLORS.items(), "gray"), variant="soft", high_contrast=True
    )


def priority_badge(priority: rx.Var, label: rx.Var) -> rx.Component:
    return rx.badge(
        label, color_scheme=rx.match(priority, *PRIORITY_COLORS.items(), "gray"), variant="outline", high_contrast=True
    )


def plain_text(value: rx.Var, **props) -> rx.Component:
    """User or AI text, shown as text (React escapes it) with its line breaks kept."""
    return rx.text(value, white_space="pre-wrap", overflow_wrap="anywhere", **props)


def sla_clock(name: str, text: rx.Var, late: rx.Var, id: rx.Var | str) -> rx.Component:
    """One SLA clock ("Reply: 3h 20m left"), red once its target is missed; nothing without a target."""
    return rx.cond(
        text != "",
        rx.flex(
            rx.text(name + ":", size="1", color_scheme="gray"),
            rx.cond(
                late,
                rx.badge(text, color_scheme="red", high_contrast=True, size="1"),
                rx.text(text, size="1"),
            ),
            spacing="1",
            align="center",
            white_space="nowrap",
            id=id,
        ),
    )


def highlighted(pieces: rx.Var, **props) -> rx.Component:
    """A search result's text: its pieces as text, the matching ones in <mark> (never HTML from the data)."""
    return rx.text(
        rx.foreach(pieces, lambda piece: rx.cond(piece.match, rx.el.mark(piece.text), rx.text.span(piece.text))),
        as_="span",
        **props,
    )


def ticket_title(row: rx.Var, link: rx.Var) -> rx.Component:
    """A list row's title: highlighted with a snippet of where it matched in search results."""
    return rx.cond(
        row.searched,
        rx.flex(
            rx.link(highlighted(row.title_pieces), href=link, class_name="search-title"),
            highlighted(row.snippet_pieces, size="1", color_scheme="gray", class_name="search-snippet"),
            direction="column",
            spacing="1",
        ),
        rx.link(row.title, href=link),
    )
