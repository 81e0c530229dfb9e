"""The instance store: what an orchestration instance is, and the port that keeps it.

An ``Instance`` holds the status the Durable HTTP API reports (name, runtime status,
input, output, custom status, times), the execution's history, its inbox of messages not
yet processed (activity results, timer fires, raised events, control requests), and the
engine's bookkeeping (``Bookkeeping``: task-id counter, scheduled work, event waits,
retry state). ``InstanceStore`` is the port; ``MemoryStore`` keeps everything in the
process, ``localhost.durable.pg_store.PostgresStore`` persists it so a restarted host
resumes every unfinished orchestration.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from localhost.durable.history import HistoryLog

PENDING = "Pending"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
TERMINATED = "Terminated"
CONTINUED_AS_NEW = "ContinuedAsNew"
SUSPENDED = "Suspended"
TERMINAL = frozenset({COMPLETED, FAILED, TERMINATED})
ALL_STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, TERMINATED, CONTINUED_AS_NEW, SUSPENDED)


class DurableError(Exception):
    """A refused client operation; ``status`` is the HTTP status the Durable API answers."""

    status = 400


class InstanceExists(DurableError):
    """Starting an id whose instance is still Pending, Running or Suspended."""

    status = 409


@dataclass
class Bookkeeping:
    """Engine state derived from the history, kept so a restart needs no re-derivation."""

    next_id: int = 0
    actions_seen: int = 0
    activities: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> name, input
    timers: dict[int, str] = field(default_factory=dict)  # id -> fire_at (ISO)
    children: dict[int, str] = field(default_factory=dict)  # id -> child instance id
    retries: dict[int, dict[str, Any]] = field(default_factory=dict)  # awaited id -> policy
    waits: dict[str, int] = field(default_factory=dict)  # event name -> open waits
    buffered: list[list[Any]] = field(default_factory=list)  # [name, input] raised early
    calls: dict[str, int] = field(default_factory=dict)  # entity request id -> task id

    def to_json(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "actions_seen": self.actions_seen,
                "activities": self.activities, "timers": self.timers,
                "children": self.children, "retries": self.retries, "waits": self.waits,
                "buffered": self.buffered, "calls": self.calls}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bookkeeping:
        def ints(d: dict[str, Any]) -> dict[int, Any]:
            return {int(k): v for k, v in d.items()}
        return cls(next_id=data["next_id"], actions_seen=data["actions_seen"],
                   activities=ints(data["activities"]), timers=ints(data["timers"]),
                   children=ints(data["children"]), retries=ints(data["retries"]),
                   waits=dict(data["waits"]), buffered=list(data["buffered"]),
                   calls=dict(data.get("calls") or {}))


@dataclass
class Message:
    """One inbox entry. ``kind``: start, event, completion, terminate, suspend, resume;
    response (an entity's answer to ``call_entity``); op (an entity operation)."""

    kind: str
    body: dict[str, Any]
    execution_id: str | None = None
    seq: int = 0


@dataclass
class Instance:
    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None
    created_at: datetime
    updated_at: datetime
    output: str | None = None
    custom_status: str | None = None
    version: str = ""
    parent: dict[str, Any] | None = None  # {instance_id, execution_id, task_id}
    history: HistoryLog = field(default_factory=HistoryLog)
    inbox: list[Message] = field(default_factory=list)
    book: Bookkeeping = field(default_factory=Bookkeeping)


@dataclass
class Query:
    """Filters of ``get_status_by`` / purge-by: all optional, combined with AND."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    statuses: tuple[str, ...] = ()
    id_prefix: str | None = None

    def matches(self, inst: Instance) -> bool:
        return ((self.created_from is None or inst.created_at >= self.created_from)
                and (self.created_to is None or inst.created_at <= self.created_to)
                and (not self.statuses or inst.status in self.statuses)
                and (self.id_prefix is None or inst.instance_id.startswith(self.id_prefix)))


@dataclass
class EpisodeWrite:
    """Everything one step of an instance changes, written atomically by the store."""

    instance: Instance
    new_history: list[dict[str, Any]]
    consumed: list[Message]
    reset_history: bool = False  # continue-as-new started a fresh execution
    added_messages: list[tuple[str, Message]] = field(default_factory=list)
    created: list[Instance] = field(default_factory=list)


class InstanceStore(Protocol):
    """The port. Writes are atomic per call; reads return live objects or fresh copies."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, inst: Instance, start: Message) -> None:
        """Insert (or replace a terminal) instance with its start message."""

    async def get(self, instance_id: str) -> Instance | None: ...

    def cached(self, instance_id: str) -> Instance | None:
        """The instance if the store holds it in memory (every unfinished one), no I/O."""

    async def enqueue(self, instance_id: str, msg: Message) -> None:
        """Durably add ``msg`` to the instance's inbox (sets ``msg.seq``)."""

    async def write(self, step: EpisodeWrite) -> None: ...

    async def query(self, q: Query) -> list[Instance]: ...

    async def delete(self, instance_ids: list[str]) -> int: ...

    async def unfinished(self) -> list[Instance]:
        """Every instance not in a terminal status, with history and inbox loaded."""


class MemoryStore:
    """Instances in a dict; the engine's live objects are the stored ones."""

    def __init__(self) -> None:
        self._instances: dict[str, Instance] = {}
        self._seq = itertools.count(1)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create(self, inst: Instance, start: Message) -> None:
        old = self._instances.get(inst.instance_id)
        if old is not None and old.status not in TERMINAL:
            raise InstanceExists(f"An Orchestration instance with the status {old.status} "
                                 "already exists.")
        start.seq = next(self._seq)
        inst.inbox.append(start)
        self._instances[inst.instance_id] = inst

    async def get(self, instance_id: str) -> Instance | None:
        return self._instances.get(instance_id)

    def cached(self, instance_id: str) -> Instance | None:
        return self._instances.get(instance_id)

    async def enqueue(self, instance_id: str, msg: Message) -> None:
        msg.seq = next(self._seq)
        inst = self._instances.get(instance_id)
        if inst is not None:
            inst.inbox.append(msg)

    async def write(self, step: EpisodeWrite) -> None:
        for child in step.created:
            self._instances[child.instance_id] = child
        for target, msg in step.added_messages:
            await self.enqueue(target, msg)

    async def query(self, q: Query) -> list[Instance]:
        return [i for i in self._instances.values() if q.matches(i)]

    async def delete(self, instance_ids: list[str]) -> int:
        return sum(self._instances.pop(i, None) is not None for i in instance_ids)

    async def unfinished(self) -> list[Instance]:
        return [i for i in self._instances.values() if i.status not in TERMINAL]
