"""/api/rate (the rating page behind the resolved mail's links, no log-in) and
/api/tickets/{id}/satisfaction (the requester rates while logged in)."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from ticketing_app.api.deps import Token, acting
from ticketing_app.api.html import refusal, small_page
from ticketing_app.db import session_scope
from ticketing_app.domain import Rating
from ticketing_app.errors import DomainError
from ticketing_app.schemas import SatisfactionIn, SatisfactionOut
from ticketing_app.services import satisfaction

router = APIRouter(tags=["satisfaction"])
RatingToken = Annotated[str, Query(max_length=400, description="The token from the resolved mail's link")]


def _form(token: str, chosen: str | None, comment: str) -> str:
    choices = "".join(
        f'<label style="margin-right:1.5em"><input type="radio" name="rating" value="{r}" required'
        f"{' checked' if chosen == r else ''}> {'Good' if r == Rating.GOOD else 'Bad'}</label>"
        for r in Rating
    )
    return (
        f'<form method="post" action="{satisfaction.RATE_PATH}">'
        f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
        f"<p>{choices}</p>"
        '<p><label for="comment">Anything to add? (optional)</label><br>'
        f'<textarea id="comment" name="comment" rows="4" cols="40" maxlength="{satisfaction.MAX_COMMENT_CHARS}">'
        f"{html.escape(comment)}</textarea></p>"
        '<button type="submit">Send my rating</button></form>'
    )


@router.get("/rate", response_class=HTMLResponse)
def rating_page(
    request: Request, token: RatingToken = "", rating: Annotated[str, Query(max_length=10)] = ""
) -> Response:
    """The page the mail's "good" / "bad" links open. It records nothing by itself: mail scanners open links."""
    try:
        with session_scope() as session:
            page = satisfaction.rating_page(session, token)
    except DomainError as exc:
        return refusal(request, "Rate your ticket", exc)
    chosen = rating if rating in tuple(Rating) else page.rating
    intro = (
        f"<p>How did we do on <strong>{html.escape(page.reference)}</strong> "
        f"&ldquo;{html.escape(page.title)}&rdquo;?</p>"
    )
    if page.rating:
        intro += f"<p>You rated it {html.escape(page.rating)}; you can change that here.</p>"
    return small_page("Rate your ticket", intro + _form(token, chosen, page.comment))


@router.post("/rate", response_class=HTMLResponse)
def rate(
    request: Request,
    token: Annotated[str, Form(max_length=400)] = "",
    rating: Annotated[str, Form(max_length=10)] = "",
    comment: Annotated[str, Form(max_length=satisfaction.MAX_COMMENT_CHARS * 2)] = "",
) -> Response:
    """Record the rating chosen on the page (no log-in: the token says which ticket and whose)."""
    try:
        with session_scope() as session:
            satisfaction.rate_by_token(session, token, rating, comment)
    except DomainError as exc:
        # a choice or comment to fix: the form again
        again = _form(token, rating if rating in tuple(Rating) else None, comment) if exc.status_code == 422 else ""
        return refusal(request, "Rate your ticket", exc, again)
    return small_page("Thank you", "<p>Thank you: your rating helps us get better.</p>")


@router.put("/tickets/{ticket_id}/satisfaction", response_model=SatisfactionOut)
def rate_ticket(ticket_id: int, data: SatisfactionIn, token: Token) -> Response:
    """The requester rates their resolved (or closed) ticket."""
    with acting(token) as (session, user):
        saved = satisfaction.rate(session, user, ticket_id, data.rating, data.comment)
        return JSONResponse(SatisfactionOut.model_validate(saved).model_dump(mode="json"))
