"""Restart a workload and wait until it is healthy: through an agent, a service on the
agent's machine (systemd unit or supervised app) or a Kubernetes Deployment, StatefulSet or
DaemonSet (rollout restart, waiting as ``rollout status`` does); on an App Service target,
the site or its slot through azure-mgmt-web, then a health check."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, StepFailed, call, run_task, step
from functions.orchestrators._jobs import run_agent_job
from functions.payloads import AppServiceAnswer, AppServiceRef, RestartJob, TaskPlan

bp = df.Blueprint()


def restart_steps(context: df.DurableOrchestrationContext,
                  task: TaskPlan) -> Generator[Any, Any, Outcome]:
    target = task.target
    workload = task.parameters["workload"]
    if target.get("type") == "noop":
        return Outcome(f"restarted {workload} (dry run)", {"workload": workload},
                       (f"dry run: would restart {workload}",))
    if target.get("type") == "appservice":
        return (yield from _restart_appservice(context, task, workload))
    services = (target.get("services") or {}) if target.get("type") == "agent" else {}
    if workload in services:
        return (yield from _restart_service(context, task, workload, services[workload]))
    if target.get("type") != "agent" or not target.get("cluster"):
        known = f" (its services: {', '.join(sorted(services))})" if services else ""
        raise StepFailed(f"environment {task.environment} has no workload {workload!r}"
                         f"{known}: add it to target.services, or set target.cluster to a "
                         "Kubernetes cluster known to the agent")
    namespace = task.parameters.get("namespace") or target.get("namespace") or "default"
    kind = task.parameters.get("kind") or "deployment"
    what = f"{namespace}/{workload}" if kind == "deployment" else f"{kind} {namespace}/{workload}"
    yield from step(context, task, f"restarting {what}", 5)
    result = yield from run_agent_job(context, task, "restart",
                                      RestartJob(cluster=target["cluster"], namespace=namespace,
                                                 workload=workload, kind=kind),
                                      timeout=timedelta(minutes=30))
    ready = (f", {result['readyReplicas']} ready" if result.get("readyReplicas") is not None
             else "")
    return Outcome(f"restarted {what}{ready}", {"workload": workload, "namespace": namespace,
                                                "kind": kind})


def _restart_appservice(context: df.DurableOrchestrationContext, task: TaskPlan,
                        workload: str) -> Generator[Any, Any, Outcome]:
    """The site (production) or its deployment slot, restarted through azure-mgmt-web, then
    its health path checked (with the deploy's retries) before the task succeeds."""
    target = task.target
    site, slot = str(target["site"]), str(target.get("slot") or "staging")
    if workload == site.lower():
        activity, where, label = "appservice_restart_site", "production", f"site {site}"
    elif workload == slot.lower():
        activity, where, label = "appservice_restart_slot", "slot", f"slot {slot} of {site}"
    else:  # refused at request time; the target may have changed since
        raise StepFailed(f"{workload} is neither the site {site} nor its slot {slot}: name "
                         "one of them to restart it")
    ref = AppServiceRef(task_id=task.task_id, target=target)
    yield from step(context, task, f"restarting {label}", 10)
    yield call(context, activity, ref)
    yield from step(context, task, f"checking the health of {label}", 60)
    health = AppServiceAnswer.from_json((yield call(
        context, "appservice_health_check", ref.model_copy(update={"where": where}))))
    if not health.healthy:
        raise StepFailed(f"{label} was restarted but is not healthy: {health.detail} "
                         f"({health.url or 'no host name'}); it may still be starting:"
                         " check its log stream, then restart again or fix the app")
    return Outcome(f"restarted {label}, healthy", {"workload": workload, "where": where,
                                                   "health": health.detail})


def _restart_service(context: df.DurableOrchestrationContext, task: TaskPlan,
                     workload: str, service: str) -> Generator[Any, Any, Outcome]:
    """A service on the agent's machine (systemd unit or supervised app), per environment."""
    yield from step(context, task, f"restarting service {service} ({workload})", 5)
    result = yield from run_agent_job(context, task, "restart",
                                      RestartJob(kind="service", service=service,
                                                 environment=task.environment),
                                      timeout=timedelta(minutes=10))
    started = f", new process {result['pid']}" if result.get("pid") else ""
    return Outcome(f"restarted {workload}{started}", {"workload": workload, **result})


@bp.orchestration_trigger(context_name="context")
def restart_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]  # the worker checks return annotations
    return (yield from run_task(context, restart_steps))
