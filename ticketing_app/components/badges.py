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
