"""/api/me/notifications (your notification settings) and /api/unsubscribe (one-click unsubscribe, RFC 8058)."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import StrictBool

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.html import refusal, small_page, wants_html
from ticketing_app.db import session_scope
from ticketing_app.errors import InvalidLink
from ticketing_app.services import notifications

router = APIRouter(tags=["notifications"])

Preferences = dict[str, bool]
UnsubscribeToken = Annotated[str, Query(max_length=400, description="The token from the mail's unsubscribe link")]


@router.get("/me/notifications", response_model=Preferences)
def get_preferences(token: Token) -> Response:
    """Which kinds of notification mail you get ({kind: true|false}); account mails are always sent."""
    with acting(token) as (_, user):
        return JSONResponse(notifications.preferences(user))


@router.put("/me/notifications", response_model=Preferences)
def put_preferences(changes: Annotated[dict[str, StrictBool], Body()], token: Token) -> Response:
    """Turn kinds of notification mail on (true) or off (false); kinds not named stay as they are."""
    with acting(token) as (session, user):
        return JSONResponse(notifications.set_preferences(session, user, dict(changes)))


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: UnsubscribeToken = "") -> Response:
    """A confirm page for the link in the mail. Never unsubscribes by itself: mail scanners fetch links."""
    try:
        with session_scope() as session:
            target = notifications.read_unsubscribe(session, token)
    except InvalidLink as exc:
        return refusal(request, "Unsubscribe", exc)
    action = html.escape(f"{notifications.UNSUBSCRIBE_PATH}?token={token}", quote=True)
    body = (
        f"<p>Stop sending <strong>{html.escape(target.label)}</strong> e-mails to "
        f"<strong>{html.escape(target.email)}</strong>?</p>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
        f'<p>You can turn it back on in your <a href="{notifications.SETTINGS_PAGE}">notification settings</a>.</p>'
    )
    return small_page("Unsubscribe", body)


@router.post("/unsubscribe")
def unsubscribe(request: Request, token: UnsubscribeToken = "") -> Response:
    """One-click unsubscribe (RFC 8058): turns off the kind of mail the token names, without logging in."""
    try:
        with session_scope() as session:
            target = notifications.unsubscribe(session, token)
    except InvalidLink as exc:
        return refusal(request, "Unsubscribe", exc)
    message = f"You will no longer get '{target.label}' e-mails at {target.email}."
    if wants_html(request):
        settings_link = f'<a href="{notifications.SETTINGS_PAGE}">notification settings</a>'
        return small_page(
            "Unsubscribed", f"<p>{html.escape(message)}</p><p>Change your mind in your {settings_link}.</p>"
        )
    return JSONResponse({"detail": message, "kind": target.kind, "enabled": False})
