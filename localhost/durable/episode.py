"""One episode's bookkeeping: which inbox messages become history, and what actions do.

Task ids must match the SDK's own sequence counter. The SDK numbers tasks in the order
they are yielded, plus ids it takes itself while *processing* retry events (a failed
attempt takes an id for its retry timer, a fired retry timer takes one for the next
attempt; see ``RetryAbleTask``). Those retry events never resume user code, so the
planner puts them first in an episode's new events and allocates their ids before the
orchestrator runs; ids for the episode's new actions follow in action order. A full
replay therefore reproduces every id from the stored history.

Retries follow DTFx's interceptor: after every failed attempt one timer, and after the
last attempt one more timer the SDK waits for before failing the task — that final timer
fires at once here, since nothing is retried after it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from localhost.durable import entities
from localhost.durable import history as h
from localhost.durable.store import Bookkeeping, Instance, Message

ACTIVITY, ACTIVITY_RETRY, SUB, SUB_RETRY, CONTINUE_AS_NEW, TIMER, WAIT_EVENT = range(7)
CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY, WHEN_ANY, WHEN_ALL = 7, 8, 9, 11, 12
HTTP_ACTIVITY = "BuiltIn::HttpActivity"  # the name the Durable extension gives call_http


@dataclass
class Work:
    """A side effect to start once the episode is stored."""

    kind: str  # activity | timer
    task_id: int
    payload: dict[str, Any]


@dataclass
class Plan:
    """What the engine does with one batch of inbox messages."""

    new_events: list[dict[str, Any]] = field(default_factory=list)
    scheduled: list[dict[str, Any]] = field(default_factory=list)  # TaskScheduled etc.
    work: list[Work] = field(default_factory=list)
    self_messages: list[Message] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)
    # entity operations to send: (entity instance id, op message)
    entity_ops: list[tuple[str, Message]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # their EventSent events
    continue_as_new: str | None = None
    continued: bool = False
    unsupported: str | None = None


def _alloc(book: Bookkeeping) -> int:
    tid = book.next_id
    book.next_id += 1
    return tid


def admit(inst: Instance, msgs: list[Message], plan: Plan, now: datetime) -> None:
    """Turn inbox messages into this episode's new events (retry events first)."""
    book, ts = inst.book, h.iso(now)
    retry_events: list[dict[str, Any]] = []
    for msg in msgs:
        if msg.kind == "start":
            plan.new_events.append(msg.body["event"])
        elif msg.kind == "event":
            name, data = msg.body["name"], msg.body.get("input")
            if book.waits.get(name, 0) > 0:
                book.waits[name] -= 1
                plan.new_events.append(h.event(h.EVENT_RAISED, ts, Name=name, Input=data))
            else:  # nobody waits yet: hold it until a WaitForExternalEvent names it
                book.buffered.append([name, data])
        elif msg.kind == "response":  # an entity answering call_entity
            rid = msg.body["id"]
            if book.calls.pop(rid, None) is None:
                continue  # stale: from before a restart/termination, or a duplicate
            plan.new_events.append(h.event(h.EVENT_RAISED, ts, Name=rid,
                                           Input=msg.body["payload"]))
        elif msg.kind == "completion":
            ev = msg.body["event"]
            etype = ev["EventType"]
            tid = ev[h.COMPLETION_ID_KEY[etype]]
            owner = book.timers if etype == h.TIMER_FIRED else (
                book.activities if etype in (h.TASK_COMPLETED, h.TASK_FAILED) else book.children)
            if owner.pop(tid, None) is None:
                continue  # stale: already delivered, or from before a restart/termination
            retry = book.retries.get(tid)
            ends_attempt = etype in (h.TASK_COMPLETED, h.SUB_ORCHESTRATION_COMPLETED)
            if retry is not None and ends_attempt:
                book.retries.pop(tid)
                plan.new_events.append(ev)
            elif retry is not None:
                retry_events.append(ev)
            else:
                plan.new_events.append(ev)
    for ev in retry_events:
        _retry_step(inst, ev, plan, now)
    plan.new_events[:0] = retry_events


def _retry_step(inst: Instance, ev: dict[str, Any], plan: Plan, now: datetime) -> None:
    book = inst.book
    tid = ev[h.COMPLETION_ID_KEY[ev["EventType"]]]
    rec = book.retries.pop(tid)
    if ev["EventType"] != h.TIMER_FIRED:  # a failed attempt: wait, then maybe retry
        timer_id = _alloc(book)
        exhausted = rec["attempts"] >= rec["max"]
        fire_at = now if exhausted else now + timedelta(milliseconds=rec["interval_ms"])
        book.retries[timer_id] = rec
        _timer(book, plan, timer_id, h.iso(fire_at), now)
        return
    if rec["attempts"] >= rec["max"]:
        return  # the SDK now fails the task with the last attempt's error
    rec["attempts"] += 1
    attempt_id = _alloc(book)
    book.retries[attempt_id] = rec
    if rec["kind"] == "activity":
        _activity(book, plan, attempt_id, rec["name"], rec["input"], now)
    else:
        child_id = rec["instance_id"] or f"{inst.instance_id}:{attempt_id}"
        _child(inst, plan, attempt_id, rec["name"], rec["input"], child_id, now)


def _timer(book: Bookkeeping, plan: Plan, tid: int, fire_at: str, now: datetime) -> None:
    book.timers[tid] = fire_at
    plan.scheduled.append(h.event(h.TIMER_CREATED, h.iso(now), tid, FireAt=fire_at))
    plan.work.append(Work("timer", tid, {"fire_at": fire_at}))


def _activity(book: Bookkeeping, plan: Plan, tid: int, name: str, data: str | None,
              now: datetime) -> None:
    book.activities[tid] = {"name": name, "input": data}
    plan.scheduled.append(h.event(h.TASK_SCHEDULED, h.iso(now), tid, Name=name, Input=data))
    plan.work.append(Work("activity", tid, {"name": name, "input": data}))


def _child(inst: Instance, plan: Plan, tid: int, name: str, data: str | None, child_id: str,
           now: datetime) -> None:
    inst.book.children[tid] = child_id
    plan.scheduled.append(h.event(h.SUB_ORCHESTRATION_CREATED, h.iso(now), tid, Name=name,
                                  InstanceId=child_id, Input=data))
    plan.children.append({"task_id": tid, "name": name, "input": data,
                          "instance_id": child_id})


def _flatten(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action in actions:
        if action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            out.extend(_flatten(action.get("compoundActions") or []))
        else:
            out.append(action)
    return out


def apply_actions(inst: Instance, actions: list[dict[str, Any]], plan: Plan,
                  now: datetime) -> None:
    """Schedule the episode's new actions, numbering them as the SDK did."""
    book = inst.book
    for action in _flatten(actions):
        kind = action.get("actionType")
        if kind in (ACTIVITY, ACTIVITY_RETRY):
            tid = _alloc(book)
            name, data = action["functionName"], action.get("input")
            if kind == ACTIVITY_RETRY:
                book.retries[tid] = _policy("activity", name, data, action, None)
            _activity(book, plan, tid, name, data, now)
        elif kind in (SUB, SUB_RETRY):
            tid = _alloc(book)
            name, data = action["functionName"], action.get("input")
            explicit = action.get("instanceId")
            if kind == SUB_RETRY:
                book.retries[tid] = _policy("sub", name, data, action, explicit)
            _child(inst, plan, tid, name, data, explicit or f"{inst.instance_id}:{tid}", now)
        elif kind == TIMER:
            tid = _alloc(book)
            if not action.get("isCanceled"):
                _timer(book, plan, tid, action["fireAt"], now)
        elif kind == WAIT_EVENT:
            name = action["externalEventName"]
            book.waits[name] = book.waits.get(name, 0) + 1
            for i, (held_name, held_input) in enumerate(book.buffered):
                if held_name == name:
                    del book.buffered[i]
                    plan.self_messages.append(
                        Message("event", {"name": name, "input": held_input}))
                    break
        elif kind == CONTINUE_AS_NEW:
            _alloc(book)
            plan.continued = True
            plan.continue_as_new = action.get("input")
        elif kind == CALL_HTTP:
            tid = _alloc(book)
            request = action.get("httpRequest") or {}
            data = json.dumps(request)
            book.activities[tid] = {"name": HTTP_ACTIVITY, "input": data}
            plan.scheduled.append(h.event(h.TASK_SCHEDULED, h.iso(now), tid,
                                          Name=HTTP_ACTIVITY, Input=data))
            plan.work.append(Work("activity", tid, {"name": HTTP_ACTIVITY, "input": data}))
        elif kind in (CALL_ENTITY, SIGNAL_ENTITY):
            _entity_action(inst, plan, _alloc(book), action, kind == SIGNAL_ENTITY, now)
        else:  # anything newer than this host
            _alloc(book)
            plan.unsupported = f"action type {kind} is not supported by the local host"


def _entity_action(inst: Instance, plan: Plan, tid: int, action: dict[str, Any],
                   signal: bool, now: datetime) -> None:
    """``call_entity`` / ``signal_entity``: an op for the entity, ``EventSent`` in history."""
    target = action["instanceId"]
    rid = str(uuid.uuid4())
    op = entities.operation(action["operation"], action.get("input"), signal=signal,
                            request_id=rid, parent=inst.instance_id,
                            parent_execution=inst.execution_id)
    if not signal:
        inst.book.calls[rid] = tid
    sent = h.event(h.EVENT_SENT, h.iso(now), tid, InstanceId=target, Name="op",
                   Input=entities.request_json(target, op, inst.instance_id))
    plan.scheduled.append(sent)
    plan.sent.append(sent)
    plan.entity_ops.append((target, op))


def _policy(kind: str, name: str, data: str | None, action: dict[str, Any],
            instance_id: str | None) -> dict[str, Any]:
    options = action.get("retryOptions") or {}
    return {"kind": kind, "name": name, "input": data, "instance_id": instance_id,
            "max": int(options.get("maxNumberOfAttempts", 1)),
            "interval_ms": int(options.get("firstRetryIntervalInMilliseconds", 1000)),
            "attempts": 1}
