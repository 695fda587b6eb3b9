"""The browser pages. Each module marks its page functions with `route`; ticketing_app.py adds them once.

Not `@rx.page`: Reflex keeps decorated pages in a list that it re-applies on every compile of the app, and
`reflex run --env prod` compiles twice in one app object's life (in the CLI process, then backend-only in
each worker it forks), so every page was added twice ("Page ... is being redefined with the same
component"). `app.add_page` at import registers each route exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx

PageFn = Callable[[], rx.Component]
ROUTES: list[tuple[PageFn, dict[str, Any]]] = []


def route(path: str, *, title: str, on_load: Any = None) -> Callable[[PageFn], PageFn]:
    """Declare `path` as served by the decorated function (title and on_load as for `rx.App.add_page`)."""

    def register(render: PageFn) -> PageFn:
        ROUTES.append((render, {"route": path, "title": title, "on_load": on_load}))
        return render

    return register


def add_pages(app: rx.App) -> None:
    from ticketing_app.pages import (  # noqa: F401 - importing declares the routes
        account,
        admin,
        auth,
        canned,
        queue,
        settings,
        tickets,
    )

    for render, kwargs in ROUTES:
        app.add_page(render, **kwargs)
