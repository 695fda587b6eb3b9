"""Business-time arithmetic: weekends, holidays, clock changes, tickets filed at night; and its settings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from ticketing_app import businesstime
from ticketing_app.config import Settings

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = "mon-fri 09:00-17:00"


def at(zone: ZoneInfo, text: str) -> datetime:
    """A local wall-clock time ("2026-03-27 16:00") in `zone`, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def sched(zone: str = "Europe/Berlin", hours: str = OFFICE, holidays: str = "") -> businesstime.Schedule:
    return businesstime.schedule(hours, zone, holidays)


# (zone, holidays, start local, business hours to add, expected local)
ADD_CASES = [
    # inside hours, same day
    ("Europe/Berlin", "", "2026-12-02 10:00", 3, "2026-12-02 13:00"),
    # runs over the evening into the next morning
    ("Europe/Berlin", "", "2026-12-02 16:00", 3, "2026-12-03 11:00"),
    # exactly to closing time stays on that day
    ("Europe/Berlin", "", "2026-12-02 09:00", 8, "2026-12-02 17:00"),
    # Friday afternoon -> Monday (the weekend does not count)
    ("Europe/Berlin", "", "2026-12-04 15:00", 4, "2026-12-07 11:00"),
    # filed at night: the clock starts at the next opening
    ("Europe/Berlin", "", "2026-12-02 23:30", 1, "2026-12-03 10:00"),
    ("Europe/Berlin", "", "2026-12-03 06:00", 0, "2026-12-03 09:00"),
    # filed on Saturday: Monday's opening
    ("Europe/Berlin", "", "2026-12-05 12:00", 2, "2026-12-07 11:00"),
    # Christmas: Thursday 16:00 + 4h, Friday 25th closed -> Monday 28th 12:00
    ("Europe/Berlin", "2026-12-25", "2026-12-24 16:00", 4, "2026-12-28 12:00"),
    # two holidays in a row, then the weekend
    ("Europe/Berlin", "2026-12-24,2026-12-25", "2026-12-23 16:00", 2, "2026-12-28 10:00"),
    # over the spring-forward weekend in Berlin (29 March 2026): office hours keep their wall-clock times
    ("Europe/Berlin", "", "2026-03-27 16:00", 2, "2026-03-30 10:00"),
    # over the fall-back weekend in Berlin (25 October 2026)
    ("Europe/Berlin", "", "2026-10-23 16:30", 1, "2026-10-26 09:30"),
    # New York changes on other weekends (8 March, 1 November 2026)
    ("America/New_York", "", "2026-03-06 16:00", 2, "2026-03-09 10:00"),
    ("America/New_York", "", "2026-10-30 16:00", 9, "2026-11-02 17:00"),
    ("America/New_York", "", "2026-10-30 16:00", 9.5, "2026-11-03 09:30"),
    # a long target: 72 business hours = 9 working days
    ("America/New_York", "", "2026-12-01 09:00", 72, "2026-12-11 17:00"),
]


@pytest.mark.parametrize(("zone", "holidays", "start", "hours", "expected"), ADD_CASES)
def test_add_business_hours(zone: str, holidays: str, start: str, hours: float, expected: str) -> None:
    tz = ZoneInfo(zone)
    result = businesstime.add(sched(zone, holidays=holidays), at(tz, start), hours * 3600)
    assert result == at(tz, expected)
    assert result.tzinfo == UTC


# (zone, hours, holidays, start local, end local, business hours between)
ELAPSED_CASES = [
    ("Europe/Berlin", OFFICE, "", "2026-12-02 10:00", "2026-12-02 12:30", 2.5),
    ("Europe/Berlin", OFFICE, "", "2026-12-02 20:00", "2026-12-03 08:00", 0),  # the night
    ("Europe/Berlin", OFFICE, "", "2026-12-04 16:00", "2026-12-07 10:00", 2),  # over a weekend
    ("Europe/Berlin", OFFICE, "", "2026-12-05 00:00", "2026-12-06 23:59", 0),  # the weekend itself
    ("Europe/Berlin", OFFICE, "2026-12-25", "2026-12-24 08:00", "2026-12-28 18:00", 16),
    ("Europe/Berlin", OFFICE, "", "2026-11-30 00:00", "2026-12-07 00:00", 40),  # one week
    ("Europe/Berlin", OFFICE, "", "2026-12-03 12:00", "2026-12-02 12:00", 0),  # backwards: none
    # round the clock, a real hour is an hour: 23 of them on the spring-forward day, 25 on the fall-back one
    ("Europe/Berlin", "24/7", "", "2026-03-29 00:00", "2026-03-30 00:00", 23),
    ("Europe/Berlin", "24/7", "", "2026-10-25 00:00", "2026-10-26 00:00", 25),
    ("America/New_York", "24/7", "", "2026-03-08 00:00", "2026-03-09 00:00", 23),
    ("America/New_York", "24/7", "", "2026-11-01 00:00", "2026-11-02 00:00", 25),
    # opening hours across the change (01:00-04:00 local) lose or gain the hour too
    ("Europe/Berlin", "sun 01:00-04:00", "", "2026-03-29 00:00", "2026-03-29 23:00", 2),
    ("Europe/Berlin", "sun 01:00-04:00", "", "2026-10-25 00:00", "2026-10-25 23:00", 4),
    # split days and a short Friday
    (
        "Europe/Berlin",
        "mon-thu 08:00-12:00 13:00-17:00; fri 08:00-12:00",
        "",
        "2026-12-03 11:00",
        "2026-12-04 23:00",
        9,
    ),
]


@pytest.mark.parametrize(("zone", "hours", "holidays", "start", "end", "expected"), ELAPSED_CASES)
def test_elapsed_business_time(zone: str, hours: str, holidays: str, start: str, end: str, expected: float) -> None:
    tz = ZoneInfo(zone)
    assert businesstime.elapsed(sched(zone, hours, holidays), at(tz, start), at(tz, end)) == expected * 3600


@pytest.mark.parametrize("start", ["2026-12-02 10:17", "2026-12-04 16:59", "2026-12-05 03:00", "2026-03-27 12:00"])
@pytest.mark.parametrize("hours", [0.5, 1, 7.9, 8, 40, 100])
def test_elapsed_undoes_add(start: str, hours: float) -> None:
    """From a moment inside hours, the business time between it and `add(it, h)` is h (outside: from the opening)."""
    s = sched(holidays="2026-12-08")
    begin = at(BERLIN, start)
    end = businesstime.add(s, begin, hours * 3600)
    opening = businesstime.add(s, begin, 0)
    assert businesstime.elapsed(s, opening, end) == pytest.approx(hours * 3600)


def test_times_in_other_zones_mean_the_same_moment() -> None:
    s = sched("America/New_York")
    in_utc = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York
    assert businesstime.add(s, in_utc, 3600) == at(NEW_YORK, "2026-12-02 11:00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        businesstime.add(sched(), datetime(2026, 12, 2, 10), 60)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri 09:00-17:00", {0: ((540, 1020),), 4: ((540, 1020),), 5: ()}),
        ("MON-FRI 9:00-17:00", {0: ((540, 1020),)}),
        ("mon,wed 08:00-12:00 13:00-17:30; sat 10:00-24:00", {0: ((480, 720), (780, 1050)), 1: (), 5: ((600, 1440),)}),
        ("24/7", {d: ((0, 1440),) for d in range(7)}),
    ],
)
def test_parse_hours(text: str, expected: dict[int, tuple[tuple[int, int], ...]]) -> None:
    week = businesstime.parse_hours(text)
    for day, ranges in expected.items():
        assert week[day] == ranges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("mon-fri", "no opening times"),
        ("monday 09:00-17:00", "unknown day"),
        ("fri-mon 09:00-17:00", "runs backwards"),
        ("mon-fri 9-17", "not an opening range like 09:00-17:00"),
        ("mon-fri 09:00-25:00", "not a time of day"),
        ("mon-fri 17:00-09:00", "closes before it opens"),
        ("mon 09:00-12:00 11:00-13:00", "overlap on mon"),
    ],
)
def test_parse_hours_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        businesstime.parse_hours(text)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BUSINESS_HOURS": "weekdays 9 to 5"}, "BUSINESS_HOURS: .*unknown day"),
        ({"BUSINESS_TIMEZONE": "Mars/Olympus"}, "BUSINESS_TIMEZONE: 'Mars/Olympus' is not an IANA time zone"),
        ({"HOLIDAYS": "2026-12-25, Christmas"}, "HOLIDAYS: 'Christmas' is not a date"),
        ({"SLA_FIRST_RESPONSE_HOURS_HIGH": "0"}, "greater than 0"),
    ],
)
def test_settings_refuse_bad_business_hours(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_give_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSINESS_HOURS", "mon-fri 08:00-16:00")
    monkeypatch.setenv("BUSINESS_TIMEZONE", "America/New_York")
    monkeypatch.setenv("HOLIDAYS", "2026-12-25")
    schedule = Settings(_env_file=None).business_schedule()  # type: ignore[call-arg]
    assert schedule.zone.key == "America/New_York"
    assert schedule.holidays == {datetime(2026, 12, 25).date()}
    assert schedule.week[0] == ((480, 960),)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0m"), (59, "0m"), (20 * 60, "20m"), (3 * 3600, "3h"), (-4800, "1h 20m")]
)
def test_humanize(seconds: float, text: str) -> None:
    assert businesstime.humanize(seconds) == text


def test_a_closed_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="opens on no day"):
        businesstime.parse_hours(" ; ")


def _day_by_day(s: businesstime.Schedule, start: datetime, end: datetime) -> float:
    """The reference: every day's opening ranges, clipped to the span."""
    total = 0.0
    day = start.astimezone(s.zone).date() - timedelta(days=1)
    while businesstime._moment(day, 0, s.zone) < end:
        for opens, closes in s.open_ranges(day):
            total += max(0.0, (min(closes, end) - max(opens, start)).total_seconds())
        day += timedelta(days=1)
    return total


@pytest.mark.parametrize(
    ("zone", "hours", "holidays"),
    [
        ("Europe/Berlin", OFFICE, "2026-12-24,2026-12-25,2027-01-01,2027-04-05"),
        ("America/New_York", "24/7", "2026-11-26"),
        ("America/New_York", "mon-thu 08:00-12:00 13:00-17:00; fri 08:00-12:00; sun 01:00-03:00", ""),
    ],
)
def test_whole_weeks_at_once_agree_with_day_by_day(zone: str, hours: str, holidays: str) -> None:
    """Long spans (over clock changes and holidays) step a week at a time where they can: same answer."""
    s = sched(zone, hours, holidays)
    rng = random.Random(15)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(60):
        start = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 500))
        end = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 200))
        assert businesstime.elapsed(s, start, end) == _day_by_day(s, start, end)
