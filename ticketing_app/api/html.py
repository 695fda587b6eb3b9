"""Tiny HTML pages the API serves itself, for links in mails that work without logging in (unsubscribe,
rating): no scripts, so they pass the strictest content security policy."""

from __future__ import annotations

import html

from fastapi import Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse

from ticketing_app.errors import DomainError


def small_page(title: str, body: str, status_code: int = status.HTTP_200_OK) -> HTMLResponse:
    """A page without scripts; `body` is already-escaped HTML."""
    return HTMLResponse(
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · Helpdesk</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;max-width:36em;margin:3em auto;padding:0 1em">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n",
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def wants_html(request: Request) -> bool:
    """A browser following a mail's link (it asks for HTML); API clients get JSON like everywhere else."""
    return "text/html" in request.headers.get("accept", "")


def refusal(request: Request, title: str, exc: DomainError, extra_html: str = "") -> Response:
    """A refused link or form: a page for a browser, JSON {"detail"} otherwise, with the error's status."""
    if wants_html(request):
        return small_page(title, f"<p>{html.escape(exc.message)}</p>{extra_html}", exc.status_code)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
