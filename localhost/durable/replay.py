"""Drive the real ``azure-functions-durable`` SDK: context JSON in, actions out.

Two ways, same SDK code path for the user's generator:

- ``parse_state`` reads what the orchestrator function returns (or raises, with the
  ``$OutOfProcData$:`` state appended) after a full replay through ``Host.invoke`` — the
  exact protocol of the Functions worker.
- ``Session`` is the local host's *extended session* (the Durable extension's
  ``extendedSessionsEnabled``): it keeps the SDK's ``TaskOrchestrationExecutor`` and its
  generator alive between episodes and feeds it only the new history events, so an episode
  costs O(new events) instead of O(history). The engine drops a session whenever it could
  be out of step (error, continue-as-new, eviction, restart) and falls back to full replay.
"""

from __future__ import annotations

import collections
import functools
import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from azure.durable_functions.models.DurableOrchestrationContext import (
    DurableOrchestrationContext,
)
from azure.durable_functions.models.history.HistoryEvent import HistoryEvent
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.models.ReplaySchema import ReplaySchema
from azure.durable_functions.models.utils.df_serialization import df_dumps
from azure.durable_functions.orchestrator import Orchestrator

from localhost.durable.history import parse_iso

_OOP_MARKER = "\n\n$OutOfProcData$:"
# Replay schema V2 (compound WhenAll/WhenAny actions, host-driven retries); the "new" key
# offers V3, which without timer-duration settings behaves like V2 (no long timers).
SCHEMA = {"upperSchemaVersion": 1, "upperSchemaVersionNew": 2}


@dataclass
class EpisodeResult:
    """What one episode asked for: new actions since the last episode, and the outcome."""

    actions: list[dict[str, Any]]
    total_actions: int
    done: bool = False
    output: str | None = None  # JSON text
    error: str | None = None
    custom_status: str | None = None  # JSON text
    extra: dict[str, Any] = field(default_factory=dict)


def _custom(value: Any) -> str | None:
    return None if value is None else df_dumps(value)


def parse_state(returned: Any, seen: int) -> EpisodeResult:
    """Turn the orchestrator's return value (state JSON text) into an ``EpisodeResult``."""
    state = json.loads(returned) if isinstance(returned, (str, bytes)) else returned
    return _from_state(state, seen, None)


def parse_failure(exc: BaseException, seen: int) -> EpisodeResult:
    """An orchestrator that raised: the SDK appends its state after ``$OutOfProcData$:``."""
    text = str(exc)
    head, sep, tail = text.partition(_OOP_MARKER)
    if sep:
        try:
            state = json.loads(tail)
        except ValueError:
            state = None
        if isinstance(state, dict):
            return _from_state(state, seen, state.get("error") or head)
    return EpisodeResult(actions=[], total_actions=seen, done=True,
                         error=text or type(exc).__name__)


def _from_state(state: dict[str, Any], seen: int, error: str | None) -> EpisodeResult:
    groups = state.get("actions") or []
    flat: list[dict[str, Any]] = [a for group in groups for a in group]
    output = state.get("output")
    return EpisodeResult(
        actions=flat[seen:], total_actions=len(flat),
        done=bool(state.get("isDone")) or error is not None,
        output=None if output is None else json.dumps(output),
        error=error, custom_status=_custom(state.get("customStatus")))


def orchestrator_generator(user_function: Any) -> Any:
    """The user's generator function behind the DFApp's ``Orchestrator.create`` handle."""
    return getattr(user_function, "orchestrator_function", None)


def _history_event(ev: dict[str, Any]) -> HistoryEvent:
    """``HistoryEvent(**ev)`` without ``dateutil``: the timestamps are the host's own ISO
    strings, and parsing them with ``dateutil`` dominated an episode's cost. Sets exactly
    what ``HistoryEvent.__init__`` sets (azure-functions-durable 1.7.0)."""
    he = HistoryEvent.__new__(HistoryEvent)
    he._event_type = ev["EventType"]
    he._event_id = ev["EventId"]
    he._is_played = ev["IsPlayed"]
    he._timestamp = parse_iso(ev["Timestamp"])
    he._is_processed = False
    he.Name = he.InstanceId = he.TaskScheduledId = he.Reason = he.Details = he.Input = None
    for key, value in ev.items():
        if key not in _BASE_KEYS:
            setattr(he, key, value)
    return he


_BASE_KEYS = frozenset({"EventType", "EventId", "IsPlayed", "Timestamp"})
_STARTED = HistoryEventType.ORCHESTRATOR_STARTED
_PLACEHOLDER = {"EventType": _STARTED, "EventId": -1, "IsPlayed": True, "Timestamp": "2000"}

# The SDK's TaskOrchestrationExecutor builds a namedtuple *class* in its constructor, once
# per orchestration: class creation was 4 % of the host's CPU in the e2e bench. The same
# arguments give an equivalent class, so build it once (azure-functions-durable 1.7.0).
_executor_module = importlib.import_module(
    "azure.durable_functions.models.TaskOrchestrationExecutor")
if getattr(_executor_module, "namedtuple", None) is collections.namedtuple:
    vars(_executor_module)["namedtuple"] = functools.lru_cache(maxsize=64)(collections.namedtuple)


def context_from_json(context_json: str) -> DurableOrchestrationContext:
    """``DurableOrchestrationContext.from_json`` with the history parsed by
    ``_history_event`` rather than ``HistoryEvent(**ev)`` (``dateutil``: a third of a new
    session's cost). The constructor sees a placeholder ``OrchestratorStarted`` (it needs
    one); the real history then replaces it and what the constructor derived from the
    history (decision event, current time, version) is derived again, the same way."""
    doc = json.loads(context_json)
    history = doc.get("history") or []
    ctx = DurableOrchestrationContext(**{**doc, "history": [_PLACEHOLDER]})
    ctx._histories = [_history_event(ev) for ev in history]
    ctx.decision_started_event = next(e for e in ctx._histories if e.event_type == _STARTED)
    ctx._current_utc_datetime = ctx.decision_started_event.timestamp
    ctx._version = ctx._extract_version_from_history(ctx._histories)
    return ctx


class Session:
    """A live SDK executor for one execution of one instance."""

    def __init__(self, user_function: Any) -> None:
        self._generator_fn = orchestrator_generator(user_function)
        self._input_type = getattr(user_function, "_df_input_type", None)
        self._orchestrator: Orchestrator | None = None
        self._context: DurableOrchestrationContext | None = None
        self.seen = 0

    @staticmethod
    def supported(user_function: Any) -> bool:
        return orchestrator_generator(user_function) is not None

    def start(self, context_json: str) -> EpisodeResult:
        """First episode of this session: a normal full replay, keeping the executor."""
        ctx = context_from_json(context_json)
        ctx._input_expected_type = self._input_type
        orch = Orchestrator(self._generator_fn)
        self._orchestrator, self._context = orch, ctx
        try:
            returned = orch.handle(ctx)
        except Exception as exc:
            return parse_failure(exc, self.seen)
        return self._advance(parse_state(returned, self.seen))

    def step(self, new_events: list[dict[str, Any]]) -> EpisodeResult:
        """Feed only this episode's events to the live executor (what ``execute`` does)."""
        assert self._orchestrator is not None and self._context is not None
        executor = self._orchestrator.task_orchestration_executor
        ctx = self._context
        events = [_history_event(ev) for ev in new_events]
        ctx._histories.extend(events)
        executor._is_processing_new_events = True
        try:
            for ev in events:
                executor.process_event(ev)
                if executor.has_execution_completed:
                    break
        except Exception as exc:  # raised by the SDK itself, as a full replay would be
            return parse_failure(exc, self.seen)
        if executor.has_execution_completed:
            try:
                returned = executor.get_orchestrator_state_str()
            except Exception as exc:
                return parse_failure(exc, self.seen)
            return self._advance(parse_state(returned, self.seen))
        actions = self._actions(ctx)
        new = [a.to_json() for a in actions[self.seen:]]
        result = EpisodeResult(actions=new, total_actions=len(actions),
                               custom_status=_custom(ctx.custom_status))
        return self._advance(result)

    def record(self, events: list[dict[str, Any]]) -> None:
        """Events the host appends after an episode that the SDK reads without resuming
        user code (``EventSent`` of entity calls): a replay would process them, so the
        live executor does too."""
        assert self._orchestrator is not None and self._context is not None
        executor = self._orchestrator.task_orchestration_executor
        parsed = [_history_event(ev) for ev in events]
        self._context._histories.extend(parsed)
        for ev in parsed:
            executor.process_event(ev)

    @staticmethod
    def _actions(ctx: DurableOrchestrationContext) -> list[Any]:
        if ctx._replay_schema is ReplaySchema.V1:
            return [a for group in ctx._action_payload_v1 for a in group]
        return ctx._action_payload_v2

    def _advance(self, result: EpisodeResult) -> EpisodeResult:
        self.seen = result.total_actions
        return result

    def sequence_number(self) -> int:
        """The SDK's next task id, to cross-check the engine's own counter."""
        return self._context._sequence_number if self._context is not None else -1
