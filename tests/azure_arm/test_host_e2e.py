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


def test_restart_of_the_site_or_its_slot_goes_through_arm_then_a_health_check(
        host: RunningHost, arm: ArmStandIn, env: tuple[Any, str]) -> None:
    admin, url = env
    restarts = url.replace("/deployments", "/restarts")
    arm.health_rule = lambda where, version: 200
    before = (arm.production.restarts, arm.staging.restarts)
    checked = len(arm.health_requests)
    site = wait_for(admin, host, admin.post(restarts, json={"workload": arm.site}).json()["id"],
                    timeout=60)
    assert site["status"] == "succeeded", site
    assert site["reason"] == f"restarted site {arm.site}, healthy"
    assert {where for where, _ in arm.health_requests[checked:]} == {"production"}
    checked = len(arm.health_requests)
    slot = wait_for(admin, host, admin.post(restarts, json={"workload": arm.slot}).json()["id"],
                    timeout=60)
    assert slot["status"] == "succeeded", slot
    assert slot["reason"] == f"restarted slot {arm.slot} of {arm.site}, healthy"
    assert (arm.production.restarts, arm.staging.restarts) == (before[0] + 1, before[1] + 1)
    assert {where for where, _ in arm.health_requests[checked:]} == {"slot"}


def test_a_site_unhealthy_after_its_restart_fails_the_task_saying_so(
        host: RunningHost, arm: ArmStandIn, env: tuple[Any, str]) -> None:
    admin, url = env
    arm.health_rule = lambda where, version: 503 if where == "production" else 200
    try:
        r = admin.post(url.replace("/deployments", "/restarts"), json={"workload": arm.site})
        task = wait_for(admin, host, r.json()["id"], timeout=60)
    finally:
        arm.health_rule = lambda where, version: 200
    assert task["status"] == "failed", task
    assert f"site {arm.site} was restarted but is not healthy" in task["error"]
    assert "503" in task["error"]


def test_an_app_service_restart_names_the_site_or_its_slot(
        host: RunningHost, arm: ArmStandIn, env: tuple[Any, str]) -> None:
    admin, url = env
    restarts = url.replace("/deployments", "/restarts")
    calls = len(arm.requests)
    for body, field in (({"workload": "web"}, "workload"),
                        ({"workload": arm.site, "kind": "statefulset"}, "kind"),
                        ({"workload": arm.slot, "namespace": "shop"}, "namespace")):
        r = admin.post(restarts, json=body)
        assert r.status_code == 422, r.text
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["field"] == field
    assert arm.site in r.json()["detail"] and arm.slot in r.json()["detail"]
    assert len(arm.requests) == calls  # nothing reached ARM


def test_an_image_deploy_ships_the_image_into_production(
        host: RunningHost, arm: ArmStandIn, env: tuple[Any, str]) -> None:
    admin, url = env
    arm.health_rule = lambda where, version: 200
    r = admin.post(url, json={"version": "4.0.0", "image": "acr.example/shop-api:4.0.0"})
    task = wait_for(admin, host, r.json()["id"], timeout=60)
    assert task["status"] == "succeeded", task
    assert arm.production.linux_fx_version == "DOCKER|acr.example/shop-api:4.0.0"
    assert arm.production.version == "4.0.0"


def test_a_deploy_ships_a_package_or_an_image_not_both(
        host: RunningHost, arm: ArmStandIn, env: tuple[Any, str]) -> None:
    admin, url = env
    calls = len(arm.requests)
    r = admin.post(url, json={"version": "5.0.0", "image": "acr.example/shop-api:5",
                              "packageUrl": "https://pkgs.example/shop-5.zip"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "image" and "not both" in r.json()["detail"]
    scripted = admin.post(host.url("/api/projects/shop/environments"), json={
        "slug": "vm", "name": "VM", "target": {"type": "agent", "pool": "vms",
                                               "deployScript": "deploy"}})
    assert scripted.status_code in (201, 409), scripted.text
    r = admin.post(host.url("/api/projects/shop/environments/vm/deployments"),
                   json={"version": "5.0.0", "packageUrl": "https://pkgs.example/shop-5.zip"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "packageUrl" and "not App Service" in r.json()["detail"]
    assert len(arm.requests) == calls
