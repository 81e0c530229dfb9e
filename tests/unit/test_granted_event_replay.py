"""``run_task``'s queue loop with and without a decision in ``environment_granted``.

Histories written before the decision travelled with the event have ``{}`` there: the
orchestration must replay them by asking ``acquire_environment`` again, exactly as it did
when they were recorded, or the replay would not match its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from functions.orchestrators._flow import Cancelled, _begin
from functions.payloads import EnvironmentDecision, TaskPlan

PLAN = TaskPlan(task_id="t1", operation="deploy", requested_by="u1", project="shop",
                environment="dev", environment_id="e1", target={"type": "noop"})
WAITING = EnvironmentDecision(acquired=False, ended=False, reason="position 1",
                              position=1).to_json()
ACQUIRED = EnvironmentDecision(acquired=True, ended=False, reason="holds the environment",
                               task=PLAN).to_json()


class Pending:
    def __init__(self, what: tuple[str, str]) -> None:
        self.what = what
        self.result: Any = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Context:
    """Records what the orchestrator schedules; the test plays the history's answers."""

    current_utc_datetime = datetime(2026, 11, 30, 12, 0)

    def __init__(self) -> None:
        self.scheduled: list[tuple[str, str]] = []
        self.events: dict[str, Pending] = {}

    def call_activity_with_retry(self, name: str, retry: Any, payload: Any) -> Pending:
        self.scheduled.append(("activity", name))
        return Pending(("activity", name))

    def wait_for_external_event(self, name: str) -> Pending:
        self.events[name] = Pending(("event", name))
        return self.events[name]

    def create_timer(self, at: datetime) -> Pending:
        self.scheduled.append(("timer", at.isoformat()))
        return Pending(("timer", ""))

    def task_any(self, tasks: list[Pending]) -> list[Pending]:
        return tasks


def _granted(ctx: Context, gen: Any, data: Any) -> Any:
    yielded = gen.send(WAITING)  # first answer: wait in the queue
    assert isinstance(yielded, list)  # task_any(granted, cancel, timer)
    granted = ctx.events["environment_granted"]
    granted.result = data
    return gen.send(granted)


def test_a_granted_event_with_the_decision_starts_the_steps_without_asking_again() -> None:
    ctx = Context()
    gen = _begin(ctx, "t1")  # type: ignore[arg-type]
    next(gen)
    with pytest.raises(StopIteration) as stop:
        _granted(ctx, gen, ACQUIRED)
    assert stop.value.value == PLAN
    assert [s for s in ctx.scheduled if s[0] == "activity"] == [
        ("activity", "acquire_environment")]


@pytest.mark.parametrize("data", [{}, None, "{}"])
def test_an_old_history_with_an_empty_granted_event_asks_acquire_environment_again(
        data: Any) -> None:
    ctx = Context()
    gen = _begin(ctx, "t1")  # type: ignore[arg-type]
    next(gen)
    yielded = _granted(ctx, gen, data)
    assert ctx.scheduled[-1] == ("activity", "acquire_environment")
    assert yielded is not None
    with pytest.raises(StopIteration) as stop:
        gen.send(ACQUIRED)
    assert stop.value.value == PLAN
    assert [s for s in ctx.scheduled if s[0] == "activity"] == [
        ("activity", "acquire_environment")] * 2


def test_a_carried_decision_with_a_refusal_fails_the_task_as_the_activity_answer_would(
        ) -> None:
    from functions.orchestrators._flow import StepFailed

    ctx = Context()
    gen = _begin(ctx, "t1")  # type: ignore[arg-type]
    next(gen)
    refused = dict(ACQUIRED, refused="the grant on cluster c1 was withdrawn")
    with pytest.raises(StepFailed, match="withdrawn"):
        _granted(ctx, gen, refused)


def test_a_task_started_for_it_and_then_cancelled_ends_through_the_orchestration() -> None:
    ctx = Context()
    gen = _begin(ctx, "t1")  # type: ignore[arg-type]
    next(gen)
    cancelled = EnvironmentDecision(acquired=False, ended=False, cancelled=True,
                                    reason="cancel requested").to_json()
    with pytest.raises(Cancelled):
        gen.send(cancelled)
