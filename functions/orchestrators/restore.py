"""Restore a chosen backup on an agent, after a safety backup of the current state."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, call, run_task, step
from functions.orchestrators._jobs import run_agent_job
from functions.payloads import RecordBackup, RecordedBackup, RestoreJob, TaskPlan

bp = df.Blueprint()


def restore_with_safety_copy(context: df.DurableOrchestrationContext, task: TaskPlan,
                             backup_id: str) -> Generator[Any, Any, dict[str, Any] | None]:
    """Restore ``backup_id`` into the task's environment on an agent, which first takes a
    safety copy of what it replaces; returns that copy as recorded (kind ``safety``)."""
    result = yield from run_agent_job(context, task, "restore", RestoreJob(backup_id=backup_id),
                                      timeout=timedelta(hours=2))
    if not result.get("safetyBackup"):
        return None
    recorded = yield call(context, "record_backup", RecordBackup(
        task_id=task.task_id, environment_id=task.environment_id,
        artifact=result["safetyBackup"], kind="safety"))
    return RecordedBackup.from_json(recorded).to_json()


def restore_steps(context: df.DurableOrchestrationContext,
                  task: TaskPlan) -> Generator[Any, Any, Outcome]:
    backup_id = task.parameters["backupId"]
    yield from step(context, task, f"restoring backup {backup_id[:8]} (safety backup first)", 5)
    safety = yield from restore_with_safety_copy(context, task, backup_id)
    return Outcome(f"restored backup {backup_id[:8]}",
                   {"backupId": backup_id, "safetyBackup": safety})


@bp.orchestration_trigger(context_name="context")
def restore_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, restore_steps))
