"""Cron expressions for backup schedules, evaluated in the schedule's IANA time zone.

Accepts six-field NCRONTAB (``sec min hour day month weekday``, as Azure Functions timer
triggers read them) and classic five-field cron (``min hour day month weekday``, seconds
= 0). Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` ``a-b/n`` ``a/n``, lists and
month/day names; weekday 0 and 7 are Sunday. Day matching follows each dialect: NCRONTAB
needs both day and weekday to match; five-field cron (Vixie) matches either when both
are restricted.

Times are searched on the local wall clock and converted to UTC: a slot inside a
spring-forward gap happens at the shifted instant zoneinfo gives (fold=0), and a slot in
the repeated autumn hour happens once (its first occurrence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {n: i for i, n in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES = ["second", "minute", "hour", "day", "month", "weekday"]
_SEARCH_LIMIT = 200_000  # steps; every step moves at least one field unit
_SEARCH_YEARS = 5  # an expression with no slot within this many years never fires


class CronError(ValueError):
    """An invalid expression or time zone; the message says which field."""


def _value(text: str, index: int) -> int:
    names = _MONTHS if index == 4 else _DAYS if index == 5 else {}
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"{_NAMES[index]} field: {text!r} is not a number")
    return int(text)


def _field(text: str, index: int) -> frozenset[int]:
    lo, hi = _BOUNDS[index]
    values: set[int] = set()
    for raw in text.split(","):
        part, step = raw, 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{_NAMES[index]} field: bad step {step_text!r}")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(part, index)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise CronError(f"{_NAMES[index]} field: {raw!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    if index == 5 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    either_day: bool  # five-field cron: day OR weekday when both are restricted

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) not in (5, 6):
            raise CronError("expected six fields (NCRONTAB: second minute hour day month "
                            "weekday) or five (cron: minute hour day month weekday)")
        five = len(parts) == 5
        if five:
            parts = ["0", *parts]
        fields = [_field(p, i) for i, p in enumerate(parts)]
        restricted = parts[3] not in ("*", "?") and parts[5] not in ("*", "?")
        return cls(" ".join(expression.split()), *fields,  # type: ignore[arg-type,misc]  # six fields
                   either_day=five and restricted)

    def _day_ok(self, t: datetime) -> bool:
        day = t.day in self.days
        weekday = (t.isoweekday() % 7) in self.weekdays
        return (day or weekday) if self.either_day else (day and weekday)

    def next_after(self, t: datetime) -> datetime | None:
        """The first matching wall-clock time strictly after naive ``t``."""
        t = t.replace(microsecond=0) + timedelta(seconds=1)
        last_year = t.year + _SEARCH_YEARS
        for _ in range(_SEARCH_LIMIT):
            if t.year > last_year:
                return None
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)
                     ).replace(day=1)
            elif not self._day_ok(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        return None

    def at_or_before(self, t: datetime) -> datetime | None:
        """The last matching wall-clock time at or before naive ``t``."""
        t = t.replace(microsecond=0)
        first_year = t.year - _SEARCH_YEARS
        for _ in range(_SEARCH_LIMIT):
            if t.year < first_year:
                return None
            if t.month not in self.months:
                t = t.replace(day=1, hour=0, minute=0, second=0) - timedelta(seconds=1)
            elif not self._day_ok(t):
                t = t.replace(hour=0, minute=0, second=0) - timedelta(seconds=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) - timedelta(seconds=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) - timedelta(seconds=1)
            elif t.second not in self.seconds:
                t -= timedelta(seconds=1)
            else:
                return t
        return None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r} (use an IANA name like "
                        "Europe/Amsterdam)") from None


def latest_slot(cron: Cron, tz: ZoneInfo, now: datetime) -> datetime | None:
    """The most recent slot at or before ``now`` (aware), as an aware UTC datetime."""
    local = now.astimezone(tz).replace(tzinfo=None)
    found = cron.at_or_before(local)
    if found is None:
        return None
    slot = found.replace(tzinfo=tz).astimezone(UTC)
    # a wall time in a spring-forward gap maps past ``now``: step back to the slot before
    return slot if slot <= now else latest_slot(cron, tz, now - (slot - now)
                                                - timedelta(seconds=1))


def next_slot(cron: Cron, tz: ZoneInfo, after: datetime) -> datetime | None:
    local = after.astimezone(tz).replace(tzinfo=None)
    found = cron.next_after(local)
    return None if found is None else found.replace(tzinfo=tz).astimezone(UTC)
