"""Business time: opening hours on weekdays, in one time zone, closed on holidays. Pure arithmetic, no I/O.

A schedule is written as `BUSINESS_HOURS` reads it: groups separated by `;`, each a set of days and one or
more opening ranges, e.g. `mon-fri 09:00-17:00`, `mon-thu 08:00-12:00 13:00-17:00; fri 08:00-12:00`, or
`24/7` (always open). Times are wall-clock times in the schedule's zone; a business hour is a real hour
elapsed while open, so on the day clocks change an opening range that spans the change is an hour shorter
or longer. Every moment in and out is an aware datetime; results are in UTC.

Written here rather than taken from `businesstimedelta` (last release 2019, pytz-based) or `workalendar`
(holiday calendars, no opening hours): what SLAs need is two functions over a weekly table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = "24/7"
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
# How far `add` looks ahead for opening hours before it gives up (a schedule is never closed this long).
_MAX_DAYS = 366 * 5

Range = tuple[int, int]  # minutes after local midnight: [start, end), end up to 24 * 60


@dataclass(frozen=True)
class Schedule:
    """Opening ranges per weekday (Monday = 0), the zone they are read in, and the dates closed all day."""

    week: tuple[tuple[Range, ...], ...]
    zone: ZoneInfo
    holidays: frozenset[date] = frozenset()

    @cached_property
    def nominal_week(self) -> timedelta:
        """A week's opening time by the wall clock (what a week without holidays or clock changes has)."""
        return timedelta(minutes=sum(end - start for ranges in self.week for start, end in ranges))

    def open_ranges(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The opening ranges of a local calendar day as UTC moments (none on a holiday)."""
        if day in self.holidays:
            return
        for start, end in self.week[day.weekday()]:
            opens = _moment(day, start, self.zone)
            closes = _moment(day, end, self.zone)
            if closes > opens:
                yield opens, closes


def _moment(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """Local wall-clock time `minutes` after `day`'s midnight, in UTC (24:00 is the next midnight). A time
    skipped by a clock change counts as the moment the clocks jumped (fold 0: the offset before it)."""
    local = datetime.combine(day + timedelta(days=minutes // (24 * 60)), time(minutes % (24 * 60) // 60, minutes % 60))
    return local.replace(tzinfo=zone).astimezone(UTC)


def parse_hours(text: str) -> tuple[tuple[Range, ...], ...]:
    """`mon-fri 09:00-17:00; sat 10:00-14:00` -> opening ranges per weekday; ValueError says what is wrong."""
    text = text.strip().lower()
    if not text:
        raise ValueError("is empty: write e.g. 'mon-fri 09:00-17:00', or '24/7'")
    if text == ALWAYS:
        return tuple(((0, 24 * 60),) for _ in DAYS)
    week: list[list[Range]] = [[] for _ in DAYS]
    for group in (part.strip() for part in text.split(";")):
        if not group:
            continue
        days_text, _, ranges_text = group.partition(" ")
        ranges = ranges_text.split()
        if not ranges:
            raise ValueError(f"{group!r} has no opening times: write days then times, e.g. 'mon-fri 09:00-17:00'")
        days = _parse_days(days_text, group)
        for item in ranges:
            opening = _parse_range(item, group)
            for day in days:
                week[day].append(opening)
    for day, openings in enumerate(week):
        openings.sort()
        for (_, end), (start, _) in pairwise(openings):
            if start < end:
                raise ValueError(f"opening times overlap on {DAYS[day]}")
    if not any(week):
        raise ValueError("opens on no day")
    return tuple(tuple(openings) for openings in week)


def _parse_days(text: str, group: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{group!r}: unknown day in {part!r}; use {', '.join(DAYS)} and ranges like mon-fri")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"{group!r}: day range {part!r} runs backwards; write it from Monday on (e.g. mon-fri)")
        days.extend(range(start, end + 1))
    return days


def _parse_range(text: str, group: str) -> Range:
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"{group!r}: {text!r} is not an opening range like 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60:
        raise ValueError(f"{group!r}: {text!r} is not a time of day (00:00 to 24:00)")
    if end <= start:
        raise ValueError(f"{group!r}: {text!r} closes before it opens (ranges past midnight: split them at 24:00)")
    return (start, end)


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone name (Europe/Berlin, America/New_York, UTC); ValueError when unknown."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)"
        ) from None


def parse_holidays(text: str) -> frozenset[date]:
    """Comma-separated ISO dates (2026-12-25, 2026-12-26); ValueError names the one that is not a date."""
    days = set()
    for part in (p.strip() for p in text.split(",")):
        if part:
            try:
                days.add(date.fromisoformat(part))
            except ValueError:
                raise ValueError(f"{part!r} is not a date like 2026-12-25") from None
    return frozenset(days)


@lru_cache(maxsize=8)
def schedule(hours: str, zone: str, holidays: str = "") -> Schedule:
    """The schedule these settings describe (parsed once per distinct value)."""
    return Schedule(parse_hours(hours), parse_zone(zone), parse_holidays(holidays))


def _days_from(moment: datetime, zone: ZoneInfo) -> Iterator[date]:
    # From the day before: a range of that day may run into this one across a clock change.
    day = moment.astimezone(zone).date() - timedelta(days=1)
    for _ in range(_MAX_DAYS):
        yield day
        day += timedelta(days=1)


def add(sched: Schedule, start: datetime, seconds: float) -> datetime:
    """The moment `seconds` of business time after `start` (a start outside hours counts from the next
    opening; with 0 seconds that opening itself)."""
    start = _aware(start)
    left = timedelta(seconds=max(0.0, seconds))
    for day in _days_from(start, sched.zone):
        for opens, closes in sched.open_ranges(day):
            if closes <= start:
                continue
            begin = max(opens, start)
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
    raise ValueError("the business hours are closed for years after this moment")


def elapsed(sched: Schedule, start: datetime, end: datetime) -> float:
    """Seconds of business time between two moments (0 when `end` is not after `start`).

    Day by day, except that a whole local week inside the span, without a holiday or a clock change, counts
    its nominal opening time at once (a ticket overdue for a year costs ~60 steps, not ~365 days' conversions).
    """
    start, end = _aware(start), _aware(end)
    if end <= start:
        return 0.0
    total = timedelta()
    day = start.astimezone(sched.zone).date() - timedelta(days=1)
    for _ in range(_MAX_DAYS):
        day_start = _moment(day, 0, sched.zone)
        if day_start >= end:
            break
        if day.weekday() == 0 and day_start >= start and _plain_week(sched, day, end):
            total += sched.nominal_week
            day += timedelta(days=7)
            continue
        for opens, closes in sched.open_ranges(day):
            begin, finish = max(opens, start), min(closes, end)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return total.total_seconds()


def _plain_week(sched: Schedule, monday: date, end: datetime) -> bool:
    """The local week from `monday` ends by `end`, has no holiday and no clock change (the same UTC offset at
    both ends: zones change at most twice a year, months apart)."""
    next_monday = monday + timedelta(days=7)
    if _moment(next_monday, 0, sched.zone) > end:
        return False
    if sched.holidays and any(monday <= day < next_monday for day in sched.holidays):
        return False
    offset = datetime.combine(monday, time()).replace(tzinfo=sched.zone).utcoffset()
    return offset == datetime.combine(next_monday, time()).replace(tzinfo=sched.zone).utcoffset()


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business time needs aware datetimes (with a time zone)")
    return moment.astimezone(UTC)


def humanize(seconds: float) -> str:
    """A business-time span as people read it: 3h 20m, 45m, 30h (in hours, not days: a business day is
    whatever the schedule opens, so "1d" would mislead)."""
    minutes = int(abs(seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours}h {minutes}m"
    if hours:
        return f"{hours}h"
    return f"{minutes}m"
