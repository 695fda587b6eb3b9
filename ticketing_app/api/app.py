"""Build the FastAPI application that serves /api and /api/docs."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from ticketing_app.api.errors import install_error_handlers
from ticketing_app.api.limits import BodySizeLimit
from ticketing_app.api.routes import auth, tickets
from ticketing_app.db import ping


def create_api() -> FastAPI:
    # Swagger UI assets are served locally: the docs page works without internet access.
    app = FastAPIOffline(
        title="AI Helpdesk API",
        version="1.0.0",
        docs_url="/api/docs",
        redoc_url=None,
        static_url="/api/docs-static",
        openapi_url="/api/openapi.json",
        description="Tickets triaged by AI and routed to the right moderator.",
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    api = APIRouter(prefix="/api")
    api.include_router(auth.router)
    api.include_router(tickets.router)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, object]:
        ok = ping()
        return {"status": "ok" if ok else "degraded", "database": ok}

    app.include_router(api)
    return app
