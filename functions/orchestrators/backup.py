"""Back up an environment's database on an agent (pg_dump -Fc), recorded as a Backup."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, call, run_agent_job, run_task, step

bp = df.Blueprint()


def backup_steps(context: df.DurableOrchestrationContext,
                 task: dict[str, Any]) -> Generator[Any, Any, Outcome]:
    yield from step(context, task, f"backing up the {task['environment']} database", 5)
    result = yield from run_agent_job(context, task, "backup", {}, timeout=timedelta(hours=2))
    backup = yield call(context, "record_backup", {"taskId": task["taskId"],
                                                    "environmentId": task["environmentId"],
                                                    "artifact": result})
    # retention only ever prunes behind this newer, recorded backup
    yield call(context, "apply_backup_retention", {"environmentId": task["environmentId"],
                                                   "backupId": backup["id"]})
    size = backup["sizeBytes"]
    return Outcome(f"backup {backup['id'][:8]} taken ({size} bytes)", {"backup": backup})


@bp.orchestration_trigger(context_name="context")
def backup_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, backup_steps))
