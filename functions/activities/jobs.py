"""Activities that hand work to agents and record what they produced."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import azure.durable_functions as df

from functions.payloads import (
    AbandonJob,
    Dispatched,
    DispatchJob,
    JobRequest,
    RecordBackup,
    RecordedBackup,
    RestoreJob,
    ScriptJob,
)
from shared.agents import dispatch as agent_dispatch
from shared.agents.work import cancel_jobs_for_task
from shared.api.views import iso
from shared.domain.models import Environment, Task
from shared.domain.task_states import TaskStatus
from shared.errors import DomainError
from shared.grants import resources as grants
from shared.grants.plan import verify
from shared.services import services
from shared.store import backups as backup_store
from shared.store import projects as project_store
from shared.store import tasks as task_store
from shared.store.scripts import get_script
from shared.tasks.scripts import resolve_argv
from shared.tasks.service import TaskService
from shared.telemetry import inject_trace

bp = df.Blueprint()

URL_TTL = timedelta(hours=3)


class JobNotPossible(DomainError):
    """The environment is not set up for this job (a reason for the user, not a bug)."""


def _connection(env: Environment) -> str:
    connection = env.database.get("connection")
    if not connection:
        raise JobNotPossible(f"environment {env.slug} has no database connection configured "
                             "(set database.connection to a name the agent knows)")
    return str(connection)


def _artifact_name(env: Environment, task: Task, suffix: str = "") -> str:
    return f"backups/{env.project_id}/{env.slug}/{task.id}{suffix}.dump"


def _job_payload(conn: Any, kind: str, request: JobRequest, task: Task,
                 env: Environment) -> dict[str, Any]:
    """What the agent needs for a ``kind`` job as ``request`` asks: names and short-lived
    URLs, never credentials."""
    artifacts = services().artifacts
    if kind == "backup":
        name = _artifact_name(env, task)
        return {"connection": _connection(env), "artifact": name,
                "uploadUrl": artifacts.upload_url(name, URL_TTL)}
    if kind == "drop_database":  # sandbox teardown: the sandbox's own database only
        return {"connection": _connection(env), "database": str(env.database["databaseName"])}
    if isinstance(request, RestoreJob):
        backup = backup_store.get_backup(conn, request.backup_id)
        target = env
        if request.target_environment_id:
            target = project_store.get_environment_by_id(
                conn, UUID(request.target_environment_id))
        safety = _artifact_name(target, task, "-safety")
        payload: dict[str, Any]
        payload = {"connection": _connection(target), "sha256": backup.sha256,
                   "downloadUrl": artifacts.download_url(artifacts.name_of(backup.location),
                                                         URL_TTL),
                   "safetyArtifact": safety,
                   "safetyUploadUrl": artifacts.upload_url(safety, URL_TTL)}
        if target.database.get("databaseName"):
            payload["database"] = target.database["databaseName"]
            payload["createDatabase"] = True
        return payload
    if isinstance(request, ScriptJob):
        # the argv in the task's plan (resolved at request time, approved) is what runs;
        # a plan holding only the template (a sandbox's deploy) resolves it now
        script = get_script(conn, task.project_id, request.script)
        declared = {p.name for p in script.parameters}
        planned = (task.plan or {}).get("script") or {}
        same_script = planned.get("name") == request.script
        # secret parameters are masked in the task and its plan; the job gets their real
        # values (kept apart in ``task.secrets``)
        hidden = task.secrets or {}
        values = {**request.parameters, **(hidden.get("parameters") or {})}
        argv = (request.argv
                or (hidden.get("argv") if same_script else None)
                or (planned.get("argv") if same_script else None)
                or resolve_argv(script, {k: v for k, v in values.items() if k in declared}))
        return {"script": request.script, "argv": argv,
                "timeoutSeconds": script.timeout_seconds, "env": {}}
    return request.to_json()


def job_scope(conn: Any, env: Environment) -> dict[str, str]:
    """Who a job is for, for the agent's own wall: the project's and environment's slugs,
    and the parent environment's for a sandbox (``agent.config.serves``)."""
    scope = {"project": project_store.get_project(conn, env.project_id).slug,
             "environment": env.slug}
    if env.parent_id is not None:
        scope["parentEnvironment"] = project_store.get_environment_by_id(
            conn, env.parent_id).slug
    return scope


@bp.activity_trigger(input_name="payload")
def dispatch_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Create the job; the task waits (saying for what) until an agent claims it.

    Returns ``{"jobId"}``, or ``{"error"}`` when no agent could ever run it or the
    environment lacks what the job needs — the task then fails with that reason.
    """
    svc = services()
    asked = DispatchJob.from_json(payload)
    with svc.db.transaction() as conn:
        task = task_store.get_task(conn, asked.task_id)
        env = project_store.get_environment_by_id(conn, task.environment_id)
        pool = env.target.get("pool")
        if not pool:
            return Dispatched(error=f"environment {env.slug} has no agent pool for "
                                    f"{asked.kind} jobs (set target.pool)").to_json()
        refused = verify(conn, task, env)
        acts_on = (asked.payload.target_environment_id
                   if isinstance(asked.payload, RestoreJob) else None)
        if refused is None and acts_on:  # a sandbox's own resources
            sandbox = project_store.get_environment_by_id(conn, UUID(acts_on))
            gaps = grants.missing(conn, sandbox.project_id,
                                  grants.needs_of(sandbox.target, sandbox.database))
            refused = f"{gaps[0][0].field}: {gaps[0][1]}" if gaps else None
        if refused is not None:
            return Dispatched(error=refused).to_json()
        try:
            body = _job_payload(conn, asked.kind, asked.payload, task, env)
            # the environment the job acts on: a sandbox being seeded, or the task's own
            body |= job_scope(conn, project_store.get_environment_by_id(conn, UUID(acts_on))
                              if acts_on else env)
            body["traceContext"] = inject_trace({})  # the agent continues the trace
            if asked.deadline_at:
                # how long the agent keeps trying to deliver the result through an outage
                body["deadlineAt"] = asked.deadline_at
            job, created = agent_dispatch.dispatch_job(
                conn, task=task, kind=asked.kind, payload=body, pool=str(pool),
                demands=list(env.target.get("labels") or []), now=svc.clock.now(),
                job_id=UUID(asked.job_id) if asked.job_id else None)
        except (agent_dispatch.NoCapableAgent, JobNotPossible) as exc:
            return Dispatched(error=exc.detail).to_json()
        if not created:  # this activity ran before (host lost its result): same job
            return Dispatched(job_id=str(job.id)).to_json()
        waiting = task_store.transition(conn, task.id, TaskStatus.WAITING, actor="system",
                                        reason=agent_dispatch.waiting_reason(
                                            conn, job, now=svc.clock.now()))
    TaskService(svc).publish(waiting)
    return Dispatched(job_id=str(job.id)).to_json()


@bp.activity_trigger(input_name="payload")
def abandon_job(payload: dict[str, Any]) -> bool:
    """Give up on the task's jobs (deadline passed): a pending job is never claimed, an
    agent running one is told to stop on its next heartbeat."""
    svc = services()
    with svc.db.transaction() as conn:
        cancel_jobs_for_task(conn, UUID(AbandonJob.from_json(payload).task_id),
                             svc.clock.now())
    return True


def _tool_versions(reported: Any) -> dict[str, str] | None:
    """The agent's word on the tools that wrote the dump: short names and versions only."""
    if not isinstance(reported, dict):
        return None
    return {str(k)[:40]: str(v)[:80] for k, v in list(reported.items())[:10]} or None


@bp.activity_trigger(input_name="payload")
def record_backup(payload: dict[str, Any]) -> dict[str, Any]:
    """Record an artifact an agent uploaded as a Backup of the environment."""
    svc = services()
    asked = RecordBackup.from_json(payload)
    artifact = asked.artifact
    with svc.db.transaction() as conn:
        backup = backup_store.record_backup(
            conn, environment_id=UUID(asked.environment_id), task_id=UUID(asked.task_id),
            location=svc.artifacts.location(artifact["artifact"]),
            size_bytes=int(artifact["sizeBytes"]), sha256=str(artifact["sha256"]),
            kind=asked.kind,
            duration_ms=int(artifact["durationMs"]) if artifact.get("durationMs") else None,
            tool_versions=_tool_versions(artifact.get("toolVersions")))
    return RecordedBackup(id=str(backup.id), kind=backup.kind, size_bytes=backup.size_bytes,
                          sha256=backup.sha256, duration_ms=backup.duration_ms,
                          tool_versions=backup.tool_versions or {},
                          created_at=iso(backup.created_at)).to_json()
