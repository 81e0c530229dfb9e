"""Durable entities: the out-of-process entity protocol the Python SDK speaks.

An entity is an instance whose id is the SDK's scheduler id ``@{name lowercased}@{key}``
(``EntityId.get_scheduler_id``). It has no history: its state (JSON text, ``None`` while the
entity does not exist) is kept in the instance's ``output`` column, and its inbox holds
``op`` messages (from clients, orchestrations' ``signal_entity`` / ``call_entity``). One
batch of operations runs at a time per entity, so operations never overlap.

The entity function (``Entity.create(fn)``'s handle) takes the context JSON
``{"self": {"name", "key"}, "state": <JSON text or null>, "exists": bool, "batch": [...]}``
where each batch item is ``{"name": op, "input": <JSON text of the JSON text>}`` (the SDK's
``get_input`` decodes twice), and answers ``{"entityExists", "entityState", "results":
[{"isError", "duration", "startTime", "result"}], "signals"}``.

Orchestrations: a call or signal action (types 7 and 9) is recorded in the caller's history
as ``EventSent`` (``EventId`` = the task id, ``InstanceId`` = the entity, ``Name`` "op",
``Input`` = the request JSON with its ``id``); the answer to a call comes back as
``EventRaised`` named by that request id with ``Input`` ``{"result": <JSON text>}`` (plus
``exceptionType`` when the operation raised), which is what ``TaskOrchestrationExecutor``
and ``ResponseMessage`` read.

Critical sections (``lock``) cannot be reached: azure-functions-durable 1.7.0 has no lock
API (Azure/azure-functions-durable-python issues #277 and #372 are open), so no Python
orchestration can send a lock request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localhost.durable.store import Message

ENTITY_PREFIX = "@"


def is_entity(instance_id: str) -> bool:
    return instance_id.startswith(ENTITY_PREFIX)


def scheduler_id(name: str, key: str) -> str:
    """The instance id of entity ``name``/``key`` (the name is case-insensitive)."""
    return f"@{name.lower()}@{key}"


def split(instance_id: str) -> tuple[str, str]:
    """``(name, key)`` of an entity instance id; the key may itself contain ``@``."""
    name, _, key = instance_id[1:].partition("@")
    return name, key


def operation(name: str, input_json: str | None, *, signal: bool,
              request_id: str | None = None, parent: str | None = None,
              parent_execution: str | None = None) -> Message:
    """An ``op`` message for an entity's inbox."""
    return Message("op", {"name": name, "input": input_json, "signal": signal,
                          "id": request_id, "parent": parent,
                          "parent_execution": parent_execution})


def request_json(target: str, op: Message, parent: str) -> str:
    """The ``Input`` of the caller's ``EventSent``: the request as the extension logs it."""
    body = op.body
    return json.dumps({"id": body["id"], "op": body["name"], "signal": body["signal"],
                       "input": body["input"], "parent": parent, "target": target})


def context_json(instance_id: str, state: str | None, ops: list[Message]) -> str:
    name, key = split(instance_id)
    batch = [{"name": m.body["name"], "input": json.dumps(m.body.get("input") or "null")}
             for m in ops]
    return json.dumps({"self": {"name": name, "key": key}, "state": state,
                       "exists": state is not None, "batch": batch})


@dataclass
class BatchOutcome:
    """What one batch did: the new state (``None``: the entity does not exist) and, per
    operation, ``(result JSON text, error?)``."""

    state: str | None
    results: list[tuple[str, bool]]


def parse_outcome(returned: Any, ops: list[Message], old_state: str | None) -> BatchOutcome:
    data = json.loads(returned) if isinstance(returned, (str, bytes)) else returned
    state = data.get("entityState") if data.get("entityExists") else None
    results: list[tuple[str, bool]] = []
    for i, _ in enumerate(ops):
        rec = (data.get("results") or [])[i] if i < len(data.get("results") or []) else None
        if rec is None:
            results.append((json.dumps("the entity returned no result for this operation"),
                            True))
        else:
            results.append((rec.get("result") or "null", bool(rec.get("isError"))))
    return BatchOutcome(state=state if state is not None else None, results=results)


def failed_batch(ops: list[Message], state: str | None, message: str) -> BatchOutcome:
    """The whole batch failed (the function raised, or is missing): state unchanged."""
    return BatchOutcome(state=state, results=[(json.dumps(message), True)] * len(ops))


def response(op: Message, result: str, error: bool) -> tuple[str, Message] | None:
    """The answer to a ``call_entity`` for the caller's inbox; ``None`` for a signal."""
    body = op.body
    if body.get("signal") or not body.get("parent") or not body.get("id"):
        return None
    payload: dict[str, Any] = {"result": result}
    if error:
        payload["exceptionType"] = "System.Exception"
    return body["parent"], Message("response", {"id": body["id"],
                                               "payload": json.dumps(payload)},
                                   execution_id=body.get("parent_execution"))
