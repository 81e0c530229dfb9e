"""The deploy orchestration's App Service branch, run step by step against the ARM stand-in.

ARM cannot run offline, so the activities talk to ``_arm_standin`` (a local stand-in of
the ARM endpoints azure-mgmt-web calls, plus the slot and production hosts). The real
``appservice_deploy`` generator from ``functions/orchestrators/deploy.py`` is driven by a
minimal context that runs each activity at once — no host, no Durable engine — so these
tests pin the contract between the orchestrator and the four activities.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from functions.activities import appservice as activities
from functions.orchestrators._flow import StepFailed
from functions.orchestrators.deploy import appservice_deploy
from functions.payloads import TaskPlan
from shared.appservice import AppServiceDeployer
from tests.azure_arm._arm_standin import ArmStandIn

Activity = Callable[[dict[str, Any]], Any]


class _Done:
    """A finished Durable task: the value the orchestrator's ``yield`` receives."""

    def __init__(self, value: Any) -> None:
        self.value = value


class InlineContext:
    """Just enough of ``DurableOrchestrationContext`` to run activity chains inline."""

    def __init__(self, activities: dict[str, Activity]) -> None:
        self.activities = activities
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.steps: list[str] = []

    def call_activity_with_retry(self, name: str, retry: Any, payload: dict[str, Any]) -> _Done:
        self.calls.append((name, payload))
        if name == "start_step":
            self.steps.append(payload["reason"])
            return _Done({"cancelled": False})
        if name == "append_log":
            self.steps.extend(payload["lines"])
            return _Done(len(payload["lines"]))
        return _Done(self.activities[name](payload))


def drive(gen: Generator[Any, Any, Any]) -> Any:
    sent: Any = None
    while True:
        try:
            done = gen.send(sent)
        except StopIteration as stop:
            return stop.value
        sent = done.value


@pytest.fixture
def context(deployer: AppServiceDeployer) -> InlineContext:
    def bound(fn: Callable[[dict[str, Any], AppServiceDeployer], Any]) -> Activity:
        return lambda ref: fn(ref, deployer)

    return InlineContext({
        "appservice_set_version": bound(activities.set_version),
        "appservice_restart_slot": bound(activities.restart_slot),
        "appservice_health_check": bound(activities.health_check),
        "appservice_swap": bound(activities.swap),
    })


def deploy_task(target: dict[str, Any], version: str) -> TaskPlan:
    return TaskPlan(task_id="5f0c1c9e-0000-4000-8000-000000000002", operation="deploy",
                    requested_by="u1", project="orders", environment="prod",
                    environment_id="5f0c1c9e-0000-4000-8000-000000000003", target=target,
                    parameters={"version": version,
                                "packageUrl": f"https://pkgs.example/orders-{version}.zip"})


def test_healthy_version_is_swapped_into_production(
        standin: ArmStandIn, context: InlineContext, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): set, restart, check, swap, check."""
    outcome = drive(appservice_deploy(context, deploy_task(target, "2.0.0"), "2.0.0"))

    assert outcome.result == {"version": "2.0.0"}
    assert [name for name, _ in context.calls if name not in ("start_step", "append_log")] == [
        "appservice_set_version", "appservice_restart_slot", "appservice_health_check",
        "appservice_swap", "appservice_health_check"]
    assert standin.production.version == "2.0.0"
    assert standin.production.app_settings["WEBSITE_RUN_FROM_PACKAGE"].endswith("2.0.0.zip")
    assert standin.staging.version == "1.0.0"
    assert standin.staging.restarts == 1
    assert standin.swaps == 1


def test_unhealthy_slot_fails_without_touching_production(
        standin: ArmStandIn, context: InlineContext, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): version 2.0.0 answers 503 everywhere."""
    standin.health_rule = lambda where, version: 503 if version == "2.0.0" else 200

    with pytest.raises(StepFailed, match=r"slot staging is unhealthy: HTTP 503 after 3 "
                                         r"attempts; production untouched"):
        drive(appservice_deploy(context, deploy_task(target, "2.0.0"), "2.0.0"))

    assert not any(path.endswith("/slotsswap") for _, path in standin.arm_calls())
    assert standin.swaps == 0
    assert standin.production.version == "1.0.0"
    assert ("production", "/health") not in standin.health_requests


def test_unhealthy_production_after_swap_is_swapped_back(
        standin: ArmStandIn, context: InlineContext, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline): 2.0.0 is healthy on the slot but fails
    in production (say, a production-only dependency), so the deploy swaps back."""
    standin.health_rule = lambda where, version: (
        503 if (where, version) == ("production", "2.0.0") else 200)

    with pytest.raises(StepFailed, match="swapped back to the previous version"):
        drive(appservice_deploy(context, deploy_task(target, "2.0.0"), "2.0.0"))

    swaps = [path for _, path in standin.arm_calls() if path.endswith("/slotsswap")]
    assert len(swaps) == 2
    assert standin.swaps == 2
    assert standin.production.version == "1.0.0"
    assert standin.production.app_settings["WEBSITE_RUN_FROM_PACKAGE"].endswith("1.0.0.zip")
    assert standin.staging.version == "2.0.0"
    assert context.steps[-1] == ("production health check failed: HTTP 503 after 3 attempts; "
                                 "swapping back")
