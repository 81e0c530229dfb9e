"""What orchestrators and activities send each other: one model per payload.

Durable history stores every activity's input and output as JSON, and an orchestration
replays against that history, so the wire shape is kept exactly as it was when these
were plain dicts: camelCase keys, and only the keys the sender set (``to_json`` leaves out
fields nobody set; an explicit ``None`` stays). ``from_json`` accepts every shape an older
sender wrote: fields added since have defaults, keys it no longer reads are ignored.

The models cross the boundary as dicts (``to_json()`` in, ``from_json()`` out), never as
objects: the Durable SDK would wrap an object in its own ``__class__`` envelope.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel


class Payload(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="ignore", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)


class OpenPayload(Payload):
    """A payload that carries more than its declared fields (kept, and sent on)."""

    model_config = ConfigDict(extra="allow")

    def field(self, name: str, default: Any = None) -> Any:
        """A carried-along key by its wire (camelCase) name."""
        return (self.model_extra or {}).get(name, default)


# -- the task's course (functions/activities/tasks.py) ---------------------------------
class TaskPlan(Payload):
    """What a task's steps work from, read once it holds its environment: its parameters
    and its environment. Plans written before ``environmentKind`` read as kind unknown.

    The one payload a step changes: ``run_agent_job`` notes ``cancel_overridden_by`` when
    a job succeeded although it was asked to stop (the plan never goes back to an
    activity, so that note stays in the orchestration).
    """

    model_config = ConfigDict(frozen=False, validate_assignment=True)

    task_id: str
    operation: str
    parameters: dict[str, Any] = {}
    requested_by: str
    project: str
    environment: str
    environment_id: str
    environment_kind: str | None = None  # "shared" or "sandbox"
    target: dict[str, Any] = {}
    database: dict[str, Any] = {}
    url: str | None = None
    cancel_overridden_by: str | None = None


class TaskRef(Payload):
    """Which task: the input of acquire_environment, approval_outcome,
    notification_policy."""

    task_id: str


class EnvironmentDecision(Payload):
    """acquire_environment's answer: the task's next move. The ``environment_granted``
    event carries one too (``acquired``) when the finishing task started the next one;
    before that cut the event carried ``{}``, as the other wake-ups still do."""

    acquired: bool
    ended: bool
    reason: str | None = None
    approval: Literal["pending"] | None = None
    timeout_minutes: float | None = None
    frozen: Literal["hold", "refuse"] | None = None
    until: str | None = None
    position: int | None = None
    task: TaskPlan | None = None  # the task's plan once it holds its environment
    refused: str | None = None
    cancelled: bool | None = None  # running, and asked to stop before its steps began


class StartStep(Payload):
    task_id: str
    reason: str
    progress: int | None = None
    log: list[str] = []


class StepAnswer(Payload):
    cancelled: bool
    by: str | None = None


class AppendLog(Payload):
    task_id: str
    lines: list[str]
    level: str = "info"


class FinishTask(Payload):
    task_id: str
    status: str
    reason: str
    error: str | None = None
    result: dict[str, Any] | None = None
    log: list[str] | None = None


class NotifyPolicy(Payload):
    """How often to try a notification delivery, and the first wait between tries."""

    attempts: int
    first_retry_ms: int


class Finished(Payload):
    finished: bool
    notify: NotifyPolicy | None = None


class Delivery(Payload):
    """notify_task_event / notify_approval_requested: deliver the task's event."""

    task_id: str
    max_attempts: int | None = None


# -- approvals ---------------------------------------------------------------------------
class ApprovalDecision(OpenPayload):
    by: str | None = None
    decision: str
    comment: str | None = None


class ApprovalOutcome(OpenPayload):
    """The task's approval snapshot (``state``: none, pending, approved, rejected,
    pre-approved; its other keys travel along)."""

    state: str
    decisions: list[ApprovalDecision] = []


# -- agent jobs (functions/activities/jobs.py) ------------------------------------------
class NoArguments(Payload):
    """``backup`` and ``drop_database``: the environment says everything."""


class ScriptJob(Payload):
    """Run a catalogue script; ``argv`` when the caller resolved it already, else the
    dispatch resolves it from ``parameters`` (or takes the task's approved plan)."""

    script: str
    parameters: dict[str, Any] = {}
    argv: list[str] | None = None


class RestoreJob(Payload):
    """Restore a backup into the task's environment, or into the sandbox being seeded."""

    backup_id: str
    target_environment_id: str | None = None


class RestartJob(OpenPayload):
    """Restart a Kubernetes workload (``kind`` deployment, statefulset, daemonset) or a
    service of the agent (``kind`` service); sent on to the agent as it is."""

    kind: str
    workload: str | None = None
    cluster: str | None = None
    namespace: str | None = None
    service: str | None = None
    environment: str | None = None


class OtherJob(OpenPayload):
    """A kind without a model of its own: sent on to the agent as it is."""


JobRequest = NoArguments | ScriptJob | RestoreJob | RestartJob | OtherJob
JOB_REQUESTS: dict[str, type[Payload]] = {
    "backup": NoArguments, "drop_database": NoArguments, "script": ScriptJob,
    "restore": RestoreJob, "restart": RestartJob}


class DispatchJob(Payload):
    """Dispatch a job of ``kind``; ``payload`` is read as that kind's request.

    ``job_id`` (the orchestration's ``new_uuid()``, the same on every replay) makes the
    dispatch idempotent: the activity run twice creates one job. Histories written
    before it existed carry none and dispatch as before.
    """

    task_id: str
    kind: str
    payload: JobRequest
    deadline_at: str | None = None
    job_id: str | None = None

    @field_validator("payload", mode="before")
    @classmethod
    def _request_of_kind(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, dict):
            return JOB_REQUESTS.get(info.data.get("kind", ""), OtherJob).model_validate(value)
        return value


class Dispatched(Payload):
    """The job created (``jobId``), or why none can run (``error``)."""

    job_id: str | None = None
    error: str | None = None


class AbandonJob(Payload):
    task_id: str
    job_id: str


class JobOutcome(Payload):
    """The ``job:<id>`` event an agent (or the lease reaper) raises when a job ends."""

    status: str
    result: dict[str, Any] | None = None
    error: str | None = None


class RecordBackup(Payload):
    task_id: str
    environment_id: str
    artifact: dict[str, Any]  # as the agent reported it: artifact, sizeBytes, sha256, ...
    kind: str = "backup"


class RecordedBackup(Payload):
    id: str
    kind: str
    size_bytes: int
    sha256: str
    duration_ms: int | None = None
    tool_versions: dict[str, str] = {}
    created_at: str | None = None


class Retention(Payload):
    environment_id: str
    backup_id: str


class Pruned(Payload):
    pruned: list[str]
    expired: list[str]


# -- environments and sandboxes ---------------------------------------------------------
class CreateSandbox(Payload):
    task_id: str
    seed_backup_id: str | None = None


class SandboxCreated(Payload):
    environment_id: str
    environment: str
    expires_at: str | None = None
    url: str | None = None
    seed_backup_id: str | None = None
    parent_version: str | None = None


class SandboxRef(Payload):
    """delete_sandbox_environment and the sandbox slot activities: which sandbox."""

    task_id: str
    sandbox_id: str


class SandboxDeleted(OpenPayload):
    deleted: bool
    reason: str | None = None
    sandbox: str | None = None
    backups_deleted: int | None = None
    cancelled_tasks: list[str] | None = None


class RecordUrl(Payload):
    task_id: str
    environment_id: str | None = None
    url: str | None = None


class UrlRecorded(Payload):
    recorded: bool
    reason: str | None = None
    url: str | None = None


# -- App Service (functions/activities/appservice.py) -----------------------------------
class AppServiceRef(OpenPayload):
    """Which site and slot a step acts on, and with what; sandbox steps send a
    ``sandboxId`` instead of a target."""

    task_id: str | None = None
    target: dict[str, Any] | None = None
    version: str | None = None
    package_url: str | None = None
    image: str | None = None
    where: str | None = None  # health checks: "slot" or "production"
    expect_production: str | None = None
    sandbox_id: str | None = None


class AppServiceAnswer(OpenPayload):
    """A step's answer: ``log`` lines for the task, and what the step reports (health:
    ``healthy``, ``detail``, ``url``; swap: ``slot``; a sandbox slot: ``slot``)."""

    log: list[str] = []
    healthy: bool | None = None
    detail: str | None = None
    url: str | None = None
    slot: str | None = None
