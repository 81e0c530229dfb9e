"""Run an approved catalogue script on an agent, as argv resolved when it was requested."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, run_task, step
from functions.orchestrators._jobs import run_script_job
from functions.payloads import TaskPlan

bp = df.Blueprint()


def script_steps(context: df.DurableOrchestrationContext,
                 task: TaskPlan) -> Generator[Any, Any, Outcome]:
    params = task.parameters
    script = params["script"]
    if task.target.get("type") == "noop":
        return Outcome(f"{script} ran (dry run)", {"exitCode": 0},
                       ("dry run: would run " + " ".join(params["argv"]),))
    yield from step(context, task, f"running script {script}", 5)
    result = yield from run_script_job(
        context, task, script, params["parameters"],
        timeout=timedelta(seconds=int(params.get("timeoutSeconds", 600)) + 120))
    return Outcome(f"{script} exited with {result.get('exitCode', 0)}", result)


@bp.orchestration_trigger(context_name="context")
def script_run_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, script_steps))
