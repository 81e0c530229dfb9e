"""Refresh an environment from another environment's backup (staging from last night's
production): a safety backup of the target first, the restore, then the masking script
named in the request — the refresh fails if that script fails."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, StepFailed, log, run_task, step
from functions.orchestrators._jobs import run_script_job
from functions.orchestrators.restore import restore_with_safety_copy
from functions.payloads import TaskPlan

bp = df.Blueprint()


def refresh_steps(context: df.DurableOrchestrationContext,
                  task: TaskPlan) -> Generator[Any, Any, Outcome]:
    params = task.parameters
    source, backup_id = params["sourceEnvironment"], params["backupId"]
    here = task.environment
    yield from step(context, task, f"refreshing {here} from {source} backup {backup_id[:8]}"
                    f" (safety backup of {here} first)", 5)
    safety = yield from restore_with_safety_copy(context, task, backup_id)
    if safety:
        yield from log(context, task, f"safety backup of {here}: {safety['id']}")
    facts: dict[str, Any] = {"sourceEnvironment": source, "backupId": backup_id,
                             "safetyBackup": safety}
    mask = params.get("maskScript")
    if not mask:
        return Outcome(f"refreshed {here} from {source} backup {backup_id[:8]}", facts)
    yield from step(context, task, f"masking: running {mask} on the restored data", 70)
    try:
        ran = yield from run_script_job(
            context, task, mask, params.get("maskParameters") or {},
            timeout=timedelta(seconds=int(params.get("maskTimeoutSeconds", 600)) + 120))
    except StepFailed as exc:
        undo = (f"restore its safety backup {safety['id']} to undo it, or "
                if safety else "")
        raise StepFailed(
            f"the masking script {mask} failed ({exc}): {here} now holds {source}'s "
            f"unmasked data from backup {backup_id[:8]}; {undo}fix the script and refresh "
            "again") from None
    facts["mask"] = {"script": mask, "exitCode": ran.get("exitCode", 0)}
    return Outcome(f"refreshed {here} from {source} backup {backup_id[:8]}, masked by {mask}",
                   facts)


@bp.orchestration_trigger(context_name="context")
def refresh_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, refresh_steps))
