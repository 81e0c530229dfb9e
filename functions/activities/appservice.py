"""Activities of the App Service slot-swap deploy (set version, restart, health check, swap),
of App Service restarts (the site or its slot, then a health check), and of a sandbox's own
deployment slot, created with the sandbox and deleted at teardown.

Each takes the orchestrator's ``ref`` — ``{taskId, target, version, packageUrl, image}``
(plus ``where`` for health checks, optional ``expectProduction`` for swaps) — calls the
deploy adapter in ``shared.appservice``, writes one line to the task log, and returns the
adapter's small result dict. The plain functions (``set_version`` ...) take the deployer as
an argument so tests run them without a host; the triggers build it from the settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df

from functions.payloads import AppServiceAnswer, AppServiceRef
from shared.appservice import AppServiceDeployer, AppServiceError, SlotTarget
from shared.grants.sandboxes import SLOT_PREFIX
from shared.services import services

bp = df.Blueprint()
log = logging.getLogger("cloudops.appservice")

_lock = threading.Lock()
_factory: Callable[[], AppServiceDeployer] | None = None
_default: AppServiceDeployer | None = None


def use_deployer(factory: Callable[[], AppServiceDeployer] | None) -> None:
    """Replace how the triggers get their deployer (local host stand-ins, tests); None resets."""
    global _factory, _default
    with _lock:
        _factory, _default = factory, None


def deployer() -> AppServiceDeployer:
    """The deployer the triggers use: an installed factory's, else one from the settings."""
    global _default
    if _factory is not None:
        return _factory()
    with _lock:
        if _default is None:
            _default = AppServiceDeployer.from_settings(services().settings)
        return _default


# -- the plain functions (tests call these) -------------------------------------------
def set_version(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.set_version(SlotTarget.from_json(ref["target"]), ref["version"],
                              package_url=ref.get("packageUrl"), image=ref.get("image"))


def restart_slot(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.restart_slot(SlotTarget.from_json(ref["target"]))


def restart_site(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.restart_site(SlotTarget.from_json(ref["target"]))


def health_check(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.health_check(SlotTarget.from_json(ref["target"]), ref.get("where", "slot"))


def swap(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.swap(SlotTarget.from_json(ref["target"]),
                       expect_production=ref.get("expectProduction"))


def sandbox_slot(sandbox_id: str) -> SlotTarget:
    """The sandbox's own slot, read from its record (never from the orchestrator's input):
    a slot of the sandbox's naming, never production nor the parent's slot."""
    from uuid import UUID

    from shared.store import projects as project_store

    with services().db.transaction() as conn:
        sandbox = project_store.get_environment_by_id(conn, UUID(sandbox_id))
        parent = (project_store.get_environment_by_id(conn, sandbox.parent_id)
                  if sandbox.parent_id else None)
    if sandbox.kind != "sandbox" or parent is None:
        raise AppServiceError(f"{sandbox.slug} is not a sandbox: it has no slot of its own")
    target = SlotTarget.from_json(sandbox.target)
    if not target.slot.startswith(SLOT_PREFIX) or target.slot == parent.target.get("slot"):
        raise AppServiceError(f"refusing to touch slot {target.slot}: it is not sandbox "
                              f"{sandbox.slug}'s own")
    return target


def create_sandbox_slot(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.create_slot(sandbox_slot(ref["sandboxId"]))


def delete_sandbox_slot(ref: dict[str, Any], deploy: AppServiceDeployer) -> dict[str, Any]:
    return deploy.delete_slot(sandbox_slot(ref["sandboxId"]))


def _run(step: Callable[[dict[str, Any], AppServiceDeployer], dict[str, Any]],
         ref: dict[str, Any]) -> dict[str, Any]:
    asked = AppServiceRef.from_json(ref)
    answer = AppServiceAnswer.from_json(step(asked.to_json(), deployer()))
    _task_log(asked.task_id, answer.log)
    return answer.to_json()


def _task_log(task_id: str | None, lines: list[str]) -> None:
    """Append the step's lines to the task log.

    The ARM call already happened: failing the activity now would make Durable retry it,
    and a retried swap swaps back. So a log failure is reported, not raised.
    """
    if not task_id or not lines:
        return
    try:
        from functions.activities.tasks import task_service
        from shared.store import tasks as task_store

        svc = task_service()
        with services().db.transaction() as conn:
            task = task_store.get_task(conn, task_id)
        svc.log(task, lines)
    except Exception:
        log.exception("could not append %d line(s) to the log of task %s", len(lines), task_id)


# -- the triggers ---------------------------------------------------------------------
@bp.activity_trigger(input_name="ref")
def appservice_set_version(ref: dict[str, Any]) -> dict[str, Any]:
    """Put the version on the staging slot (image or package, and CLOUDOPS_VERSION).

    The task shows a package URL redacted; its real value is read here, from the task's
    secrets, so it never travels through orchestration history."""
    if ref.get("taskId"):
        from shared.store import tasks as task_store

        with services().db.transaction() as conn:
            task = task_store.get_task(conn, ref["taskId"])
        if (task.secrets or {}).get("packageUrl"):
            ref = {**ref, "packageUrl": task.secrets["packageUrl"]}  # type: ignore[index]  # checked above
    return _run(set_version, ref)


def _register(name: str, step: Callable[[dict[str, Any], AppServiceDeployer], dict[str, Any]],
              doc: str) -> None:
    """An activity named ``name`` that runs ``step`` on the orchestrator's ref."""
    def trigger(ref: dict[str, Any]) -> dict[str, Any]:
        return _run(step, ref)

    trigger.__name__ = trigger.__qualname__ = name
    trigger.__doc__ = doc
    bp.activity_trigger(input_name="ref")(trigger)


for _name, _step, _doc in [
    ("appservice_restart_slot", restart_slot, "Restart the deployment slot."),
    ("appservice_restart_site", restart_site,
     "Restart the site itself (production); the orchestration health-checks it after."),
    ("appservice_health_check", health_check,
     "``{healthy, detail, url, where}``: unhealthy is an answer, not an error."),
    ("appservice_swap", swap, "Swap the slot into production (a second call swaps back)."),
    ("appservice_create_sandbox_slot", create_sandbox_slot,
     "``{taskId, sandboxId}``: create the sandbox's own slot on its parent's site."),
    ("appservice_delete_sandbox_slot", delete_sandbox_slot,
     "``{taskId, sandboxId}``: delete the sandbox's own slot (gone already is fine)."),
]:
    _register(_name, _step, _doc)
