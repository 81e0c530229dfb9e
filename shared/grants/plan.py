"""What a task will do, resolved when it is requested: the plan approvers approve and
dispatch runs.

The plan names the environment's execution resources (target type, pool and labels,
database connection, cluster and namespaces, site and slot) and, where the task runs a
catalogue script, the script's argv (resolved, or the template when a value is only known
later, as a sandbox's parent version). When the task starts and again when it hands a job
to an agent, the plan is resolved afresh and compared: any difference fails the task with
"the environment changed since approval: …" — an admin cannot change what runs after an
approver looked at it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.domain.models import Environment, Task
from shared.errors import DomainError, NotFound
from shared.grants.resources import check, needs_of, site_name, target_namespaces
from shared.store.scripts import get_script
from shared.tasks.scripts import resolve_argv

# operations that run the environment's deploy script
_DEPLOYING = ("deploy", "sandbox_create")


def resources_of(env: Environment) -> dict[str, Any]:
    """The environment's execution resources, as a plan records them."""
    target, out = env.target, {"type": env.target.get("type")}
    if target.get("pool"):
        out["pool"] = target["pool"]
        out["labels"] = sorted(target.get("labels") or [])
    if env.database.get("connection"):
        out["connection"] = env.database["connection"]
        if env.database.get("databaseName"):
            out["databaseName"] = env.database["databaseName"]
    if target.get("type") == "agent":
        if target.get("cluster"):
            out["cluster"] = target["cluster"]
            out["namespaces"] = list(target_namespaces(target))
        if target.get("services"):
            out["services"] = dict(sorted(target["services"].items()))
        if target.get("deployScript"):
            out["deployScript"] = target["deployScript"]
    if target.get("type") == "appservice":
        out["site"] = site_name(target)
        out["slot"] = target.get("slot", "staging")
    return out


def _script_plan(conn: Connection[Any], project_id: UUID, name: str,
                 values: dict[str, Any] | None) -> dict[str, Any]:
    """The script's argv resolved with ``values`` (or its template when None); a script
    missing from the catalogue is recorded as such (the run fails saying so)."""
    try:
        script = get_script(conn, project_id, name)
    except NotFound:
        return {"name": name, "missing": True}
    if values is None:
        return {"name": name, "argvTemplate": list(script.argv)}
    declared = {p.name for p in script.parameters}
    try:
        argv = resolve_argv(script, {k: v for k, v in values.items() if k in declared})
    except DomainError:
        return {"name": name, "argvTemplate": list(script.argv)}
    return {"name": name, "argv": argv}


def resolve_plan(conn: Connection[Any], env: Environment, operation: str,
                 parameters: dict[str, Any]) -> dict[str, Any]:
    plan: dict[str, Any] = {"environment": env.slug, "resources": resources_of(env)}
    if operation == "script_run":
        plan["script"] = {"name": parameters.get("script"), "argv": parameters.get("argv")}
    elif operation in _DEPLOYING and env.target.get("type") == "agent" \
            and env.target.get("deployScript"):
        values = ({"version": parameters.get("version"), "environment": env.slug}
                  if operation == "deploy" else None)
        plan["script"] = _script_plan(conn, env.project_id, env.target["deployScript"],
                                      values)
    if operation == "refresh":
        plan["source"] = {"environment": parameters.get("sourceEnvironment"),
                          "backupId": parameters.get("backupId")}
        if parameters.get("maskScript"):
            plan["script"] = _script_plan(conn, env.project_id, parameters["maskScript"],
                                          parameters.get("maskParameters") or {})
    if operation == "restart":
        workload = parameters.get("workload")
        services = env.target.get("services") or {}
        if workload in services:
            plan["restart"] = {"workload": workload, "service": services[workload]}
        else:
            plan["restart"] = {"workload": workload,
                               "namespace": parameters.get("namespace")
                               or env.target.get("namespace") or "default"}
    return plan


def changes(planned: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between the recorded plan and the plan resolved now, in words."""
    out = []
    for section in sorted(set(planned) | set(current)):
        a, b = planned.get(section), current.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    out.append(f"{section}.{key} was {_show(a.get(key))}, now "
                               f"{_show(b.get(key))}")
        elif a != b:
            out.append(f"{section} was {_show(a)}, now {_show(b)}")
    return out


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def verify(conn: Connection[Any], task: Task, env: Environment) -> str | None:
    """Why the task may not run now (grants withdrawn, or the environment changed since
    it was requested / approved), or None."""
    try:
        check(conn, env.project_id, needs_of(env.target, env.database))
    except DomainError as exc:
        return f"{exc.detail} (withdrawn since the task was requested)"
    if task.plan is None:  # requested before plans were recorded
        return None
    differences = changes(task.plan, resolve_plan(conn, env, task.operation, task.parameters))
    if not differences:
        return None
    when = "approval" if (task.approval or {}).get("state") in ("approved", "pre-approved") \
        else "the task was requested"
    return f"the environment changed since {when}: " + "; ".join(differences)
