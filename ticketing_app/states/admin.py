"""States of the admin pages: user management (/admin/users) and the system overview (/admin).

Role checks live in the services: a PermissionDenied answer switches the page to its not-allowed view
and clears whatever it showed. Nothing here runs SQL; every read and write goes through a service.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime
from typing import Any

import reflex as rx
from pydantic import ValidationError
from sqlalchemy.orm import Session

from ticketing_app.errors import DomainError, NotAuthenticated, PermissionDenied
from ticketing_app.models import User
from ticketing_app.schemas import UserFilters, UserOut, UserUpdate
from ticketing_app.services import accounts, reports
from ticketing_app.skills import canonical_skill, normalize_skill
from ticketing_app.states.base import AuthState, error_message, run_db
from ticketing_app.states.formatting import label, when
from ticketing_app.states.paging import PagedMixin

log = logging.getLogger(__name__)

PAGE_SIZE = 20
ROLES = ("user", "moderator", "admin")
ROLE_LABELS = {"user": "User", "moderator": "Moderator", "admin": "Admin"}
MAX_DRAFT_SKILL = 200  # what UserUpdate accepts; the service then applies the real rules (and says why)


# ----- /admin/users -----

def user_row(u: UserOut, actor_id: int) -> dict[str, Any]:
    staff = u.role in ("moderator", "admin")
    return {
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "role": u.role,
        "active": u.is_active,
        "skills": list(u.skills),
        "draft": list(u.skills),
        "dirty": False,
        "load": str(u.open_tickets or 0) if staff else "—",
        "is_self": u.id == actor_id,
        "error": "",
        "notice": "",
    }


class AdminUsersState(PagedMixin, AuthState):
    rows: list[dict[str, Any]] = []
    vocabulary: list[str] = []
    _page_size: int = PAGE_SIZE
    role_filter: str = "all"
    search: str = ""
    loading: bool = True
    forbidden: bool = False
    error: str = ""
    # Whose data `rows` holds: the page shows it only to that user (a shared browser tab after
    # log-out and log-in as someone else never flashes the previous admin's data).
    loaded_for: int = 0

    @rx.var
    def suggestions(self) -> list[str]:
        """Skills to offer while typing: what moderators offer plus everything on this page."""
        names = set(self.vocabulary)
        for row in self.rows:
            names.update(row["skills"])
            names.update(row["draft"])
        return sorted(names)

    def _deny(self) -> None:
        self.forbidden, self.rows, self.vocabulary, self.total, self.error = True, [], [], 0, ""

    @rx.event
    async def load(self) -> Any:
        self.loading = True
        role = None if self.role_filter == "all" else self.role_filter
        try:
            filters = UserFilters(q=self.search or None, role=role, limit=PAGE_SIZE,  # type: ignore[arg-type]
                                  offset=self.page_index * PAGE_SIZE)

            def read(s: Session, u: User) -> tuple[Any, list[str]]:
                page = accounts.list_users(s, u, filters)  # checks the admin role first
                return page, accounts.skill_vocabulary(s)

            page, vocabulary = await self._actor_call(read)
        except NotAuthenticated:
            return rx.redirect("/login")
        except PermissionDenied:
            self._deny()
            return None
        except (DomainError, ValidationError) as exc:
            self.error = error_message(exc)
            return None
        except Exception as exc:  # e.g. the database is unreachable: say so instead of spinning forever
            log.exception("loading the users page failed")
            self.error = error_message(exc)
            return None
        finally:
            self.loading = False
        if page.total and not page.items and self.page_index > 0:  # the last page emptied: step back
            self.page_index = max(0, -(-page.total // PAGE_SIZE) - 1)
            return AdminUsersState.load
        self.forbidden = False
        self.rows = [user_row(u, self.user_id) for u in page.items]
        self.vocabulary = vocabulary
        self.total = page.total
        self.loaded_for = self.user_id
        self.error = ""
        return None

    @rx.event
    async def apply_search(self, form: dict[str, Any]) -> Any:
        self.search, self.page_index = str(form.get("q", "")).strip()[:200], 0
        return await self.load()

    @rx.event
    async def set_role_filter(self, value: str) -> Any:
        self.role_filter = value if value in ROLES else "all"
        self.page_index = 0
        return await self.load()

    async def _refresh(self) -> Any:
        return await self.load()

    # --- per-row edits ---

    def _find(self, user_id: int) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["id"] == user_id), None)

    def _patch(self, user_id: int, **changes: Any) -> None:
        """Replace one row (a new list, so the change reaches the browser)."""
        self.rows = [{**r, **changes} if r["id"] == user_id else r for r in self.rows]

    async def _update(self, user_id: int, notice: str, **fields: Any) -> Any:
        """Send one change through accounts.update_user and show the result in the row."""
        row = self._find(user_id)
        if row is None:
            return None
        self._patch(user_id, error="", notice="")
        try:
            data = UserUpdate(email=row["email"], **fields)
            out = await self._actor_call(lambda s, u: accounts.update_user(s, u, data))
        except NotAuthenticated:
            return rx.redirect("/login")
        except PermissionDenied:
            self._deny()
            return None
        except (DomainError, ValidationError) as exc:
            self._patch(user_id, error=error_message(exc))
            return None
        fresh = user_row(out, self.user_id)
        if row["dirty"] and "skills" not in fields:  # keep unsaved skill edits across a role change
            fresh.update(draft=row["draft"], dirty=True)
        fresh["notice"] = notice
        self._patch(user_id, **fresh)
        self.vocabulary = sorted(set(self.vocabulary) | set(out.skills))
        return rx.toast.success(notice, duration=3000)

    @rx.event
    async def change_role(self, user_id: int, role: str) -> Any:
        row = self._find(user_id)
        if row is None or role == row["role"]:
            return None
        article = "an" if role == "admin" else "a"
        return await self._update(user_id, f"{row['name']} is now {article} {role}.", role=role)

    @rx.event
    async def set_active(self, user_id: int, active: bool) -> Any:
        row = self._find(user_id)
        if row is None:
            return None
        notice = f"{row['name']} is {'active again' if active else 'deactivated'}."
        return await self._update(user_id, notice, active=bool(active))

    @rx.event
    async def save_skills(self, user_id: int) -> Any:
        row = self._find(user_id)
        if row is None:
            return None
        return await self._update(user_id, f"Skills saved for {row['name']}.", skills=list(row["draft"]))

    @rx.event
    def add_skill(self, form: dict[str, Any]) -> Any:
        """The add-skill form of one row: its hidden user_id field says which."""
        raw_id = str(form.get("user_id", ""))
        user_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 10 else 0
        row = self._find(user_id)
        if row is None:
            return None
        name = normalize_skill(str(form.get("skill", "")))[:MAX_DRAFT_SKILL]
        if not name:
            return None
        if canonical_skill(name) in {canonical_skill(s) for s in row["draft"]}:
            self._patch(user_id, error=f"'{name}' is already in the list.", notice="")
            return None
        draft = [*row["draft"], name]
        self._patch(user_id, draft=draft, dirty=draft != row["skills"], error="", notice="")
        return None

    @rx.event
    def remove_skill(self, user_id: int, skill: str) -> None:
        row = self._find(user_id)
        if row is None:
            return
        draft = [s for s in row["draft"] if s != skill]
        self._patch(user_id, draft=draft, dirty=draft != row["skills"], error="", notice="")

    @rx.event
    def reset_skills(self, user_id: int) -> None:
        row = self._find(user_id)
        if row is not None:
            self._patch(user_id, draft=list(row["skills"]), dirty=False, error="", notice="")


# ----- /admin -----

REFRESH_SECONDS = 5.0
MAX_REFRESH_ROUNDS = 12 * 60 * 4  # a loop never outlives ~4 hours, whatever happens to its tab
ERROR_CHARS = 240

STATUS_COLORS = {"open": "blue", "in_progress": "amber", "resolved": "green", "closed": "gray"}
PRIORITY_COLORS = {"high": "red", "medium": "orange", "low": "gray"}
PALETTE = ("indigo", "cyan", "grass", "amber", "crimson", "violet", "teal", "orange", "pink", "brown", "lime")


def human_duration(seconds: float | None) -> str:
    """2.3 s, 4 min, 1.5 h, 2.1 days; an em dash when there is nothing to measure."""
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _series(counts: dict[str, int], colors: dict[str, str] | None = None, order: tuple[str, ...] = ()) -> list[dict]:
    """{key: n} -> chart rows, in `order` first, then by count; colours per key or from the palette."""
    keys = [k for k in order if k in counts] + sorted((k for k in counts if k not in order),
                                                        key=lambda k: (-counts[k], k))
    rows = []
    for i, key in enumerate(keys):
        color = (colors or {}).get(key) or ("gray" if key == "untriaged" else PALETTE[i % len(PALETTE)])
        rows.append({"key": key, "name": label(key), "value": counts[key], "fill": f"var(--{color}-9)"})
    return rows


def _short(text: str | None, limit: int = ERROR_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_overview(s: Session, u: User) -> dict[str, Any]:
    """Everything the overview shows, in one transaction (each service checks the admin role)."""
    overview = reports.ticket_overview(s, u)
    jobs = reports.job_health(s, u)
    emails = reports.recent_emails(s, u)
    return {
        "overview": overview,
        "jobs": jobs,
        "emails": [
            {"id": e.id, "to": e.to_address, "subject": e.subject, "kind": label(e.kind), "status": e.status,
             "attempts": e.attempts, "created": when(e.created_at), "error": _short(e.last_error, 160),
             "error_full": e.last_error or ""}
            for e in emails
        ],
    }


def _read_as(token: str, s: Session) -> tuple[dict[str, Any], User]:
    """The overview read by the token's user (the background loop's own actor check)."""
    actor = accounts.user_from_token(s, token)
    return _read_overview(s, actor), actor


class AdminOverviewState(AuthState):
    per_day: list[dict[str, Any]] = []
    by_category: list[dict[str, Any]] = []
    by_priority: list[dict[str, Any]] = []
    by_status: list[dict[str, Any]] = []
    by_provider: list[dict[str, Any]] = []
    total: int = 0
    open_count: int = 0
    median_assignment: str = "—"
    job_counts: dict[str, int] = {}
    dead_jobs: list[dict[str, Any]] = []
    emails: list[dict[str, Any]] = []
    updated_at: str = ""
    loading: bool = True
    refreshing: bool = False
    forbidden: bool = False
    error: str = ""
    auto_refresh: bool = True
    loaded_for: int = 0
    _refresh_gen: int = 0

    @rx.var
    def failed_emails(self) -> int:
        return sum(1 for e in self.emails if e["status"] == "failed")

    def _deny(self) -> None:
        self.forbidden = True
        self.per_day, self.by_category, self.by_priority, self.by_status, self.by_provider = [], [], [], [], []
        self.dead_jobs, self.emails, self.job_counts, self.total, self.open_count = [], [], {}, 0, 0
        self.median_assignment, self.error = "—", ""

    def _apply(self, data: dict[str, Any]) -> None:
        o, jobs = data["overview"], data["jobs"]
        self.per_day = o["per_day"]
        self.by_category = _series(o["by_category"])
        self.by_priority = _series(o["by_priority"], PRIORITY_COLORS, ("high", "medium", "low"))
        self.by_status = _series(o["by_status"], STATUS_COLORS, ("open", "in_progress", "resolved", "closed"))
        self.by_provider = _series(o["by_provider"])
        self.total = int(o["total"])
        self.open_count = int(o["by_status"].get("open", 0) + o["by_status"].get("in_progress", 0))
        self.median_assignment = human_duration(o["median_seconds_to_assignment"])
        self.job_counts = {k: int(v) for k, v in jobs["counts"].items()}
        self.dead_jobs = [
            {"id": j["id"], "kind": j["kind"], "attempts": j["attempts"], "error": _short(j["error"]),
             "error_full": j["error"], "finished": when(j["finished_at"])}
            for j in jobs["dead"]
        ]
        self.emails = data["emails"]
        self.updated_at = datetime.now(UTC).strftime("%H:%M:%S UTC")
        self.forbidden, self.error = False, ""
        self.loaded_for = self.user_id

    async def _refresh(self) -> Any:
        """Read everything once and show it; returns an event to run (a redirect) or None."""
        self.refreshing = True
        try:
            data = await self._actor_call(_read_overview)
        except NotAuthenticated:
            return rx.redirect("/login")
        except PermissionDenied:
            self._deny()
            return None
        except DomainError as exc:
            self.error = error_message(exc)
            return None
        except Exception as exc:  # e.g. the database is unreachable: say so instead of spinning forever
            log.exception("loading the overview failed")
            self.error = error_message(exc)
            return None
        finally:
            self.loading = self.refreshing = False
        self._apply(data)
        return None

    @rx.event
    async def load(self) -> Any:
        """on_load: read once, then keep the page fresh with one background loop per page visit."""
        self.loading = True
        result = await self._refresh()
        if result is not None or self.forbidden:
            return result
        return AdminOverviewState.keep_fresh

    @rx.event
    async def refresh(self) -> Any:
        return await self._refresh()

    @rx.event
    def set_auto_refresh(self, value: bool) -> None:
        self.auto_refresh = bool(value)

    @rx.event
    async def retry(self, job_id: int) -> Any:
        try:
            await self._actor_call(lambda s, u: reports.retry_job(s, u, int(job_id)))
        except NotAuthenticated:
            return rx.redirect("/login")
        except PermissionDenied:
            self._deny()
            return None
        except DomainError as exc:  # e.g. another admin retried it already: say so, then show the news
            return [rx.toast.error(error_message(exc), duration=5000), AdminOverviewState.refresh]
        self.dead_jobs = [j for j in self.dead_jobs if j["id"] != job_id]
        return [rx.toast.success(f"Job #{job_id} is queued again.", duration=3000), AdminOverviewState.refresh]

    def _still_wanted(self, generation: int) -> bool:
        path = (self.router.url.path or "").rstrip("/")
        return generation == self._refresh_gen and path == "/admin" and not self.forbidden

    @rx.event(background=True, supersedes=True)
    async def keep_fresh(self) -> Any:
        """Re-read every few seconds while this tab shows /admin.

        Started from on_load, so Reflex cancels it when the tab navigates elsewhere or disconnects; a
        newer loop (another visit) bumps the generation, which stops older ones, and the path check
        ends a loop whose page is gone. The database work happens outside the state lock.
        """
        async with self:
            self._refresh_gen += 1
            generation = self._refresh_gen
        for _ in range(MAX_REFRESH_ROUNDS):
            await asyncio.sleep(REFRESH_SECONDS)
            async with self:
                if not self._still_wanted(generation):
                    return None
                if not self.auto_refresh:
                    continue
                token = self.token
            try:
                data, actor = await run_db(functools.partial(_read_as, token))
            except (NotAuthenticated, PermissionDenied):
                async with self:
                    if self._still_wanted(generation):
                        return await self._refresh()  # the normal path: redirect or not-allowed view
                return None
            except Exception:  # a database blip: keep the page, try again next round
                log.warning("overview auto refresh failed; trying again", exc_info=True)
                continue
            async with self:
                if not self._still_wanted(generation):
                    return None
                self._remember(actor)
                self._apply(data)
        return None
