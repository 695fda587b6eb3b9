"""Serve the REST API beside the Reflex app: /api/ requests go to FastAPI directly, the rest to Reflex."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketing_app.config import get_settings

API_PREFIX = "/api/"


class ApiBesideReflex:
    """An ASGI app that hands HTTP requests under /api/ to `api` and everything else to `reflex`.

    Given to Reflex as an `api_transformer`, the API was mounted inside Reflex's own Starlette app, so each
    API request also went through Reflex's middleware stack (error page, context setup, CORS) and router
    before reaching FastAPI's, which cost intake much of its CPU per request (see bench/README.md). Pages,
    Reflex's event socket and the lifespan (where the job loop runs) still go through Reflex unchanged.
    """

    def __init__(self, api: ASGIApp, reflex: ASGIApp) -> None:
        self.api = api
        self.reflex = reflex

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            await self.api(scope, receive, send)
        else:
            await self.reflex(scope, receive, send)


def with_reflex_cors(api: FastAPI) -> FastAPI:
    """The CORS policy of Reflex's own stack (rxconfig's `cors_allowed_origins`): the origins in CORS_ORIGINS,
    by default only the app's own. A page of any other origin gets no Access-Control-Allow-Origin, so a
    browser never hands it an answer (Reflex's default, "*", was reflected back with credentials allowed)."""
    api.add_middleware(
        CORSMiddleware,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        allow_headers=["authorization", "content-type"],
        allow_origins=get_settings().cors_origin_list(),
    )
    return api
