"""Test data built through the service functions, each in its own committed transaction."""

from __future__ import annotations

import itertools

from ticketing_app.db import session_scope
from ticketing_app.models import Ticket, User
from ticketing_app.schemas import SignupIn, TicketCreate, UserUpdate
from ticketing_app.services import accounts, tickets

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


class Factory:
    """Creates users and tickets the way the application does."""

    def __init__(self) -> None:
        self._admin: User | None = None

    def admin(self, email: str = "admin@example.com") -> User:
        with session_scope() as s:
            user, _ = accounts.ensure_admin(s, email, PASSWORD, name="Ada Admin")
        if self._admin is None:
            self._admin = user
        return user

    def user(
        self, role: str = "user", *, skills: list[str] | None = None, name: str | None = None, email: str | None = None
    ) -> User:
        n = next(_counter)
        email = email or f"{role}{n}@example.com"
        with session_scope() as s:
            user, _ = accounts.signup(s, SignupIn(name=name or f"{role.title()} {n}", email=email, password=PASSWORD))
        if role != "user" or skills:
            admin = self._admin or self.admin()
            with session_scope() as s:
                actor = s.get(User, admin.id)
                accounts.update_user(s, actor, UserUpdate(email=email, role=role, skills=skills or []))
        with session_scope() as s:
            return s.get(User, user.id)

    def token(self, user: User) -> str:
        from ticketing_app.security import create_access_token

        with session_scope() as s:  # the current token version: a role change since `user` was read moves it on
            version = s.get(User, user.id).token_version
        return create_access_token(user.id, version=version)

    def headers(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def ticket(self, requester: User, title: str = "Cannot log in", description: str = "It fails.") -> Ticket:
        with session_scope() as s:
            actor = s.get(User, requester.id)
            created = tickets.create_ticket(s, actor, TicketCreate(title=title, description=description))
            return s.get(Ticket, created.id)
