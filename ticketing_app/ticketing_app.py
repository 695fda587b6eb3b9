"""The application: Reflex pages for the browser, FastAPI under /api, the job loop in the lifespan."""

import reflex as rx

from ticketing_app.api.app import create_api
from ticketing_app.lifespan import app_lifespan
from ticketing_app.pages import admin, auth, queue, tickets  # noqa: F401 - importing registers the pages

app = rx.App(api_transformer=create_api())
app.register_lifespan_task(app_lifespan)
