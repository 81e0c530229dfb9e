"""NCRONTAB schedules as the timer trigger reads them: six fields, seconds first.

``{second} {minute} {hour} {day} {month} {day-of-week}``, evaluated by the same cron module
as backup schedules (``shared.schedules.cron``, croniter underneath), restricted here to the
six-field dialect: a date must satisfy both the day and the day-of-week field. A TimeSpan
(``hh:mm:ss``) means "every interval".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.schedules.cron import Cron, CronError


class ScheduleError(ValueError):
    """An invalid schedule expression; the message names the field."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``next_after(t)`` is the first occurrence strictly after ``t``."""

    expression: str
    cron: Cron | None = None
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
        if len(text.split()) != 6:
            raise ScheduleError(f"schedule {expression!r}: NCRONTAB needs six fields "
                                "(second minute hour day month day-of-week)")
        try:
            return cls(expression, cron=Cron.parse(text))
        except CronError as exc:
            raise ScheduleError(str(exc)) from None

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        assert self.cron is not None
        found = self.cron.next_after(moment.replace(tzinfo=None))
        if found is None:
            raise ScheduleError(f"schedule {self.expression!r} never occurs")
        return found.replace(tzinfo=moment.tzinfo)
