"""Account self-service pages: forgot password, reset password, verify e-mail and the profile."""

from __future__ import annotations

import reflex as rx

from ticketing_app.components.layout import error_callout, page
from ticketing_app.pages import route
from ticketing_app.states.account_pages import ForgotPasswordState, ProfileState, ResetPasswordState, VerifyEmailState


def field(label: str, name: str, kind: str = "text", **props) -> rx.Component:
    return rx.flex(
        rx.el.label(label, html_for=name, style={"font_weight": "500"}),
        rx.input(id=name, name=name, type=kind, required=True, size="3", width="100%", **props),
        direction="column",
        spacing="1",
        width="100%",
    )


def notice_callout(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="info", color_scheme="green", role="status", width="100%", id="notice"),
    )


@route("/forgot-password", title="Forgot password · Helpdesk", on_load=ForgotPasswordState.on_open)
def forgot_password_page() -> rx.Component:
    return page(
        rx.card(
            rx.form(
                rx.flex(
                    rx.text(
                        "Enter the e-mail address of your account: we will mail you a link to choose a new password."
                    ),
                    error_callout(ForgotPasswordState.error),
                    notice_callout(ForgotPasswordState.notice),
                    field("E-mail", "email", "email", auto_complete="username"),
                    rx.button("Mail me a link", type="submit", size="3", width="100%"),
                    rx.text("Remembered it? ", rx.link("Log in", href="/login", underline="always"), size="2"),
                    direction="column",
                    spacing="4",
                ),
                on_submit=ForgotPasswordState.submit,
                reset_on_submit=False,
            ),
            max_width="28em",
        ),
        title="Forgot your password?",
    )


@route("/reset-password", title="Choose a new password · Helpdesk", on_load=ResetPasswordState.on_open)
def reset_password_page() -> rx.Component:
    return page(
        rx.card(
            rx.form(
                rx.flex(
                    error_callout(ResetPasswordState.error),
                    field(
                        "New password (at least 8 characters)",
                        "password",
                        "password",
                        min_length=8,
                        auto_complete="new-password",
                    ),
                    field("The new password again", "confirm", "password", min_length=8, auto_complete="new-password"),
                    rx.button("Set the new password", type="submit", size="3", width="100%"),
                    rx.text(
                        "Link expired? ",
                        rx.link("Ask for a new one", href="/forgot-password", underline="always"),
                        size="2",
                    ),
                    direction="column",
                    spacing="4",
                ),
                on_submit=ResetPasswordState.submit,
                reset_on_submit=False,
            ),
            max_width="28em",
        ),
        title="Choose a new password",
    )


@route("/verify-email", title="Verify your e-mail · Helpdesk", on_load=VerifyEmailState.on_open)
def verify_email_page() -> rx.Component:
    return page(
        rx.card(
            rx.flex(
                rx.cond(VerifyEmailState.busy, rx.spinner()),
                error_callout(VerifyEmailState.error),
                notice_callout(VerifyEmailState.notice),
                rx.link("Go to the helpdesk", href="/", underline="always"),
                direction="column",
                spacing="4",
            ),
            max_width="28em",
        ),
        title="Verify your e-mail address",
    )


def _verification() -> rx.Component:
    return rx.cond(
        ProfileState.email_verified,
        rx.badge("verified", color_scheme="green", id="email-verified"),
        rx.flex(
            rx.badge("not verified yet", color_scheme="orange", id="email-unverified"),
            rx.button("Mail me the link again", on_click=ProfileState.resend_verification, variant="soft", size="1"),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
    )


@route("/profile", title="Profile · Helpdesk", on_load=ProfileState.load)
def profile_page() -> rx.Component:
    return page(
        rx.flex(
            error_callout(ProfileState.error),
            notice_callout(ProfileState.notice),
            rx.card(
                rx.heading("You", size="4", as_="h2", margin_bottom="0.5em"),
                rx.flex(
                    rx.text("E-mail: ", rx.text.strong(ProfileState.email)),
                    _verification(),
                    spacing="2",
                    align="center",
                    wrap="wrap",
                    margin_bottom="1em",
                ),
                rx.form(
                    rx.flex(
                        field(
                            "Name",
                            "name",
                            default_value=ProfileState.name,
                            max_length=100,
                            auto_complete="name",
                            key=ProfileState.name,
                        ),
                        rx.button("Save name", type="submit"),
                        direction="column",
                        spacing="3",
                    ),
                    on_submit=ProfileState.save_name,
                    reset_on_submit=False,
                ),
                width="100%",
            ),
            rx.card(
                rx.heading("Password", size="4", as_="h2", margin_bottom="0.5em"),
                rx.form(
                    rx.flex(
                        field("Current password", "current_password", "password", auto_complete="current-password"),
                        field(
                            "New password (at least 8 characters)",
                            "new_password",
                            "password",
                            min_length=8,
                            auto_complete="new-password",
                        ),
                        field(
                            "The new password again",
                            "confirm_password",
                            "password",
                            min_length=8,
                            auto_complete="new-password",
                        ),
                        rx.button("Change password", type="submit"),
                        direction="column",
                        spacing="3",
                    ),
                    on_submit=ProfileState.change_password,
                    reset_on_submit=False,
                ),
                width="100%",
            ),
            direction="column",
            spacing="4",
            max_width="36em",
        ),
        title="Your profile",
    )
