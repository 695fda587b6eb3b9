"""The REST API alone as an ASGI app (`granian --interface asgi ticketing_app.api.asgi:app`).

The normal deployment serves it inside the Reflex app; this entry point serves only /api (no UI, no
in-process job loop), e.g. for a separate API tier or for tests that need several API processes.
"""

from ticketing_app.api.app import create_api
from ticketing_app.api.headers import SecurityHeaders
from ticketing_app.api.serving import with_reflex_cors

app = SecurityHeaders(with_reflex_cors(create_api()))
