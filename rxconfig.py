"""Reflex configuration. The database URL is the app's own DATABASE_URL setting, never Reflex's db_url."""

import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

config = rx.Config(
    app_name="ticketing_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # Where the browser reaches the backend (websocket + /api); one port in production mode.
    api_url=os.environ.get("REFLEX_API_URL", "http://localhost:3000"),
    frontend_port=int(os.environ.get("PORT", "3000")),
    backend_port=int(os.environ.get("PORT", "3000")),
    disable_plugins=[SitemapPlugin],
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
)
