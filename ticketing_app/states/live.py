"""Live pages: a per-client background loop that polls a cheap change marker and reloads on change.

The database is the source of truth, so this works with any number of backend and job workers (and
with Reflex's Redis state manager): no in-process pub/sub to miss.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import reflex as rx
from sqlalchemy.orm import Session

from ticketing_app.errors import NotAuthenticated, PermissionDenied
from ticketing_app.models import User
from ticketing_app.services import accounts
from ticketing_app.states.base import run_db

POLL_SECONDS = 1.0


SideFn = Callable[[Session, User], Any]


async def marker_for(
    token: str, fn: Callable[[Session, User], str], side: SideFn | None = None
) -> tuple[str | None, Any]:
    """The marker as the token's user sees it, and what `side` returns in the same transaction (e.g. who else
    has the page open). The marker is None when the session is no longer valid or the page is no longer this
    user's to see (the services refuse); "" after a database blip (try again next round)."""

    def read(session: Session) -> tuple[str | None, Any]:
        try:
            actor = accounts.user_from_token(session, token)
        except Exception:  # noqa: BLE001 - an invalid session simply stops the live loop
            return None, None
        return fn(session, actor), side(session, actor) if side is not None else None

    try:
        return await run_db(read)
    except (NotAuthenticated, PermissionDenied):
        return None, None
    except Exception:  # noqa: BLE001 - database blip: keep the page, try again next round
        return "", None


class LiveMixin(rx.State, mixin=True):
    """Adds `follow`: start it from on_load; it reloads the page's data whenever its marker moves.

    Using pages define `_marker_fn()` (what to fingerprint, as the user sees it) and `_refresh()`
    (reload the data; may return events such as a toast). One loop runs per client and page: a newer
    loop, leaving the page, or an ended session stops the older one. Pages may also set `_live_seconds`
    (the polling period; or override `_live_period()` to choose it per visit), `_live_max_rounds` (a cap on
    the loop's life), override `_live_paused()` (skip rounds, e.g. auto refresh switched off), `_live_ended()`
    (the events to show when the marker says the session or the permission is gone; by default the page stays
    as it is until the next event), and `_live_side_fn()` / `_live_side()` (a second read or write each
    round, e.g. presence, whose result is applied without reloading the page).
    """

    _live_generation: int = 0
    _live_seconds: ClassVar[float] = POLL_SECONDS
    _live_max_rounds: ClassVar[int] = 0  # 0: follow for as long as the tab shows the page

    def _marker_fn(self) -> Callable[[Session, User], str]:
        raise NotImplementedError

    async def _refresh(self) -> Any:
        raise NotImplementedError

    def _live_paused(self) -> bool:
        return False

    def _live_period(self) -> float:
        """The polling period, read when the loop starts (after on_load's earlier events): `_live_seconds`."""
        return self._live_seconds

    def _live_side_fn(self) -> SideFn | None:
        """Something else to do each round in the marker's transaction (None: nothing)."""
        return None

    async def _live_side(self, value: Any) -> None:
        """Receives what `_live_side_fn` returned, each round it changed."""

    async def _live_ended(self) -> Any:
        return None

    if TYPE_CHECKING:  # from AuthState, which every live page extends (a mixin declares no vars of its own)
        token: str

    @rx.event(background=True)
    async def follow(self) -> AsyncIterator[Any]:
        async with self:
            self._live_generation += 1
            generation, token, path = self._live_generation, self.token, self.router.url.path
            seconds, max_rounds = self._live_period(), self._live_max_rounds
        last: str | None = None
        last_side: Any = None
        rounds = 0
        while not max_rounds or rounds < max_rounds:
            rounds += 1
            await asyncio.sleep(seconds)
            async with self:
                if self._live_generation != generation or self.router.url.path != path:
                    return
                if self._live_paused():
                    continue
                marker_fn, side_fn = self._marker_fn(), self._live_side_fn()
            marker, side = await marker_for(token, marker_fn, side_fn)
            if side_fn is not None and marker and side != last_side:
                last_side = side
                async with self:
                    await self._live_side(side)
            if marker is None:
                async with self:
                    still_here = self._live_generation == generation and self.router.url.path == path
                    events = await self._live_ended() if still_here else None
                if events:
                    yield events
                return
            if not marker or marker == last:
                continue
            # Reload on the first reading too: a change that landed between the page's own load and this
            # first reading would otherwise become the baseline and never be shown.
            async with self:
                events = await self._refresh()
            last = marker
            if events:
                yield events
