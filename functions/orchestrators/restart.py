"""Restart a Kubernetes workload (rollout restart) through an agent and wait until ready."""

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
    if target.get("type") != "agent" or not target.get("cluster"):
        raise StepFailed(f"no Kubernetes cluster is configured for environment "
                         f"{task['environment']}: set target.cluster to a cluster name "
                         "known to the agent")
    namespace = task["parameters"].get("namespace") or target.get("namespace") or "default"
    yield from step(context, task, f"restarting {namespace}/{workload}", 5)
    yield from run_agent_job(context, task, "restart",
                             {"cluster": target["cluster"], "namespace": namespace,
                              "workload": workload, "kind": "deployment"},
                             timeout=timedelta(minutes=30))
    return Outcome(f"restarted {namespace}/{workload}", {"workload": workload,
                                                         "namespace": namespace})


@bp.orchestration_trigger(context_name="context")
def restart_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield from run_task(context, restart_steps))
