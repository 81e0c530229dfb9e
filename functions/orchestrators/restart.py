"""Restart a workload through an agent and wait until it is healthy: a service on the agent's
machine (systemd unit or supervised app) or a Kubernetes workload (rollout restart)."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from functions.orchestrators._flow import Outcome, StepFailed, run_agent_job, run_task, step

bp = df.Blueprint()


def restart_steps(context: df.DurableOrchestrationContext,
                  task: dict[str, Any]) -> Generator[Any, Any, Outcome]:
    target = task["target"]
    workload = task["parameters"]["workload"]
    if target.get("type") == "noop":
        return Outcome(f"restarted {workload} (dry run)", {"workload": workload},
                       (f"dry run: would restart {workload}",))
    services = (target.get("services") or {}) if target.get("type") == "agent" else {}
    if workload in services:
        return (yield from _restart_service(context, task, workload, services[workload]))
    if target.get("type") != "agent" or not target.get("cluster"):
        known = f" (its services: {', '.join(sorted(services))})" if services else ""
        raise StepFailed(f"environment {task['environment']} has no workload {workload!r}"
                         f"{known}: add it to target.services, or set target.cluster to a "
                         "Kubernetes cluster known to the agent")
    namespace = task["parameters"].get("namespace") or target.get("namespace") or "default"
    yield from step(context, task, f"restarting {namespace}/{workload}", 5)
    yield from run_agent_job(context, task, "restart",
                             {"cluster": target["cluster"], "namespace": namespace,
                              "workload": workload, "kind": "deployment"},
                             timeout=timedelta(minutes=30))
    return Outcome(f"restarted {namespace}/{workload}", {"workload": workload,
                                                         "namespace": namespace})


def _restart_service(context: df.DurableOrchestrationContext, task: dict[str, Any],
                     workload: str, service: str) -> Generator[Any, Any, Outcome]:
    """A service on the agent's machine (systemd unit or supervised app), per environment."""
    yield from step(context, task, f"restarting service {service} ({workload})", 5)
    result = yield from run_agent_job(context, task, "restart",
                                      {"kind": "service", "service": service,
                                       "environment": task["environment"]},
                                      timeout=timedelta(minutes=10))
    started = f", new process {result['pid']}" if result.get("pid") else ""
    return Outcome(f"restarted {workload}{started}", {"workload": workload, **result})


@bp.orchestration_trigger(context_name="context")
def restart_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield from run_task(context, restart_steps))
