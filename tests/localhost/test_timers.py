"""Timer triggers: NCRONTAB parsing, schedules firing, run-on-startup, past-due, fire-now."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from localhost.ncrontab import Schedule, ScheduleError
from tests.localhost.conftest import RunningHost, start_host
from tests.waiting import wait_until


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("0 */5 * * * *", "2026-01-01T10:03:10", "2026-01-01T10:05:00"),
    ("30 0 9 * * MON-FRI", "2026-11-27T09:00:31", "2026-11-30T09:00:30"),  # Fri → Mon
    ("0 0 0 1 JAN *", "2026-06-01T00:00:00", "2027-01-01T00:00:00"),
    ("*/15 * * * * *", "2026-01-01T00:00:59", "2026-01-01T00:01:00"),
    ("0 0 12 29 2 *", "2026-03-01T00:00:00", "2028-02-29T12:00:00"),
    ("0 0 0 * * 7", "2026-11-27T00:00:00", "2026-11-29T00:00:00"),  # 7 = Sunday
    ("00:00:10", "2026-01-01T00:00:00", "2026-01-01T00:00:10"),  # TimeSpan form
])
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert Schedule.parse(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize("expression", ["* * * * *", "61 * * * * *", "*/0 * * * * *",
                                        "a b c d e f", "0 0 0 31 2 *"])
def test_invalid_or_impossible_schedules_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(expression).next_after(at("2026-01-01T00:00:00"))


def test_every_second_timer_runs_on_startup_then_on_schedule(tmp_path: Path) -> None:
    running = start_host("timers", tmp_path)
    try:
        runs = running.host.module.runs
        wait_until(lambda: len(runs) >= 3, "three timer runs")
        assert runs[0][0] is False  # runOnStartup is not past due
        status = json.loads((tmp_path / "state" / "timers" / "every_second.json").read_text())
        assert status["Next"] is not None
    finally:
        running.stop()


def test_missed_occurrence_runs_once_at_startup_as_past_due(
        basic: RunningHost, tmp_path: Path) -> None:
    timers = tmp_path / "state" / "timers"
    timers.mkdir(parents=True)
    (timers / "ticker.json").write_text(json.dumps(
        {"Last": "2020-01-01T00:00:00+00:00", "Next": "2021-01-01T00:00:00+00:00"}))
    running = start_host("basic", tmp_path)
    try:
        wait_until(lambda: len(running.host.module.timer_runs) == 1, "the past-due run")
        assert running.host.module.timer_runs[0]["past_due"] is True
    finally:
        running.stop()


def test_admin_endpoint_fires_a_timer_now(basic: RunningHost) -> None:
    master = {"x-functions-key": basic.host.keys.master_key}
    before = len(basic.host.module.timer_runs)
    reply = basic.post("/admin/functions/ticker", b'{"input": ""}', headers=master)
    assert reply.status == 202
    wait_until(lambda: len(basic.host.module.timer_runs) == before + 1,
               "the admin-triggered run")
    assert basic.host.module.timer_runs[-1]["past_due"] is False


def test_admin_endpoint_refuses_bad_requests(basic: RunningHost) -> None:
    master = {"x-functions-key": basic.host.keys.master_key}
    assert basic.post("/admin/functions/ticker", b"{}").status == 401
    assert basic.post("/admin/functions/nope", b"{}", headers=master).status == 404
    assert basic.post("/admin/functions/echo", b"{}", headers=master).status == 400
    assert basic.post("/admin/functions/ticker", b"{bad", headers=master).status == 400
    assert basic.post("/admin/functions/ticker", b'{"input": 5}', headers=master).status == 400
