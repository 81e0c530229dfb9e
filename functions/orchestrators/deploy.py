"""Deploy a version: slot-swap on App Service, a catalogue script on an agent, or a dry run."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Ctx, Outcome, StepFailed, call, log, run_task, step
from functions.orchestrators._jobs import run_script_job
from functions.payloads import AppServiceAnswer, AppServiceRef, RecordUrl, TaskPlan, UrlRecorded

bp = df.Blueprint()


def deploy_steps(context: Ctx, task: TaskPlan) -> Generator[Any, Any, Outcome]:
    version = task.parameters["version"]
    target = task.target
    kind = target.get("type")
    if kind == "noop":
        return Outcome(f"deployed {version} (dry run)", {"version": version},
                       (f"dry run: would deploy {version} to {task.environment}",))
    if kind == "appservice":
        return (yield from appservice_deploy(context, task, version))
    if kind == "agent":
        script = target.get("deployScript")
        if not script:
            raise StepFailed(f"environment {task.environment} has no deployScript in its "
                             "agent target; set one to deploy through an agent")
        yield from step(context, task, f"deploying {version} with script {script}", 10)
        result = yield from run_deploy_script(context, task, script, version, task.environment)
        yield from record_reported_url(context, task, result)
        return Outcome(f"deployed {version}", {"version": version, **result})
    raise StepFailed(f"environment {task.environment} has no deployable target")


def run_deploy_script(context: Ctx, task: TaskPlan, script: str, version: str,
                      environment: str) -> Generator[Any, Any, dict[str, Any]]:
    """An agent target's deploy script: ``version`` onto ``environment`` (the task's own,
    or the sandbox it is making), with its ``version`` and ``environment`` parameters."""
    return (yield from run_script_job(context, task, script,
                                      {"version": version, "environment": environment},
                                      timeout=timedelta(hours=1)))


def record_reported_url(context: df.DurableOrchestrationContext, task: TaskPlan,
                        result: dict[str, Any], environment_id: str | None = None,
                        environment: str | None = None) -> Generator[Any, Any, None]:
    """A deploy script that reports ``url=…`` in its outputs sets the environment's URL."""
    url = (result.get("outputs") or {}).get("url")
    if not url:
        return
    recorded = UrlRecorded.from_json((yield call(context, "record_environment_url", RecordUrl(
        task_id=task.task_id, environment_id=environment_id, url=url))))
    if recorded.recorded:
        yield from log(context, task, f"{environment or task.environment} is served at {url}")
    else:
        yield from log(context, task, recorded.reason or "url not recorded", level="warning")


def appservice_deploy(context: df.DurableOrchestrationContext, task: TaskPlan,
                      version: str) -> Generator[Any, Any, Outcome]:
    """Staging slot → restart → health check → swap → health check; swap back on failure.
    A sandbox stops after the health check: its slot is its app, never swapped."""
    ref = AppServiceRef(task_id=task.task_id, target=task.target, version=version,
                        package_url=task.parameters.get("packageUrl"),
                        image=task.parameters.get("image"))
    slot = task.target.get("slot", "staging")
    yield from step(context, task, f"setting {version} on slot {slot}", 10)
    yield call(context, "appservice_set_version", ref)
    yield from step(context, task, f"restarting slot {slot}", 25)
    yield call(context, "appservice_restart_slot", ref)
    yield from step(context, task, f"health-checking slot {slot}", 40)
    health = AppServiceAnswer.from_json((yield call(
        context, "appservice_health_check", ref.model_copy(update={"where": "slot"}))))
    if not health.healthy:
        raise StepFailed(f"slot {slot} is unhealthy: {health.detail}; production untouched")
    if task.environment_kind == "sandbox":
        # a sandbox's slot is its own: never swapped into its parent's production
        return Outcome(f"deployed {version} to slot {slot}", {"version": version,
                                                              "slot": slot})
    yield from step(context, task, f"swapping {slot} into production", 60)
    # A swap toggles; expectProduction makes a retried swap a no-op instead of a swap back.
    swapped = AppServiceAnswer.from_json((yield call(
        context, "appservice_swap", ref.model_copy(update={"expect_production": version}))))
    # From here the swap back must happen whatever else is asked, so no cancel checks.
    health = AppServiceAnswer.from_json((yield call(
        context, "appservice_health_check", ref.model_copy(update={"where": "production"}))))
    if not health.healthy:
        yield from log(context, task, f"production health check failed: {health.detail}; "
                       "swapping back", level="error")
        yield call(context, "appservice_swap",
                   ref.model_copy(update={"expect_production": swapped.slot}))
        raise StepFailed(f"production was unhealthy after the swap ({health.detail}); "
                         "swapped back to the previous version")
    return Outcome(f"deployed {version}", {"version": version})


@bp.orchestration_trigger(context_name="context")
def deploy_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, deploy_steps))
