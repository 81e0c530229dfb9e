"""History events in the shape the Durable extension hands to out-of-process SDKs.

Events are plain dicts with PascalCase keys (``EventType``, ``EventId``, ``IsPlayed``,
``Timestamp`` ...), exactly what ``azure.durable_functions`` parses into ``HistoryEvent``.
``HistoryLog`` keeps an instance's events together with their serialized JSON, so a full
replay joins cached strings instead of re-encoding the whole history every episode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_FAILED = 2
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_SENT = 14
EVENT_RAISED = 15
CONTINUE_AS_NEW = 16
EXECUTION_SUSPENDED = 19
EXECUTION_RESUMED = 20

EVENT_NAMES = {
    EXECUTION_STARTED: "ExecutionStarted", EXECUTION_COMPLETED: "ExecutionCompleted",
    EXECUTION_FAILED: "ExecutionFailed", EXECUTION_TERMINATED: "ExecutionTerminated",
    TASK_SCHEDULED: "TaskScheduled", TASK_COMPLETED: "TaskCompleted",
    TASK_FAILED: "TaskFailed", SUB_ORCHESTRATION_CREATED: "SubOrchestrationInstanceCreated",
    SUB_ORCHESTRATION_COMPLETED: "SubOrchestrationInstanceCompleted",
    SUB_ORCHESTRATION_FAILED: "SubOrchestrationInstanceFailed",
    TIMER_CREATED: "TimerCreated", TIMER_FIRED: "TimerFired",
    ORCHESTRATOR_STARTED: "OrchestratorStarted", ORCHESTRATOR_COMPLETED: "OrchestratorCompleted",
    EVENT_SENT: "EventSent", EVENT_RAISED: "EventRaised", CONTINUE_AS_NEW: "ContinueAsNew",
    EXECUTION_SUSPENDED: "ExecutionSuspended", EXECUTION_RESUMED: "ExecutionResumed",
}

# Events that resolve a task the orchestrator may be waiting on, keyed to the id field.
COMPLETION_ID_KEY = {
    TASK_COMPLETED: "TaskScheduledId", TASK_FAILED: "TaskScheduledId",
    SUB_ORCHESTRATION_COMPLETED: "TaskScheduledId", SUB_ORCHESTRATION_FAILED: "TaskScheduledId",
    TIMER_FIRED: "TimerId",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


_last_iso: tuple[datetime | None, str] = (None, "")


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and a ``Z``, as the SDK's own timestamps look."""
    global _last_iso
    if _last_iso[0] is moment:  # an episode stamps many events with one clock reading
        return _last_iso[1]
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _last_iso = (moment, text)
    return text


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def event(event_type: int, timestamp: str, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {"EventType": event_type, "EventId": event_id, "IsPlayed": False,
            "Timestamp": timestamp, **fields}


class HistoryLog:
    """An instance's history plus each event's JSON as the SDK sees it once replayed.

    Events appended in an episode are serialized with ``IsPlayed: true`` (that is how every
    later replay must see them), lazily: with extended sessions most histories are never
    replayed in full, so most events never need encoding. The episode's own new events are
    sent unplayed.
    """

    __slots__ = ("_played_json", "events")

    def __init__(self, events: list[dict[str, Any]] | None = None) -> None:
        self.events: list[dict[str, Any]] = list(events or ())
        self._played_json: list[str] = []

    def __len__(self) -> int:
        return len(self.events)

    def append(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)

    def extend(self, evs: list[dict[str, Any]]) -> None:
        self.events.extend(evs)

    def context_json(self, new_events: list[dict[str, Any]], **context: Any) -> str:
        """The orchestration trigger payload: played history, then this episode's events."""
        cached = self._played_json
        for ev in self.events[len(cached):]:
            cached.append(json.dumps({**ev, "IsPlayed": True}))
        parts = cached + [json.dumps(ev) for ev in new_events]
        head = json.dumps(context)[1:-1]
        return '{"history": [' + ",".join(parts) + "], " + head + "}"

def json_text(value: Any) -> str | None:
    """A value as the JSON text the SDK and the HTTP API carry (``None`` stays ``None``)."""
    return None if value is None else json.dumps(value)
