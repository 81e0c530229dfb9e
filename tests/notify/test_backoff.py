"""The orchestrator's delivery loop: the wait doubles after each failure, stops at the
first success, and gives up quietly after the last attempt (the task is already over)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.orchestrators._flow import deliver_with_backoff
from functions.payloads import NotifyPolicy

START = datetime(2026, 5, 1, tzinfo=UTC)


class Context:
    """Just what the loop uses of DurableOrchestrationContext, recording each call."""

    def __init__(self) -> None:
        self.current_utc_datetime = START
        self.calls: list[tuple[str, Any]] = []

    def call_activity(self, name: str, payload: Any) -> tuple[str, Any]:
        self.calls.append(("activity", payload))
        return ("activity", payload)

    def create_timer(self, fire_at: datetime) -> tuple[str, datetime]:
        self.calls.append(("timer", fire_at - self.current_utc_datetime))
        return ("timer", fire_at)


def drive(failures: int, attempts: int) -> list[tuple[str, Any]]:
    context = Context()
    loop = deliver_with_backoff(context, "notify_task_event", "t1",  # type: ignore[arg-type]
                                NotifyPolicy(attempts=attempts, first_retry_ms=1000))
    failed = 0
    step = next(loop)
    try:
        while True:
            if step[0] == "activity" and failed < failures:
                failed += 1
                step = loop.throw(RuntimeError("sink answered 500"))
            else:
                step = loop.send(None)
    except StopIteration:
        return context.calls


def test_waits_double_between_failed_attempts_until_one_succeeds() -> None:
    calls = drive(failures=2, attempts=4)
    assert [kind for kind, _ in calls] == ["activity", "timer", "activity", "timer",
                                           "activity"]
    assert [wait for kind, wait in calls if kind == "timer"] == [timedelta(seconds=1),
                                                                timedelta(seconds=2)]
    assert calls[0][1] == {"taskId": "t1", "maxAttempts": 4}


def test_after_the_last_attempt_it_gives_up_without_raising() -> None:
    calls = drive(failures=10, attempts=3)
    assert [kind for kind, _ in calls].count("activity") == 3
    assert [wait for kind, wait in calls if kind == "timer"] == [timedelta(seconds=1),
                                                                timedelta(seconds=2)]
