"""Create a sandbox: a short-lived copy of an environment with its own resources (its own
database on the parent's server, namespace on the parent's cluster, or deployment slot on
the parent's App Service site), seeded from a fresh backup of the parent taken first (or
from the parent's backup the request names), running the
parent's deployed version as its own app (through the parent's deploy script, with the
sandbox as the environment), expiring on its TTL."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Ctx, Outcome, StepFailed, call, log, run_task, step
from functions.orchestrators._jobs import run_agent_job
from functions.orchestrators.backup import record_and_retain
from functions.orchestrators.deploy import record_reported_url, run_deploy_script
from functions.payloads import (
    AppServiceAnswer,
    CreateSandbox,
    NoArguments,
    RestoreJob,
    SandboxCreated,
    SandboxRef,
    TaskPlan,
)

bp = df.Blueprint()


def sandbox_steps(context: Ctx, task: TaskPlan) -> Generator[Any, Any, Outcome]:
    name = task.parameters["name"]
    seed = yield from seed_backup(context, task)
    yield from step(context, task, f"provisioning sandbox {name}", 10)
    created = SandboxCreated.from_json((yield call(
        context, "create_sandbox_environment",
        CreateSandbox(task_id=task.task_id, seed_backup_id=seed))))
    sandbox = created.to_json()
    if task.target.get("type") == "appservice":
        yield from step(context, task, f"creating {name}'s own deployment slot on site "
                        f"{task.target.get('site')}", 20)
        slot = AppServiceAnswer.from_json((yield call(
            context, "appservice_create_sandbox_slot",
            SandboxRef(task_id=task.task_id, sandbox_id=created.environment_id))))
        sandbox = {**sandbox, "slot": slot.slot}
    if sandbox["seedBackupId"] is None:
        yield from log(context, task, "the parent has no backup yet: the sandbox starts "
                       "without seeded data")
    elif task.target.get("type") == "agent":
        yield from step(context, task, f"seeding {name} from backup "
                        f"{sandbox['seedBackupId'][:8]}", 40)
        yield from run_agent_job(context, task, "restore",
                                 RestoreJob(backup_id=sandbox["seedBackupId"],
                                            target_environment_id=sandbox["environmentId"]),
                                 timeout=timedelta(hours=2))
    script = task.target.get("deployScript") if task.target.get("type") == "agent" else None
    version = sandbox.get("parentVersion")
    if script and version:
        yield from step(context, task, f"deploying {version} to {name} (the version "
                        f"{task.environment} runs)", 70)
        result = yield from run_deploy_script(context, task, script, version, name)
        yield from record_reported_url(context, task, result, sandbox["environmentId"], name)
        sandbox = {**sandbox, "version": version,
                   "url": (result.get("outputs") or {}).get("url") or sandbox["url"]}
    elif script:
        yield from log(context, task, f"{task.environment} has no successful deployment "
                       "yet: the sandbox has no app until you deploy to it")
    return Outcome(f"sandbox {name} ready until {sandbox['expiresAt']}", sandbox)


def seed_backup(context: df.DurableOrchestrationContext,
                task: TaskPlan) -> Generator[Any, Any, str | None]:
    """The backup the sandbox is seeded from: the one the request chose (checked at request
    time), else a fresh backup of the parent taken now through its agent. None when the
    parent has no database an agent can back up (the parent's latest backup, if any, is
    used then)."""
    chosen = task.parameters.get("backupId")
    if chosen:
        yield from log(context, task, f"seeding from the chosen backup {chosen}")
        return str(chosen)
    if task.target.get("type") != "agent" or not task.database.get(
            "connection"):
        return None
    parent = task.environment
    yield from step(context, task, f"taking a fresh backup of {parent} to seed the sandbox", 5)
    try:
        result = yield from run_agent_job(context, task, "backup", NoArguments(),
                                          timeout=timedelta(hours=2))
    except StepFailed as exc:
        raise StepFailed(f"the fresh backup of {parent} failed ({exc}); no sandbox was "
                         "created: fix the backup and try again, or name an existing backup"
                         " of the parent (backupId)") from None
    backup = yield from record_and_retain(context, task, result)
    yield from log(context, task, f"fresh backup of {parent}: {backup.id} "
                   f"({backup.size_bytes} bytes)")
    return backup.id


@bp.orchestration_trigger(context_name="context")
def sandbox_create_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, sandbox_steps))
