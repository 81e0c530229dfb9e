"""App Service deploys end to end on the local host: HTTP → Service Bus → orchestration
→ azure-mgmt-web → ARM. ARM cannot run offline, so it is a local stand-in of the ARM
endpoints the SDK calls (tests/azure_arm/_arm_standin.py), with the slot and production
health endpoints; the host's deployer reaches it with the local stand-in token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.appservice import LocalStandInCredential
from tests.azure_arm._arm_standin import ArmStandIn, SlotState, run_standin
from tests.azure_arm.conftest import SUBSCRIPTION
from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.pipeline.test_pipeline_e2e import wait_for


@pytest.fixture(scope="module")
def arm() -> Iterator[ArmStandIn]:
    state = ArmStandIn(
        subscription_id=SUBSCRIPTION, resource_group="rg-shop", site="shop-api",
        slot="staging", token=LocalStandInCredential.TOKEN,
        production=SlotState({"CLOUDOPS_VERSION": "1.0.0"}),
        staging=SlotState({"CLOUDOPS_VERSION": "1.0.0"}))
    with run_standin(state) as running:
        yield running


@pytest.fixture(scope="module")
def host(arm: ArmStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin, name = create_throwaway_database("cloudops_arm")
    running = start_host(with_database(admin, name), Path(tmp_path_factory.mktemp("arm")),
                         env={"CLOUDOPS_ARM_ENDPOINT": arm.base_url,
                              "CLOUDOPS_ARM_POLL_INTERVAL_MS": "20",
                              "CLOUDOPS_HEALTH_CHECK_SCHEME": "http",
                              "CLOUDOPS_HEALTH_CHECK_ATTEMPTS": "2",
                              "CLOUDOPS_HEALTH_CHECK_INTERVAL_MS": "20"})
    yield running
    stop_host(running)
    drop_database(admin, name)


@pytest.fixture(scope="module")
def env(host: RunningHost, arm: ArmStandIn) -> tuple[Any, str]:
    admin = host.session("alice", ("admin",))
    admin.post(host.url("/api/projects"), json={"slug": "shop", "name": "Shop"})
    r = admin.post(host.url("/api/projects/shop/environments"), json={
        "slug": "prod", "name": "Production",
        "target": {"type": "appservice", "subscriptionId": SUBSCRIPTION,
                   "resourceGroup": arm.resource_group, "site": arm.site,
                   "slot": arm.slot, "healthPath": arm.health_path}})
    assert r.status_code == 201, r.text
    return admin, host.url("/api/projects/shop/environments/prod/deployments")


def test_deploy_swaps_a_healthy_version_into_production(host: RunningHost, arm: ArmStandIn,
                                                        env: tuple[Any, str]) -> None:
    admin, url = env
    arm.health_rule = lambda where, version: 200
    r = admin.post(url, json={"version": "2.0.0",
                              "packageUrl": "https://pkgs.example/shop-2.0.0.zip"})
    task = wait_for(admin, host, r.json()["id"], timeout=60)
    assert task["status"] == "succeeded", task
    assert "running" in task["_seen"] or task["_seen"][-1] == "succeeded"
    assert arm.production.version == "2.0.0" and arm.staging.version == "1.0.0"
    logs = [x["text"] for x in admin.get(host.url(f"/api/tasks/{task['id']}/logs")).json()[
        "items"]]
    assert logs[-1] == "succeeded: deployed 2.0.0"


def test_unhealthy_production_is_swapped_back_and_the_task_fails(
        host: RunningHost, arm: ArmStandIn, env: tuple[Any, str]) -> None:
    admin, url = env
    before = arm.production.version
    arm.health_rule = lambda where, version: 503 if (where, version) == ("production",
                                                                         "3.0.0") else 200
    r = admin.post(url, json={"version": "3.0.0"})
    task = wait_for(admin, host, r.json()["id"], timeout=60)
    assert task["status"] == "failed"
    assert "swapped back to the previous version" in task["error"]
    assert arm.production.version == before
