"""The activity triggers write their line to the task's log (real Postgres task rows).

ARM cannot run offline, so the deployer talks to ``_arm_standin``, a local stand-in of the
ARM endpoints azure-mgmt-web calls; the task, project and environment are real rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import azure.durable_functions as df
import pytest

from functions.activities import appservice as activities
from shared import services as services_module
from shared.appservice import AppServiceDeployer
from shared.clock import SystemClock
from shared.db import Database
from shared.logs import MemoryLogStore
from shared.realtime.fake import InMemoryRealtime
from shared.services import Services
from shared.settings import Settings
from shared.store import projects, tasks
from tests.azure_arm._arm_standin import ArmStandIn
from tests.azure_arm.conftest import make_ref


@pytest.fixture
def installed(db: Database, settings: Settings,
              deployer: AppServiceDeployer) -> Iterator[Services]:
    before = services_module._services
    svc = Services(settings=settings, db=db, clock=SystemClock(), bus=None,  # type: ignore[arg-type]
                   logs=MemoryLogStore(), realtime=InMemoryRealtime(),
                   artifacts=None)  # type: ignore[arg-type]
    services_module.install(svc)
    activities.use_deployer(lambda: deployer)
    yield svc
    activities.use_deployer(None)
    services_module.install(before)


@pytest.fixture
def task_id(db: Database, target: dict[str, Any]) -> str:
    with db.transaction() as conn:
        project = projects.create_project(conn, slug=f"arm-{uuid.uuid4().hex[:8]}", name="ARM",
                                          actor="t")
        env = projects.create_environment(conn, project_id=project.id, slug="prod",
                                          name="Prod", target=target, actor="t")
        task, _ = tasks.create_task(conn, project_id=project.id, environment_id=env.id,
                                    operation="deploy", parameters={"version": "2.0.0"},
                                    requested_by="t")
    return str(task.id)


def _trigger(name: str) -> Any:
    app = df.DFApp()
    app.register_functions(activities.bp)
    (fn,) = [f for f in app.get_functions() if f.get_function_name() == name]
    return fn.get_user_function()


def test_set_version_trigger_logs_its_line_to_the_task_without_the_sas(
        standin: ArmStandIn, installed: Services, task_id: str,
        target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline); real task rows in Postgres."""
    ref = {**make_ref(target, "2.0.0",
                      package_url="https://pkgs.example/2.0.0.zip?sig=SECRETSIG"),
           "taskId": task_id}

    result = _trigger("appservice_set_version")(ref)

    lines = installed.logs.read(task_id)
    assert [line.text for line in lines] == result["log"]
    assert lines[0].text.startswith("slot staging of orders-api: version 2.0.0 from package "
                                    "https://pkgs.example/2.0.0.zip?<redacted>")
    assert standin.staging.version == "2.0.0"
    realtime = installed.realtime
    assert isinstance(realtime, InMemoryRealtime)
    assert any(sent.target == "taskLog" for sent in realtime.sent)
    assert "SECRETSIG" not in repr(realtime.sent)


def test_a_failing_task_log_does_not_fail_the_swap(
        standin: ArmStandIn, installed: Services, target: dict[str, Any]) -> None:
    """Local ARM stand-in (ARM cannot run offline). A failed activity is retried, and a
    retried swap swaps back: so once ARM has swapped, the activity must succeed."""
    ref = {**make_ref(target, "2.0.0"), "taskId": str(uuid.uuid4())}  # no such task

    result = _trigger("appservice_swap")(ref)

    assert result["swapped"] is True
    assert standin.swaps == 1
