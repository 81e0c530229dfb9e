"""Back up an environment's database on an agent (pg_dump -Fc), recorded as a Backup."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, call, run_task, step
from functions.orchestrators._jobs import run_agent_job
from functions.payloads import NoArguments, RecordBackup, RecordedBackup, Retention, TaskPlan

bp = df.Blueprint()


def backup_steps(context: df.DurableOrchestrationContext,
                 task: TaskPlan) -> Generator[Any, Any, Outcome]:
    yield from step(context, task, f"backing up the {task.environment} database", 5)
    result = yield from run_agent_job(context, task, "backup", NoArguments(),
                                      timeout=timedelta(hours=2))
    backup = yield from record_and_retain(context, task, result)
    return Outcome(f"backup {backup.id[:8]} taken ({backup.size_bytes} bytes)",
                   {"backup": backup.to_json()})


def record_and_retain(context: df.DurableOrchestrationContext, task: TaskPlan,
                      artifact: dict[str, Any]) -> Generator[Any, Any, RecordedBackup]:
    """Record the artifact an agent's backup job uploaded as a Backup of the task's
    environment, then apply the environment's retention behind it."""
    backup = RecordedBackup.from_json((yield call(context, "record_backup", RecordBackup(
        task_id=task.task_id, environment_id=task.environment_id, artifact=artifact))))
    # retention only ever prunes behind this newer, recorded backup
    yield call(context, "apply_backup_retention",
               Retention(environment_id=task.environment_id, backup_id=backup.id))
    return backup


@bp.orchestration_trigger(context_name="context")
def backup_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, backup_steps))
