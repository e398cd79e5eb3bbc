"""Gate: deploy windows. Timezone-aware days and hours, freeze periods and holidays."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Window
from bot.domain import GateResult

GATE = "window"
DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# How far ahead to look for the next opening; a window closed for longer is reported as such.
HORIZON_DAYS = 400

_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class WindowError(ValueError):
    """A deploy window in deploy.yml that cannot be read."""


@dataclass(frozen=True)
class _Schedule:
    tz: ZoneInfo
    days: frozenset[int]  # 0 = Monday
    hours: tuple[tuple[int, int], ...]  # (start, end) in minutes after local midnight; end may be <= start (overnight)
    closed: tuple[tuple[date, date, str], ...]  # inclusive ranges, with what they are


@dataclass(frozen=True)
class WindowState:
    open: bool
    why_closed: str = ""  # "outside mon-fri 09:00-17:00", "2026-12-25 is a holiday"
    opens_at: datetime | None = None  # next opening, in the window's timezone


def parse_days(text: str) -> frozenset[int]:
    """`mon-fri`, `mon,wed,fri`, `sat-sun`, `fri-mon` (wraps), or a mix: `mon-wed,fri`."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        try:
            a = DAY_NAMES.index(first[:3])
            b = DAY_NAMES.index(last[:3]) if last else a
        except ValueError:
            raise WindowError(f"days: {part!r} is not a day or range of days "
                              "(use e.g. mon-fri or mon,wed,fri)") from None
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def parse_hours(text: str) -> tuple[tuple[int, int], ...]:
    """`09:00-17:00`, overnight `22:00-02:00`, `00:00-24:00`, or several: `09:00-12:00,13:00-17:00`."""
    spans = []
    for part in text.split(","):
        match = _HOURS.match(part.strip())
        if not match:
            raise WindowError(f"hours: {part.strip()!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
            raise WindowError(f"hours: {part.strip()!r} is not a time of day")
        if start == end:
            raise WindowError(f"hours: {part.strip()!r} is empty")
        spans.append((start, end))
    return tuple(spans)


def parse_dates(entries: list[str], what: str) -> tuple[tuple[date, date, str], ...]:
    """ISO dates and `YYYY-MM-DD..YYYY-MM-DD` ranges (both ends included)."""
    ranges = []
    for entry in entries:
        first, dots, last = entry.strip().partition("..")
        try:
            a = date.fromisoformat(first.strip())
            b = date.fromisoformat(last.strip()) if dots else a
        except ValueError:
            raise WindowError(f"{what}: {entry!r} is not a date or YYYY-MM-DD..YYYY-MM-DD range") from None
        if b < a:
            raise WindowError(f"{what}: {entry!r} ends before it starts")
        ranges.append((a, b, what))
    return tuple(ranges)


def _schedule(window: Window) -> _Schedule:
    try:
        tz = ZoneInfo(window.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"timezone: {window.timezone!r} is not an IANA timezone (e.g. America/Toronto)") from None
    closed = parse_dates(window.freeze, "freeze") + parse_dates(window.holidays, "holiday")
    return _Schedule(tz, parse_days(window.days), parse_hours(window.hours), closed)


def _closed_on(schedule: _Schedule, day: date) -> str:
    for a, b, what in schedule.closed:
        if a <= day <= b:
            if what == "holiday":
                return f"{day.isoformat()} is a holiday"
            span = a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}"
            return f"{day.isoformat()} is in a freeze ({span})"
    return ""


def _at(tz: ZoneInfo, day: date, minutes: int) -> datetime:
    """The instant of a local wall-clock time, in UTC. In a spring-forward gap the
    pre-transition offset applies, so 02:30 that day means 03:30 summer time."""
    wall = datetime.combine(day, time(0)) + timedelta(minutes=minutes)
    return wall.replace(tzinfo=tz).astimezone(UTC)


def _spans(schedule: _Schedule, day: date):
    """The open spans (UTC start, UTC end) that begin on local `day`. A span belongs to the day it
    starts on: with mon-fri and 22:00-02:00, Saturday 01:00 is open and Monday 01:00 is not."""
    if day.weekday() not in schedule.days:
        return
    for start, end in schedule.hours:
        end_day = day if end > start else day + timedelta(days=1)
        yield _at(schedule.tz, day, start), _at(schedule.tz, end_day, end)


def window_state(window: Window, now: datetime) -> WindowState:
    """Whether `now` is inside the window and, if not, why and when it next opens.

    A naive `now` is taken as UTC. Raises WindowError when the window cannot be read."""
    schedule = _schedule(window)
    now_utc = (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)
    today = now_utc.astimezone(schedule.tz).date()
    why_closed = _closed_on(schedule, today)
    if not why_closed:
        # Yesterday's overnight span may still be running.
        for day in (today - timedelta(days=1), today):
            if _closed_on(schedule, day):
                continue
            if any(start <= now_utc < end for start, end in _spans(schedule, day)):
                return WindowState(True)
        why_closed = f"outside the deploy window ({window.days} {window.hours} {window.timezone})"
    return WindowState(False, why_closed, _next_opening(schedule, now_utc, today))


def _next_opening(schedule: _Schedule, now_utc: datetime, today: date) -> datetime | None:
    """The first span start after `now` on a day that is not frozen. A span already running
    while `now` is closed can only be one crossing into a frozen date, so it stays closed."""
    for offset in range(HORIZON_DAYS):
        day = today + timedelta(days=offset)
        if _closed_on(schedule, day):
            continue
        starts = [start for start, _ in _spans(schedule, day) if start > now_utc]
        if starts:
            return min(starts).astimezone(schedule.tz)
    return None


def window_gate(window: Window | None, now: datetime, override_reason: str | None) -> GateResult:
    """Pass inside the window (or with no window). Outside it, wait and say when it next opens;
    an override passes only with a reason."""
    if window is None:
        return GateResult.ok(GATE, "no deploy window")
    try:
        state = window_state(window, now)
    except WindowError as exc:
        return GateResult.block(GATE, f"deploy window in .github/deploy.yml is invalid: {exc}")
    if state.open:
        return GateResult.ok(GATE, "inside the deploy window")
    if state.opens_at:
        opens = f"opens {format_opening(state.opens_at)}"
    else:
        opens = f"does not open in the next {HORIZON_DAYS} days"
    if override_reason is not None:
        if not override_reason.strip():
            return GateResult.block(GATE, f"{state.why_closed}; an override of the deploy window needs a reason")
        return GateResult.ok(GATE, f"{state.why_closed}; overridden: {override_reason.strip()}")
    return GateResult.wait(GATE, f"{state.why_closed}; {opens}")


def format_opening(at: datetime) -> str:
    """`Mon 2026-03-09 09:00 EDT`."""
    return at.strftime("%a %Y-%m-%d %H:%M %Z")
