"""Build the FastAPI application that serves /api and /api/docs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from ticketing_app.api.errors import install_error_handlers
from ticketing_app.api.limits import BodySizeLimit
from ticketing_app.api.routes import (
    attachments,
    auth,
    canned_replies,
    filters,
    me,
    notifications,
    satisfaction,
    tickets,
    users,
)
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
    app.add_middleware(BodySizeLimit, larger=[(attachments.UPLOAD_PATH, attachments.upload_body_limit)])
    # Included straight into the app (not through an "/api" router): FastAPI matches every request
    # against each level of nesting. Tickets first: POST /api/tickets is the busiest route.
    app.include_router(tickets.router, prefix="/api")
    app.include_router(auth.router, prefix="/api")
    app.include_router(canned_replies.router, prefix="/api")
    app.include_router(notifications.router, prefix="/api")
    app.include_router(satisfaction.router, prefix="/api")
    app.include_router(filters.router, prefix="/api")
    app.include_router(attachments.router, prefix="/api")
    app.include_router(me.router, prefix="/api")
    app.include_router(users.router, prefix="/api")

    @app.get("/api/health", tags=["health"])
    def health() -> dict[str, object]:
        ok = ping()
        return {"status": "ok" if ok else "degraded", "database": ok}

    return app
