"""The page frame: a navigation bar that adapts to the role, and the content area."""

from __future__ import annotations

import reflex as rx

from ticketing_app.states.base import AuthState


def nav_link(label: str, href: str) -> rx.Component:
    return rx.link(label, href=href, underline="none", weight="medium", size="3")


def navbar() -> rx.Component:
    return rx.flex(
        rx.link(
            rx.flex(
                rx.image(src="/logo.svg", alt="Helpdesk logo", width="28px", height="28px"),
                rx.text("Helpdesk", as_="span", size="5", weight="bold"),
                spacing="2",
                align="center",
            ),
            href="/",
            underline="none",
        ),
        rx.cond(
            AuthState.logged_in,
            rx.flex(
                nav_link("My tickets", "/tickets"),
                nav_link("New ticket", "/tickets/new"),
                rx.cond(AuthState.is_staff, nav_link("Queue", "/queue")),
                rx.cond(AuthState.is_staff, nav_link("Canned replies", "/canned-replies")),
                rx.cond(AuthState.is_admin, nav_link("Users", "/admin/users")),
                rx.cond(AuthState.is_admin, nav_link("Overview", "/admin")),
                spacing="4",
                wrap="wrap",
                align="center",
            ),
        ),
        rx.spacer(),
        rx.flex(
            rx.color_mode.button(size="2", variant="ghost", aria_label="Toggle dark mode"),
            rx.cond(
                AuthState.logged_in,
                rx.flex(
                    rx.link(
                        AuthState.user_name,
                        " (",
                        AuthState.user_role,
                        ")",
                        href="/profile",
                        size="2",
                        color_scheme="gray",
                        title="Your profile",
                        id="profile-link",
                    ),
                    nav_link("Notifications", "/settings/notifications"),
                    rx.button("Log out", on_click=AuthState.logout, variant="soft", size="2"),
                    spacing="3",
                    align="center",
                ),
                rx.flex(nav_link("Log in", "/login"), nav_link("Sign up", "/signup"), spacing="3"),
            ),
            spacing="3",
            align="center",
        ),
        padding="0.75em 1.5em",
        border_bottom="1px solid var(--gray-a5)",
        align="center",
        spacing="5",
        wrap="wrap",
        width="100%",
    )


def page(*children: rx.Component, title: str) -> rx.Component:
    return rx.box(
        # React hoists these into <head>; browsers that skip them still find /favicon.ico.
        rx.el.link(rel="icon", href="/favicon.ico", sizes="32x32"),
        rx.el.link(rel="icon", href="/logo.svg", type="image/svg+xml"),
        navbar(),
        rx.container(
            rx.heading(title, size="7", margin_bottom="0.75em"),
            *children,
            size="4",
            padding_y="1.5em",
        ),
        width="100%",
        min_height="100vh",
    )


def error_callout(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert", width="100%"),
    )


def empty_state(text: str) -> rx.Component:
    return rx.center(rx.text(text, color_scheme="gray"), padding="2em", width="100%")


def not_allowed() -> rx.Component:
    """Shown instead of a page the user's role may not see (its data was never loaded)."""
    return rx.callout(
        "You are not allowed to see this page. If you think you should, ask an admin.",
        icon="shield_alert",
        color_scheme="red",
        id="not-allowed",
    )
