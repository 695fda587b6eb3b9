"""Reflex configuration. The database URL is the app's own DATABASE_URL setting, never Reflex's db_url.

Port and URLs come from the app's settings, so `.env` works for them as for every other setting.
"""

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from ticketing_app.config import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="ticketing_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # Where the browser reaches the backend (websocket + /api); one port in production mode.
    api_url=_settings.reflex_api_url,
    # Who may open the event socket (and call /api from a browser): CORS_ORIGINS, by default the app's own
    # origin. Reflex's default, "*", let any web page a logged-in person visits drive their session.
    cors_allowed_origins=_settings.cors_origin_list(),
    frontend_port=_settings.port,
    backend_port=_settings.port,
    disable_plugins=[SitemapPlugin],
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="medium"))],
)
