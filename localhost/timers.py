"""Timer triggers: NCRONTAB schedules in UTC, ``runOnStartup``, past-due catch-up.

Like the Functions host's schedule monitor, the last and next occurrence of every timer
are kept (``<state>/timers/<function>.json``, the ``ScheduleStatus`` shape). At start-up a
timer whose recorded next occurrence has passed runs once with ``past_due=True``; one with
``runOnStartup`` runs once. A timer never overlaps itself: the next occurrence is computed
after the invocation finishes. ``POST /admin/functions/{name}`` fires one now.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.functions import meta
from azure.functions.timer import TimerRequestConverter

from localhost.functions import FunctionInfo
from localhost.ncrontab import Schedule, ScheduleError

if TYPE_CHECKING:
    from localhost.host import Host

log = logging.getLogger("localhost.timers")
_PAST_DUE_TOLERANCE = 1.0  # seconds late before an occurrence counts as past due


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def timer_request(*, past_due: bool, status: dict[str, Any] | None = None) -> func.TimerRequest:
    """Decoded by the library's own converter from the payload the host sends."""
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status or {},
               "IsPastDue": past_due}
    request: func.TimerRequest = TimerRequestConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={})
    return request


class TimerExtension:
    """Built-in: one loop per timer function."""

    name = "timers"

    def __init__(self) -> None:
        self.host: Host | None = None
        self.schedules: dict[str, Schedule] = {}
        self._functions: list[FunctionInfo] = []
        self._tasks: list[asyncio.Task[None]] = []

    def bind(self, host: Host) -> None:
        self.host = host
        for fn in host.functions:
            if fn.trigger_type != "timerTrigger":
                continue
            try:
                expression = str(host.resolve_setting(fn.trigger.get("schedule", "")))
                self.schedules[fn.name] = Schedule.parse(expression)
            except (KeyError, ScheduleError) as exc:
                host.report_broken(fn, str(exc).strip("'\""))
                continue
            self._functions.append(fn)
        host.register_trigger("timerTrigger", lambda fn: None)

    def _status_path(self, fn: FunctionInfo) -> Path:
        assert self.host is not None
        return self.host.state_dir / "timers" / f"{fn.name}.json"

    def _load_status(self, fn: FunctionInfo) -> dict[str, Any]:
        try:
            data = json.loads(self._status_path(fn).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, json.JSONDecodeError):
            return {}

    def _save_status(self, fn: FunctionInfo, status: dict[str, Any]) -> None:
        path = self._status_path(fn)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")  # replace, never truncate: readers see whole files
        tmp.write_text(json.dumps(status), encoding="utf-8")
        tmp.replace(path)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(fn)) for fn in self._functions]

    async def _fire(self, fn: FunctionInfo, *, past_due: bool,
                    status: dict[str, Any]) -> None:
        assert self.host is not None
        try:
            await self.host.invoke(fn, timer_request(past_due=past_due, status=status))
        except Exception:
            log.exception("timer function %s failed", fn.name)

    async def _run(self, fn: FunctionInfo) -> None:
        schedule = self.schedules[fn.name]
        stored = self._load_status(fn)
        now = datetime.now(UTC)
        last = datetime.fromisoformat(stored["Last"]) if stored.get("Last") else None
        recorded_next = datetime.fromisoformat(stored["Next"]) if stored.get("Next") else None
        if fn.trigger.get("runOnStartup"):
            await self._fire(fn, past_due=False, status=self._status(last, now, schedule))
            last = now
        elif recorded_next is not None and recorded_next < now:
            await self._fire(fn, past_due=True, status=self._status(last, now, schedule))
            last = now
        while True:
            now = datetime.now(UTC)
            due = schedule.next_after(now)
            self._save_status(fn, {"Last": _iso(last), "Next": _iso(due),
                                   "LastUpdated": _iso(now)})
            delay = (due - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            late = (datetime.now(UTC) - due).total_seconds() > _PAST_DUE_TOLERANCE
            await self._fire(fn, past_due=late, status=self._status(last, due, schedule))
            last = due

    @staticmethod
    def _status(last: datetime | None, now: datetime, schedule: Schedule) -> dict[str, Any]:
        return {"Last": _iso(last), "Next": _iso(schedule.next_after(now)),
                "LastUpdated": _iso(now)}

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
