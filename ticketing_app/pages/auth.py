"""Log-in and sign-up pages."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.layout import error_callout, page
from ticketing_app.pages import route
from ticketing_app.states.auth_pages import LoginState, SignupState
from ticketing_app.states.base import AuthState


def _field(label: str, name: str, kind: str = "text", **props) -> rx.Component:
    return rx.flex(
        rx.el.label(label, html_for=name, style={"font_weight": "500"}),
        rx.input(id=name, name=name, type=kind, required=True, size="3", width="100%", **props),
        direction="column",
        spacing="1",
        width="100%",
    )


@route("/login", title="Log in · Helpdesk", on_load=LoginState.on_open)
def login_page() -> rx.Component:
    return page(
        rx.card(
            rx.form(
                rx.flex(
                    error_callout(LoginState.error),
                    _field("E-mail", "email", "email", auto_complete="username"),
                    _field("Password", "password", "password", auto_complete="current-password"),
                    rx.button("Log in", type="submit", size="3", width="100%"),
                    rx.link("Forgot your password?", href="/forgot-password", underline="always", size="2"),
                    rx.text("No account yet? ", rx.link("Sign up", href="/signup", underline="always"), size="2"),
                    direction="column",
                    spacing="4",
                ),
                on_submit=LoginState.submit,
                reset_on_submit=False,
            ),
            max_width="28em",
        ),
        title="Log in",
    )


@route("/signup", title="Sign up · Helpdesk")
def signup_page() -> rx.Component:
    return page(
        rx.card(
            rx.form(
                rx.flex(
                    error_callout(SignupState.error),
                    _field("Name", "name", max_length=100, auto_complete="name"),
                    _field("E-mail", "email", "email", auto_complete="email"),
                    _field(
                        "Password (at least 8 characters)",
                        "password",
                        "password",
                        min_length=8,
                        auto_complete="new-password",
                    ),
                    rx.button("Create account", type="submit", size="3", width="100%"),
                    rx.text("Already registered? ", rx.link("Log in", href="/login", underline="always"), size="2"),
                    direction="column",
                    spacing="4",
                ),
                on_submit=SignupState.submit,
                reset_on_submit=False,
            ),
            max_width="28em",
        ),
        title="Create your account",
    )


@route("/", title="Helpdesk", on_load=AuthState.go_home)
def index() -> rx.Component:
    return page(rx.center(rx.spinner(size="3"), padding="3em"), title="Helpdesk")
