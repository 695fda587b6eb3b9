"""States of the admin pages: user management (/admin/users) and the system overview (/admin).

Role checks live in the services: a PermissionDenied answer switches the page to its not-allowed view
and clears whatever it showed. Nothing here runs SQL; every read and write goes through a service.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import reflex as rx
from sqlalchemy.orm import Session

from ticketing_app.domain import (
    ACTIVE_STATUSES,
    PRIORITY_COLORS,
    STATUS_COLORS,
    Priority,
    Role,
    TicketStatus,
    label,
)
from ticketing_app.errors import DomainError, PermissionDenied
from ticketing_app.models import User
from ticketing_app.schemas import UserFilters, UserOut, UserUpdate
from ticketing_app.services import accounts, reports, self_service
from ticketing_app.skills import canonical_skill, normalize_skill
from ticketing_app.states.base import (
    AuthState,
    a_flag,
    a_form,
    a_text,
    an_id,
    error_message,
    form_text,
    one_of,
    presents_errors,
)
from ticketing_app.states.formatting import (
    AcceptanceRow,
    DayCount,
    DeadJobRow,
    EmailRow,
    JobCounts,
    SatisfactionRow,
    SeriesRow,
    SlaAttainmentRow,
    UserRow,
    acceptance_rows,
    business_hours_text,
    satisfaction_rows,
    sla_attainment_row,
    when,
)
from ticketing_app.states.live import LiveMixin
from ticketing_app.states.paging import PagedMixin

PAGE_SIZE = 20
ALL_ROLES = "all"
ROLES = tuple(Role)
MAX_DRAFT_SKILL = 200  # what UserUpdate accepts; the service then applies the real rules (and says why)


# ----- /admin/users -----


def user_row(u: UserOut, actor_id: int) -> UserRow:
    return UserRow(
        id=u.id,
        name=u.name,
        email=u.email,
        role=u.role,
        active=u.is_active,
        skills=list(u.skills),
        draft=list(u.skills),
        dirty=False,
        load=str(u.open_tickets or 0) if Role(u.role).is_staff else "—",
        is_self=u.id == actor_id,
        verified=u.email_verified,
    )


class AdminUsersState(PagedMixin, AuthState):
    rows: list[UserRow] = []
    vocabulary: list[str] = []
    _page_size: int = PAGE_SIZE
    role_filter: str = ALL_ROLES
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
            names.update(row.skills)
            names.update(row.draft)
        return sorted(names)

    def _denied(self, exc: PermissionDenied, *_args: Any, **_kwargs: Any) -> Any:
        """Not an admin (any more): the not-allowed view, and nothing of the users kept."""
        self.forbidden, self.rows, self.vocabulary, self.total, self.error = True, [], [], 0, ""
        return None

    @rx.event
    async def load(self) -> Any:
        return await self._load()

    @presents_errors(unexpected="loading the users page")  # e.g. the database is down: say so, never spin
    async def _load(self) -> Any:
        # State reaches the browser when the event ends, so this is what it sees however the read ends.
        self.loading = False
        role = None if self.role_filter == ALL_ROLES else self.role_filter
        filters = UserFilters(
            q=self.search or None,
            role=role,
            limit=PAGE_SIZE,
            offset=self.page_index * PAGE_SIZE,
        )
        result = await self._actor_call(lambda s, u: accounts.list_users_page(s, u, filters))
        page, vocabulary = result.users, result.skill_vocabulary
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
    @presents_errors
    async def apply_search(self, form: dict[str, Any]) -> Any:
        self.search, self.page_index = form_text(a_form(form), "q").strip()[:200], 0
        return await self._load()

    @rx.event
    @presents_errors
    async def set_role_filter(self, value: str) -> Any:
        self.role_filter = one_of(value, (ALL_ROLES, *ROLES))
        self.page_index = 0
        return await self._load()

    async def _refresh(self) -> Any:
        return await self._load()

    # --- per-row edits ---

    def _find(self, user_id: int) -> UserRow | None:
        return next((r for r in self.rows if r.id == user_id), None)

    def _patch(self, user_id: int, **changes: Any) -> None:
        """Replace one row (a new list, so the change reaches the browser)."""
        self.rows = [dataclasses.replace(r, **changes) if r.id == user_id else r for r in self.rows]

    def _row_refused(self, exc: Exception, user_id: int, *_args: Any, **_kwargs: Any) -> Any:
        """A refused edit: the reason goes in the row it was made in."""
        self._patch(user_id, error=error_message(exc))
        return None

    @presents_errors(refused=_row_refused)
    async def _update(self, user_id: int, notice: str, **fields: Any) -> Any:
        """Send one change through accounts.update_user and show the result in the row."""
        row = self._find(user_id)
        if row is None:
            return None
        self._patch(user_id, error="", notice="")
        data = UserUpdate(email=row.email, **fields)
        out = await self._actor_call(lambda s, u: accounts.update_user(s, u, data))
        fresh = user_row(out, self.user_id)
        if row.dirty and "skills" not in fields:  # keep unsaved skill edits across a role change
            fresh = dataclasses.replace(fresh, draft=row.draft, dirty=True)
        self._patch(user_id, **dataclasses.asdict(dataclasses.replace(fresh, notice=notice)))
        self.vocabulary = sorted(set(self.vocabulary) | set(out.skills))
        return rx.toast.success(notice, duration=3000)

    @rx.event
    @presents_errors
    async def change_role(self, user_id: int, role: str) -> Any:
        user_id, role = an_id(user_id), one_of(role, ROLES)
        row = self._find(user_id)
        if row is None or role == row.role:
            return None
        article = "an" if role == Role.ADMIN else "a"
        return await self._update(user_id, f"{row.name} is now {article} {role}.", role=role)

    @rx.event
    @presents_errors
    async def set_active(self, user_id: int, active: bool) -> Any:
        user_id, active = an_id(user_id), a_flag(active)
        row = self._find(user_id)
        if row is None:
            return None
        notice = f"{row.name} is {'active again' if active else 'deactivated'}."
        return await self._update(user_id, notice, active=active)

    @rx.event
    @presents_errors
    async def save_skills(self, user_id: int) -> Any:
        row = self._find(an_id(user_id))
        if row is None:
            return None
        return await self._update(user_id, f"Skills saved for {row.name}.", skills=list(row.draft))

    @rx.event
    @presents_errors
    async def add_skill(self, form: dict[str, Any]) -> Any:
        """The add-skill form of one row: its hidden user_id field says which."""
        form = a_form(form)
        raw_id = form_text(form, "user_id")
        user_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 10 else 0
        row = self._find(user_id)
        if row is None:
            return None
        name = normalize_skill(form_text(form, "skill"))[:MAX_DRAFT_SKILL]
        if not name:
            return None
        if canonical_skill(name) in {canonical_skill(s) for s in row.draft}:
            self._patch(user_id, error=f"'{name}' is already in the list.", notice="")
            return None
        draft = [*row.draft, name]
        self._patch(user_id, draft=draft, dirty=draft != row.skills, error="", notice="")
        return None

    @rx.event
    @presents_errors
    async def remove_skill(self, user_id: int, skill: str) -> None:
        row, skill = self._find(an_id(user_id)), a_text(skill, MAX_DRAFT_SKILL)
        if row is None:
            return
        draft = [s for s in row.draft if s != skill]
        self._patch(user_id, draft=draft, dirty=draft != row.skills, error="", notice="")

    @rx.event
    @presents_errors
    async def send_reset(self, user_id: int) -> Any:
        """Mail this person a password-reset link (an account made for them, or a forgotten password)."""
        row = self._find(an_id(user_id))
        return None if row is None else await self._send_reset(row.id)

    @presents_errors(refused=_row_refused)
    async def _send_reset(self, user_id: int) -> Any:
        self._patch(user_id, error="", notice="")
        notice = await self._actor_call(lambda s, u: self_service.send_password_reset(s, u, user_id))
        self._patch(user_id, notice=notice)
        return rx.toast.success(notice, duration=3000)

    @rx.event
    @presents_errors
    async def reset_skills(self, user_id: int) -> None:
        row = self._find(an_id(user_id))
        if row is not None:
            self._patch(user_id, draft=list(row.skills), dirty=False, error="", notice="")


# ----- /admin -----

REFRESH_SECONDS = 5.0
MAX_REFRESH_ROUNDS = 12 * 60 * 4  # a loop never outlives ~4 hours, whatever happens to its tab
ERROR_CHARS = 240

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


def _series(
    counts: dict[str, int], colors: Mapping[Any, str] | None = None, order: tuple[str, ...] = ()
) -> list[SeriesRow]:
    """{key: n} -> chart rows, in `order` first, then by count; colours per key or from the palette."""
    keys = [k for k in order if k in counts] + sorted(
        (k for k in counts if k not in order), key=lambda k: (-counts[k], k)
    )
    rows = []
    for i, key in enumerate(keys):
        color = (colors or {}).get(key) or ("gray" if key == "untriaged" else PALETTE[i % len(PALETTE)])
        rows.append(SeriesRow(key=key, name=label(key), value=counts[key], fill=f"var(--{color}-9)"))
    return rows


def _short(text: str | None, limit: int = ERROR_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fresh_reading(_s: Session, u: User) -> str:
    """The overview's live marker: a new value every round (it has no cheap fingerprint, so each round
    re-reads everything), once the services still take this user for an admin."""
    accounts.require_admin(u)
    return datetime.now(UTC).isoformat()


class AdminOverviewState(LiveMixin, AuthState):
    per_day: list[DayCount] = []
    by_category: list[SeriesRow] = []
    by_priority: list[SeriesRow] = []
    by_status: list[SeriesRow] = []
    by_provider: list[SeriesRow] = []
    total: int = 0
    open_count: int = 0
    median_assignment: str = "—"
    sla_attainment: list[SlaAttainmentRow] = []
    business_hours: str = ""
    job_counts: JobCounts = JobCounts()
    dead_jobs: list[DeadJobRow] = []
    acceptance: list[AcceptanceRow] = []
    emails: list[EmailRow] = []
    satisfaction: list[SatisfactionRow] = []
    satisfaction_summary: str = ""
    updated_at: str = ""
    loading: bool = True
    refreshing: bool = False
    forbidden: bool = False
    error: str = ""
    auto_refresh: bool = True
    loaded_for: int = 0

    # follow: re-read every few seconds while this tab shows /admin (and auto refresh is on)
    _live_seconds: ClassVar[float] = REFRESH_SECONDS
    _live_max_rounds: ClassVar[int] = MAX_REFRESH_ROUNDS

    def _denied(self, exc: PermissionDenied, *_args: Any, **_kwargs: Any) -> Any:
        """Not an admin (any more): the not-allowed view, and nothing of the overview kept."""
        self.forbidden = True
        self.per_day, self.by_category, self.by_priority, self.by_status, self.by_provider = [], [], [], [], []
        self.dead_jobs, self.emails, self.job_counts, self.total, self.open_count = [], [], JobCounts(), 0, 0
        self.median_assignment, self.error, self.sla_attainment = "—", "", []
        self.acceptance = []
        self.satisfaction, self.satisfaction_summary = [], ""
        return None

    def _apply(self, data: reports.AdminOverview) -> None:
        o, jobs = data.tickets, data.jobs
        self.per_day = [DayCount(day=d["day"], tickets=int(d["tickets"])) for d in o["per_day"]]
        self.by_category = _series(o["by_category"])
        self.by_priority = _series(o["by_priority"], PRIORITY_COLORS, tuple(Priority))
        self.by_status = _series(o["by_status"], STATUS_COLORS, tuple(TicketStatus))
        self.by_provider = _series(o["by_provider"])
        self.total = int(o["total"])
        self.open_count = int(sum(o["by_status"].get(s, 0) for s in ACTIVE_STATUSES))
        self.median_assignment = human_duration(o["median_seconds_to_assignment"])
        csat = data.satisfaction
        self.satisfaction = satisfaction_rows(csat)
        self.satisfaction_summary = (
            f"{csat['share_good']:.0%} good ({csat['good']} good, {csat['bad']} bad) in the last {csat['days']} days"
            if csat["share_good"] is not None
            else f"No ratings in the last {csat['days']} days."
        )
        policy = o.get("sla_policy") or {"business_hours": "", "timezone": "", "holidays": [], "targets": {}}
        self.sla_attainment = [
            sla_attainment_row(entry, policy["targets"].get(entry["priority"])) for entry in o.get("sla_attainment", [])
        ]
        self.business_hours = business_hours_text(policy)
        self.acceptance = acceptance_rows(data.acceptance)
        self.job_counts = JobCounts(**{k: int(v) for k, v in jobs["counts"].items()})
        self.dead_jobs = [
            DeadJobRow(
                id=j["id"],
                kind=j["kind"],
                attempts=j["attempts"],
                error=_short(j["error"]),
                error_full=j["error"],
                finished=when(j["finished_at"]),
            )
            for j in jobs["dead"]
        ]
        self.emails = [
            EmailRow(
                id=e.id,
                recipient=e.to_address,
                subject=e.subject,
                kind=label(e.kind),
                status=e.status,
                attempts=e.attempts,
                created=when(e.created_at),
                error=_short(e.last_error, 160),
                error_full=e.last_error or "",
            )
            for e in data.emails
        ]
        self.updated_at = datetime.now(UTC).strftime("%H:%M:%S UTC")
        self.forbidden, self.error = False, ""
        self.loaded_for = self.user_id

    @presents_errors(unexpected="loading the overview")  # e.g. the database is down: say so, never spin
    async def _refresh(self) -> Any:
        """Read everything once and show it; returns an event to run (a redirect) or None."""
        # State reaches the browser when the event ends, so this is what it sees however the read ends.
        self.loading = self.refreshing = False
        self._apply(await self._actor_call(reports.admin_overview))
        return None

    # --- live: LiveMixin.follow, started from on_load, re-reads every REFRESH_SECONDS ---

    def _marker_fn(self) -> Callable[[Session, User], str]:
        return _fresh_reading

    def _live_paused(self) -> bool:
        return not self.auto_refresh

    async def _live_ended(self) -> Any:
        """The session ended or the role was taken away: the normal path (log-in page, not-allowed view)."""
        return await self._refresh()

    @rx.event
    async def load(self) -> Any:
        self.loading = True
        return await self._refresh()

    @rx.event
    async def refresh(self) -> Any:
        return await self._refresh()

    @rx.event
    @presents_errors
    async def set_auto_refresh(self, value: bool) -> None:
        self.auto_refresh = a_flag(value)

    def _retry_refused(self, exc: DomainError, *_args: Any) -> Any:
        """E.g. another admin retried it already: say so, then show the news."""
        return [rx.toast.error(error_message(exc), duration=5000), AdminOverviewState.refresh]

    @rx.event
    @presents_errors(refused=_retry_refused)
    async def retry(self, job_id: int) -> Any:
        job_id = an_id(job_id)
        await self._actor_call(lambda s, u: reports.retry_job(s, u, int(job_id)))
        self.dead_jobs = [j for j in self.dead_jobs if j.id != job_id]
        return [rx.toast.success(f"Job #{job_id} is queued again.", duration=3000), AdminOverviewState.refresh]
