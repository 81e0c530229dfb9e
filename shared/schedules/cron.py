"""Cron expressions for backup schedules and timer triggers, evaluated with croniter.

Accepts six-field NCRONTAB (``sec min hour day month weekday``, as Azure Functions timer
triggers read them) and classic five-field cron (``min hour day month weekday``, seconds
= 0). Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` ``a-b/n`` ``a/n``, lists and
month/day names; weekday 0 and 7 are Sunday. Day matching follows each dialect: NCRONTAB
needs both day and weekday to match; five-field cron (Vixie) matches either when both
are restricted.

``Cron.parse`` is the one place that adapts NCRONTAB to croniter: the seconds field comes
first (``second_at_beginning``) and day and weekday must both match (``day_or=False``).
croniter's own extensions (``L``, ``W``, ``#``, ``H``, wrapping ranges) are refused, so
the accepted syntax is the one documented above, and each error names its field.

Times are searched on the local wall clock and converted to UTC: a slot inside a
spring-forward gap happens at the shifted instant zoneinfo gives (fold=0), and a slot in
the repeated autumn hour happens once (its first occurrence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

_MONTHS = {n: i for i, n in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_NAMES = ["second", "minute", "hour", "day", "month", "weekday"]
_BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_ITEM = re.compile(r"(?:(?P<all>[*?])|(?P<a>\w+)(?:-(?P<b>\w+))?)(?:/(?P<step>\w*))?")
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


def _check_field(text: str, index: int) -> None:
    """Refuse what the documented syntax lacks, naming the field; croniter checks the rest."""
    lo, hi = _BOUNDS[index]
    for raw in text.split(","):
        m = _ITEM.fullmatch(raw)
        if m is None:
            raise CronError(f"{_NAMES[index]} field: {raw!r} is not a number, range or step")
        step = m.group("step")
        if step is not None and (not step.isdigit() or int(step) == 0):
            raise CronError(f"{_NAMES[index]} field: bad step {step!r}")
        if m.group("all"):
            continue
        start = _value(m.group("a"), index)
        end = _value(m.group("b"), index) if m.group("b") else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise CronError(f"{_NAMES[index]} field: {raw!r} is outside {lo}-{hi}")
    probe = ["*"] * 6
    probe[index] = text
    try:
        croniter.expand(" ".join(probe), second_at_beginning=True)
    except CroniterError as exc:
        raise CronError(f"{_NAMES[index]} field: {text!r} is not valid ({exc})") from None


@dataclass(frozen=True)
class Cron:
    expression: str
    croniter_expression: str  # six fields, seconds first
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
        for index, part in enumerate(parts):
            _check_field(part, index)
        # croniter takes ``?`` only in the day fields; elsewhere it means ``*``
        parts = [p if i in (3, 5) else p.replace("?", "*") for i, p in enumerate(parts)]
        return cls(" ".join(expression.split()), " ".join(parts), either_day=five)

    def _iter(self, start: datetime) -> croniter:
        return croniter(self.croniter_expression, start, second_at_beginning=True,
                        day_or=self.either_day, max_years_between_matches=_SEARCH_YEARS)

    def next_after(self, t: datetime) -> datetime | None:
        """The first matching wall-clock time strictly after naive ``t``."""
        try:
            found: datetime = self._iter(t.replace(microsecond=0)).get_next(datetime)
        except CroniterBadDateError:
            return None
        return found

    def at_or_before(self, t: datetime) -> datetime | None:
        """The last matching wall-clock time at or before naive ``t``."""
        try:
            found: datetime = self._iter(
                t.replace(microsecond=0) + timedelta(seconds=1)).get_prev(datetime)
        except CroniterBadDateError:
            return None
        return found


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


def next_slots(cron: Cron, tz: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots after ``after`` (fewer if the expression stops firing)."""
    slots: list[datetime] = []
    current = after
    while len(slots) < count:
        found = next_slot(cron, tz, current)
        if found is None:
            break
        slots.append(found)
        current = found
    return slots
