"""Domain errors raised by services; the API and the UI turn them into clear messages."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `message` is safe to show to the person who acted."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    status_code = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadRequest(DomainError):
    """A request that cannot be right whatever the data's state (e.g. merging a ticket into itself)."""

    status_code = 400


class InvalidLink(DomainError):
    """A signed link (e.g. one-click unsubscribe) that is forged, altered or cut."""

    status_code = 400


class NotAuthenticated(DomainError):
    status_code = 401


class PermissionDenied(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class TooLarge(DomainError):
    status_code = 413


class TooManyAttempts(DomainError):
    status_code = 429

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
