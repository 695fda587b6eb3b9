"""Request-scoped dependencies: one database transaction per request, and the acting user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ticketing_app.db import session_scope
from ticketing_app.models import User
from ticketing_app.services.accounts import user_from_token

_bearer = HTTPBearer(auto_error=False, description="The access_token from /api/auth/login or /signup")


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    return user_from_token(session, credentials.credentials if credentials else None)


CurrentUser = Annotated[User, Depends(get_current_user)]
