"""/api/me/notifications (your notification settings) and /api/unsubscribe (one-click unsubscribe, RFC 8058)."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import StrictBool

from ticketing_app.api.deps import Token, acting
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
        return _refusal(request, exc)
    action = html.escape(f"{notifications.UNSUBSCRIBE_PATH}?token={token}", quote=True)
    body = (
        f"<p>Stop sending <strong>{html.escape(target.label)}</strong> e-mails to "
        f"<strong>{html.escape(target.email)}</strong>?</p>"
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
        f'<p>You can turn it back on in your <a href="{notifications.SETTINGS_PAGE}">notification settings</a>.</p>'
    )
    return _page("Unsubscribe", body)


@router.post("/unsubscribe")
def unsubscribe(request: Request, token: UnsubscribeToken = "") -> Response:
    """One-click unsubscribe (RFC 8058): turns off the kind of mail the token names, without logging in."""
    try:
        with session_scope() as session:
            target = notifications.unsubscribe(session, token)
    except InvalidLink as exc:
        return _refusal(request, exc)
    message = f"You will no longer get '{target.label}' e-mails at {target.email}."
    if _wants_html(request):
        settings_link = f'<a href="{notifications.SETTINGS_PAGE}">notification settings</a>'
        return _page("Unsubscribed", f"<p>{html.escape(message)}</p><p>Change your mind in your {settings_link}.</p>")
    return JSONResponse({"detail": message, "kind": target.kind, "enabled": False})


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refusal(request: Request, exc: InvalidLink) -> Response:
    """400: a page for a browser, JSON like every other API refusal otherwise."""
    if _wants_html(request):
        return _page("Unsubscribe", f"<p>{html.escape(exc.message)}</p>", exc.status_code)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


def _page(title: str, body: str, status_code: int = status.HTTP_200_OK) -> HTMLResponse:
    """A tiny page without scripts; `body` is already-escaped HTML."""
    return HTMLResponse(
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · Helpdesk</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;max-width:36em;margin:3em auto;padding:0 1em">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n",
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )
