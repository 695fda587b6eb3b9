"""Build the FastAPI application that serves /api and /api/docs."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from ticketing_app.api.errors import install_error_handlers
from ticketing_app.api.limits import BodySizeLimit
from ticketing_app.api.routes import auth, tickets
from ticketing_app.db import ping


def create_api() -> FastAPI:
    app = FastAPI(
        title="AI Helpdesk API",
        version="1.0.0",
        docs_url="/api/docs",
        redoc_url=None,
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
