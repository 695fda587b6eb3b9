"""Pagination shared by the list pages: the page index, the page count, and the two buttons' handlers."""

from __future__ import annotations

from typing import Any

import reflex as rx


class PagedMixin(rx.State, mixin=True):
    """Using states set `_page_size`, keep `total` current, and define `_refresh()` to reload the page."""

    page_index: int = 0
    total: int = 0
    _page_size: int = 20

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-self.total // self._page_size))

    def _offset(self) -> int:
        return self.page_index * self._page_size

    async def _refresh(self) -> Any:
        raise NotImplementedError

    @rx.event
    async def next_page(self) -> Any:
        if self.page_index + 1 < self.page_count:
            self.page_index += 1
        return await self._refresh()

    @rx.event
    async def previous_page(self) -> Any:
        self.page_index = max(0, self.page_index - 1)
        return await self._refresh()
