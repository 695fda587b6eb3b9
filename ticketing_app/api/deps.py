"""Request plumbing: the bearer token, and one transaction per action that also resolves the user.

Each endpoint authenticates and acts inside a single `acting()` block, in one thread; ticket intake, one
statement that checks its user itself, runs on the event loop instead (`acting_as_id`). (A session
dependency would take a database connection while authenticating and keep it while the request waits
for a threadpool slot to run the endpoint: under load that exhausts the pool.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from ticketing_app.asyncdb import AutocommitPool
from ticketing_app.db import get_autocommit_pool, session_scope
from ticketing_app.errors import NotAuthenticated
from ticketing_app.models import User
from ticketing_app.security import AccessClaims, client_address
from ticketing_app.services.accounts import claims_from_token, user_from_token


class BearerToken(HTTPBearer):
    """The token from the Authorization header; 401 when there is none (checked against the DB later).

    One dependency, where HTTPBearer plus a function over its result made FastAPI solve two levels for
    every request (more CPU than the check itself; see bench/README.md). Subclassing
    HTTPBearer keeps the bearer scheme in the OpenAPI docs. `async` because it does no I/O: FastAPI runs
    a plain `def` dependency in the thread pool.
    """

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("Log in first: this needs an access token (Authorization: Bearer ...).")
        return token


bearer_token = BearerToken(
    auto_error=False, scheme_name="HTTPBearer", description="The access_token from /api/auth/login or /signup"
)

Token = Annotated[str, Depends(bearer_token)]


@contextmanager
def acting(token: str) -> Iterator[tuple[Session, User]]:
    """One transaction for one action, as the token's (freshly read, active) user."""
    with session_scope() as session:
        yield session, user_from_token(session, token)


def acting_as_claims(token: str) -> tuple[AutocommitPool, AccessClaims]:
    """The event loop's single-statement pool and the token's (signature-checked) claims, for a service that
    checks its user and the token's revocation inside its own statement (ticket intake): no thread-pool hop,
    one round trip."""
    return get_autocommit_pool(), claims_from_token(token)


def request_address(request: Request) -> str:
    """The client's address for throttling: the socket's peer, or X-Forwarded-For only from TRUSTED_PROXIES."""
    return client_address(request.client.host if request.client else "", request.headers.get("x-forwarded-for"))
