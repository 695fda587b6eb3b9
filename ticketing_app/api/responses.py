"""JSON responses built in the endpoint itself."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """`model` as JSON, serialised in the endpoint's own worker thread.

    For a plain `def` endpoint FastAPI validates a returned model against `response_model` again, in a
    second thread-pool hop, a large part of intake's framework cost (see bench/README.md). Every endpoint returns
    the output model the service built (and validated on construction), so that check only repeated it.
    `response_model` stays on the route for the OpenAPI schema.
    """
    return Response(content=model.model_dump_json(), status_code=status_code, media_type="application/json")
