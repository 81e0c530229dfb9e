"""NCRONTAB schedules as the timer trigger reads them: six fields, seconds first.

``{second} {minute} {hour} {day} {month} {day-of-week}``; each field takes ``*``, numbers,
ranges ``a-b``, steps ``*/n`` / ``a-b/n`` / ``a/n``, lists ``a,b``, and month/day names
(``JAN``, ``MON``). Day-of-week 0 and 7 are Sunday. As in NCrontab, a date must satisfy
both the day and the day-of-week field. A TimeSpan (``hh:mm:ss``) means "every interval".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = {n: i for i, n in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES = ["second", "minute", "hour", "day", "month", "day-of-week"]


class ScheduleError(ValueError):
    """An invalid schedule expression; the message names the field."""


def _value(text: str, index: int) -> int:
    names = _MONTHS if index == 4 else _DAYS if index == 5 else {}
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"{_NAMES[index]} field: {text!r} is not a number")
    return int(text)


def _field(text: str, index: int) -> frozenset[int]:
    lo, hi = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{_NAMES[index]} field: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(part, index)
            end = hi if step > 1 else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ScheduleError(f"{_NAMES[index]} field: {part!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    if index == 5 and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``next_after(t)`` is the first occurrence strictly after ``t``."""

    expression: str
    seconds: frozenset[int] = frozenset()
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    interval: timedelta | None = None

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        text = expression.strip()
        span = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", text)
        if span:
            d, h, m, s = (int(g or 0) for g in span.groups())
            interval = timedelta(days=d, hours=h, minutes=m, seconds=s)
            if interval <= timedelta(0):
                raise ScheduleError(f"schedule {expression!r}: interval must be positive")
            return cls(expression, interval=interval)
        parts = text.split()
        if len(parts) != 6:
            raise ScheduleError(f"schedule {expression!r}: NCRONTAB needs six fields "
                                "(second minute hour day month day-of-week)")
        fields = [_field(p, i) for i, p in enumerate(parts)]
        return cls(expression, *fields)  # type: ignore[arg-type]  # six fields, checked above

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment + timedelta(days=366 * 5)
        while t <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)
                     ).replace(day=1)
                continue
            # Python: Monday=0; cron: Sunday=0.
            if t.day not in self.days or (t.weekday() + 1) % 7 not in self.weekdays:
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t += timedelta(seconds=1)
                continue
            return t
        raise ScheduleError(f"schedule {self.expression!r} never occurs")
