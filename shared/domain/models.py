"""The control plane's models as plain dataclasses, built from database rows."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Self
from uuid import UUID


class _FromRow:
    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # subclasses are dataclasses
        return cls(**{k: v for k, v in row.items() if k in names})


@dataclass(frozen=True)
class Project(_FromRow):
    id: UUID
    slug: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Environment(_FromRow):
    id: UUID
    project_id: UUID
    slug: str
    name: str
    kind: str
    target: dict[str, Any]
    database: dict[str, Any]
    parent_id: UUID | None
    expires_at: datetime | None
    url: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Task(_FromRow):
    id: UUID
    seq: int
    project_id: UUID
    environment_id: UUID
    operation: str
    status: str
    progress: int
    parameters: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    reason: str | None
    requested_by: str
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_seq: int | None = None  # None while the task waits for approval
    approval: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None  # resolved at request time (shared.grants.plan)
    requested_by_name: str | None = None  # shown; ``requested_by`` is the stable id
    # secret parameter values (a script's ``secret`` parameters, a package URL's query):
    # read by the steps that need them, masked in logs, never in task JSON
    secrets: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ActivityEntry(_FromRow):
    id: int
    at: datetime
    actor: str
    action: str
    project_id: UUID | None
    environment_id: UUID | None
    task_id: UUID | None
    details: dict[str, Any]
    actor_name: str | None = None  # shown; ``actor`` is the stable id


@dataclass(frozen=True)
class AgentPool(_FromRow):
    id: UUID
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class Agent(_FromRow):
    id: UUID
    pool_id: UUID
    name: str
    key_expires_at: datetime
    enabled: bool
    version: str
    os: str
    capacity: int
    last_heartbeat_at: datetime | None
    created_at: datetime
    labels: tuple[str, ...] = field(default=())
    online: bool = False
    revoked_at: datetime | None = None
    key_rotated_at: datetime | None = None


@dataclass(frozen=True)
class Job(_FromRow):
    id: UUID
    seq: int
    task_id: UUID
    pool_id: UUID
    demands: list[str]
    kind: str
    payload: dict[str, Any]
    status: str
    agent_id: UUID | None
    attempts: int
    lease_expires_at: datetime | None
    cancel_requested: bool
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None
    max_attempts: int = 1
    progress: int | None = None
    event_delivered_at: datetime | None = None
    event_attempts: int = 0
    cancel_requested_by: str | None = None
    renewed_at: datetime | None = None


@dataclass(frozen=True)
class Backup(_FromRow):
    id: UUID
    environment_id: UUID
    task_id: UUID | None
    location: str
    size_bytes: int
    sha256: str
    created_at: datetime
    kind: str = "backup"  # or "safety": taken by a restore of the state it replaced
    duration_ms: int | None = None  # how long the dump and upload took (agent-measured)
    tool_versions: dict[str, Any] | None = None  # e.g. {"pg_dump": "16.2"}


@dataclass(frozen=True)
class BackupSchedule(_FromRow):
    id: UUID
    environment_id: UUID
    cron: str
    timezone: str
    retain_count: int | None
    retain_days: int | None
    enabled: bool
    created_by: str
    created_at: datetime
    last_slot_at: datetime | None


@dataclass(frozen=True)
class RoleAssignment(_FromRow):
    id: UUID
    project_id: UUID | None
    principal_type: str
    principal_id: str
    role: str
    created_by: str
    created_at: datetime
