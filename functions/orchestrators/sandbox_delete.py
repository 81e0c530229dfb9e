"""Tear a sandbox down: drop its database on an agent, then delete its record.

Runs on the sandbox's own environment (so it waits for whatever runs there), whoever
asked: a user, or the expiry timer (``sandbox-expiry``) with the reason in the task's
parameters.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, StepFailed, call, log, run_task, step
from functions.orchestrators._jobs import run_agent_job
from functions.payloads import NoArguments, SandboxDeleted, SandboxRef, TaskPlan

bp = df.Blueprint()


def sandbox_delete_steps(context: df.DurableOrchestrationContext,
                         task: TaskPlan) -> Generator[Any, Any, Outcome]:
    name = task.environment
    why = task.parameters.get("reason") or "requested"
    yield from step(context, task, f"tearing down sandbox {name}", 10,
                    [f"teardown of sandbox {name} requested by {task.requested_by}: {why}"])
    if task.target.get("type") == "agent" and task.database.get("databaseName"):
        if not task.database.get("connection"):
            raise StepFailed(f"sandbox {name} names a database but no connection")
        database = task.database["databaseName"]
        yield from step(context, task, f"dropping database {database}", 30)
        yield from run_agent_job(context, task, "drop_database", NoArguments(),
                                 timeout=timedelta(minutes=30))
    else:
        yield from log(context, task, "no sandbox database to drop")
    if task.target.get("type") == "appservice":
        yield from step(context, task, f"deleting {name}'s deployment slot "
                        f"{task.target.get('slot')}", 60)
        yield call(context, "appservice_delete_sandbox_slot",
                   SandboxRef(task_id=task.task_id, sandbox_id=task.environment_id))
    yield from step(context, task, f"deleting sandbox {name}", 80)
    deleted = SandboxDeleted.from_json((yield call(
        context, "delete_sandbox_environment",
        SandboxRef(task_id=task.task_id, sandbox_id=task.environment_id))))
    return Outcome(f"sandbox {name} deleted ({why})", deleted.to_json())


@bp.orchestration_trigger(context_name="context")
def sandbox_delete_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, sandbox_delete_steps))
