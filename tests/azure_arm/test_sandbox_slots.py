"""A sandbox of an App Service environment gets its own deployment slot on the parent's
site (#17 item 3): created with the sandbox and deleted at teardown through
azure-mgmt-web, against the local ARM stand-in. A sandbox's deploy acts on its own slot
only: never the parent's production, never the parent's staging slot, never a swap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.appservice import AppServiceDeployer, LocalStandInCredential, SlotTarget
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


def test_the_deployer_creates_a_slot_in_the_sites_plan_and_deletes_it_once(
        standin: ArmStandIn, deployer: AppServiceDeployer, target: dict[str, Any]) -> None:
    slot = SlotTarget.from_json({**target, "slot": "sbx-try-0123456789ab"})
    assert deployer.create_slot(slot)["created"] is True
    assert set(standin.slots) == {"sbx-try-0123456789ab"}
    assert ("PUT", "/slots/sbx-try-0123456789ab") in standin.arm_calls()
    assert deployer.delete_slot(slot)["deleted"] is True
    assert standin.slots == {} and standin.deleted_slots == ["sbx-try-0123456789ab"]
    again = deployer.delete_slot(slot)  # a retried teardown
    assert again["deleted"] is False and "already gone" in again["log"][0]
    assert standin.production.version == "1.0.0" and standin.staging.version == "1.0.0"


@pytest.fixture(scope="module")
def arm() -> Iterator[ArmStandIn]:
    state = ArmStandIn(
        subscription_id=SUBSCRIPTION, resource_group="rg-sbx", site="sbx-api",
        slot="staging", token=LocalStandInCredential.TOKEN,
        production=SlotState({"CLOUDOPS_VERSION": "1.0.0"}),
        staging=SlotState({"CLOUDOPS_VERSION": "1.0.0"}))
    with run_standin(state) as running:
        yield running


@pytest.fixture(scope="module")
def host(arm: ArmStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin, name = create_throwaway_database("cloudops_sbxslot")
    running = start_host(with_database(admin, name), Path(tmp_path_factory.mktemp("slots")),
                         env={"CLOUDOPS_ARM_ENDPOINT": arm.base_url,
                              "CLOUDOPS_ARM_POLL_INTERVAL_MS": "20",
                              "CLOUDOPS_HEALTH_CHECK_SCHEME": "http",
                              "CLOUDOPS_HEALTH_CHECK_ATTEMPTS": "2",
                              "CLOUDOPS_HEALTH_CHECK_INTERVAL_MS": "20"})
    yield running
    stop_host(running)
    drop_database(admin, name)


def test_a_sandbox_gets_its_own_slot_deploys_only_there_and_loses_it_at_teardown(
        host: RunningHost, arm: ArmStandIn) -> None:
    admin = host.session("alice", ("admin",))
    assert admin.post(host.url("/api/projects"), json={"slug": "shop", "name": "Shop"}
                      ).status_code == 201
    r = admin.post(host.url("/api/projects/shop/environments"), json={
        "slug": "prod", "name": "Production",
        "target": {"type": "appservice", "subscriptionId": SUBSCRIPTION,
                   "resourceGroup": arm.resource_group, "site": arm.site,
                   "slot": arm.slot, "healthPath": arm.health_path}})
    assert r.status_code == 201, r.text
    api = host.url("/api/projects/shop/environments")

    created = admin.post(f"{api}/prod/sandboxes", json={"name": "try"})
    assert created.status_code == 202, created.text
    task = wait_for(admin, host, created.json()["id"], timeout=60)
    assert task["status"] == "succeeded", task
    sandbox = admin.get(f"{api}/try").json()
    slot = sandbox["target"]["slot"]
    assert slot.startswith("sbx-try-") and slot not in ("staging", "production")
    assert sandbox["target"]["site"] == arm.site
    assert set(arm.slots) == {slot}
    assert ("PUT", f"/slots/{slot}") in arm.arm_calls()

    deployed = admin.post(f"{api}/try/deployments", json={"version": "9.9.9"})
    assert deployed.status_code == 202, deployed.text
    task = wait_for(admin, host, deployed.json()["id"], timeout=60)
    assert task["status"] == "succeeded", task
    assert arm.slots[slot].version == "9.9.9" and arm.slots[slot].restarts == 1
    assert arm.production.version == "1.0.0" and arm.staging.version == "1.0.0"
    assert arm.staging.restarts == 0 and arm.swaps == 0
    touched = {path for _method, path in arm.arm_calls() if path.startswith("/slots/")}
    assert all(path.startswith(f"/slots/{slot}") for path in touched), touched

    gone = admin.post(f"{api}/try/teardown", json={})
    assert gone.status_code == 202, gone.text
    task = wait_for(admin, host, gone.json()["id"], timeout=60)
    assert task["status"] == "succeeded", task
    assert arm.slots == {} and arm.deleted_slots == [slot]
    assert ("DELETE", f"/slots/{slot}") in arm.arm_calls()
    assert admin.get(f"{api}/try").status_code == 404
    assert arm.production.version == "1.0.0" and arm.staging.version == "1.0.0"
