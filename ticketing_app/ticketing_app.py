"""The application: Reflex pages for the browser, FastAPI under /api, the job loop in the lifespan."""

import re

import reflex as rx
from starlette.types import ASGIApp

from ticketing_app.api.app import create_api
from ticketing_app.api.headers import SecurityHeaders
from ticketing_app.api.limits import StreamedBodyLimit
from ticketing_app.api.routes.attachments import form_upload_body_limit
from ticketing_app.api.serving import ApiBesideReflex, with_reflex_cors
from ticketing_app.lifespan import app_lifespan
from ticketing_app.pages import add_pages


class HelpdeskApp(rx.App):
    """Reflex's app, with /api/ requests answered by the REST API before Reflex's own stack."""

    def __call__(self) -> ASGIApp:
        # The ASGI factory the server calls (granian in production, uvicorn in development). The security
        # headers wrap both halves: pages, Reflex's own endpoints and /api.
        # Reflex's upload endpoint (the new-ticket and reply forms) reads any body it is sent: bounded here.
        reflex = StreamedBodyLimit(super().__call__(), form_upload_body_limit, _REFLEX_UPLOAD_PATH)
        return SecurityHeaders(ApiBesideReflex(api=_rest_api, reflex=reflex))


_REFLEX_UPLOAD_PATH = re.compile(r"(/.*)?/_upload/?")


_rest_api = with_reflex_cors(create_api())
app = HelpdeskApp()
add_pages(app)
app.register_lifespan_task(app_lifespan)
