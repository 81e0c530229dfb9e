"""The six operations: each POST validates, authorizes, records a task and queues it.

Answers ``202 Accepted`` with the task and ``Location: /api/tasks/{id}``; a retried POST
with the same ``Idempotency-Key`` answers with the same task and queues nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import azure.functions as func

from functions.http._common import (
    access_of,
    api,
    caller,
    idempotency_key,
    json_body,
    readable_environment,
)
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.api.views import backup_json, iso, task_json
from shared.auth import Principal, require
from shared.domain.models import Backup, Environment, Project
from shared.errors import Conflict, ConstraintViolation, DomainError, NotFound
from shared.grants.resources import target_namespaces
from shared.redact import MASK, mask, redact_url, secret_values
from shared.services import services
from shared.store import backups as backup_store
from shared.store import projects as store
from shared.store import scripts as script_store
from shared.store import tasks as task_store
from shared.tasks import approvals, freezes, scripts
from shared.tasks.requests import OPERATION_BODIES, Body, dump
from shared.tasks.service import TaskService

bp = func.Blueprint()

ENV_ROUTE = "projects/{project}/environments/{env}"
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words in logs


def _target(conn: Any, req: func.HttpRequest, principal: Principal,
            need: str = "operator") -> tuple[Project, Environment]:
    project, env, access = readable_environment(conn, req, principal)
    require(access, project.id, need, "running operations here")
    return project, env


Check = Callable[[Any, Project, Environment, dict[str, Any]], dict[str, Any] | None]


def _split_secrets(conn: Any, project: Project, operation: str, parameters: dict[str, Any],
                   ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What readers may see, and what only the steps may: a package URL's keys (a SAS
    signature), a script's ``secret`` parameters (masked in parameters and argv)."""
    secrets: dict[str, Any] = {}
    public = dict(parameters)
    package_url = public.get("packageUrl")
    if isinstance(package_url, str) and redact_url(package_url) != package_url:
        secrets["packageUrl"] = package_url
        public["packageUrl"] = redact_url(package_url)
    if operation == "script_run":
        script = script_store.get_script(conn, project.id, public["script"])
        hidden = {p.name for p in script.parameters if p.secret}
        values = dict(public.get("parameters") or {})
        given = {k: v for k, v in values.items() if k in hidden}
        short = sorted(k for k, v in given.items() if len(str(v)) < MIN_SECRET_CHARS)
        if short:
            raise ConstraintViolation(f"parameters.{short[0]} is secret and must have at least "
                                      f"{MIN_SECRET_CHARS} characters (it is masked in logs)",
                                      field=f"parameters.{short[0]}")
        if given:
            secrets["parameters"] = given
            secrets["argv"] = public["argv"]
            public["parameters"] = {k: (MASK if k in hidden else v) for k, v in values.items()}
            public["argv"] = [mask(a, secret_values(given)) for a in public["argv"]]
    return public, secrets or None


def _submit(req: func.HttpRequest, operation: str, *,
            check: Check | None = None) -> func.HttpResponse:
    """Authorize, validate and record in one transaction; then publish and queue.

    A key this caller already used replays its task only for the very same request
    (route and body); a different request with it answers 422 naming the key. The replay
    is decided before ``check``, which may no longer hold once the first request ran (a
    created sandbox's name is taken)."""
    principal = caller(req)
    key = idempotency_key(req)
    svc = TaskService(services())
    with services().db.transaction() as conn:
        project, env = _target(conn, req, principal)
        body: Body = json_body(req, OPERATION_BODIES[operation])
        parameters = dump(body)
        route = {k: v for k, v in req.route_params.items() if k not in ("project", "env")}
        fingerprint = task_store.request_fingerprint(
            operation, env.id, {"route": route, "body": parameters})
        task = task_store.replay_by_key(conn, requested_by=principal.actor,
                                        idempotency_key=key, operation=operation,
                                        environment_id=env.id, fingerprint=fingerprint)
        created = False
        if task is None:
            if check is not None:
                parameters = check(conn, project, env, parameters) or parameters
            _not_refused_by_a_freeze(conn, env, operation)
            parameters, secrets = _split_secrets(conn, project, operation, parameters)
            task, created = svc.record(conn, project=project, environment=env,
                                       operation=operation, parameters=parameters,
                                       actor=principal.actor, idempotency_key=key,
                                       secrets=secrets, fingerprint=fingerprint)
        if created:  # a protected operation waits for approval before it queues
            task = approvals.hold_for_approval(conn, task, env)
    headers = {"Location": f"/api/tasks/{task.id}"}
    if created:
        svc.announce(task)
    else:
        headers["Idempotent-Replayed"] = "true"
    return json_response(task_json(task), 202, headers)


def _not_refused_by_a_freeze(conn: Any, env: Environment, operation: str) -> None:
    """A window in ``refuse`` mode turns the request away now (``hold`` windows let the
    task wait instead); an admin's override lets it through."""
    frozen = freezes.frozen_now(conn, env.id, operation, services().clock.now())
    if frozen is not None and frozen.mode == "refuse" and frozen.overridden is None:
        raise Conflict(freezes.refusal(frozen, operation), field="env")


def _what_ships(conn: Any, project: Project, env: Environment,
                parameters: dict[str, Any]) -> None:
    """An App Service deploy ships one thing: a package (run from package) or a container
    image; agent targets deploy through their own script and take neither (a dry-run
    target takes what App Service would)."""
    given = [f for f in ("packageUrl", "image") if parameters.get(f)]
    if not given:
        return
    if env.target.get("type") == "agent":
        raise ConstraintViolation(
            f"{given[0]}: environment {env.slug} is an agent target, not App Service; its "
            "deploys run its deploy script with the version only", field=given[0])
    if len(given) == 2:
        raise ConstraintViolation("image: give a package URL or a container image, not "
                                  "both", field="image")


@bp.route(route=f"{ENV_ROUTE}/backups", methods=["GET"])
@api
def list_backups(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    page = page_request(req, datetime, UUID)
    with services().db.transaction() as conn:
        _, env = _target(conn, req, principal, need="reader")
        items = backup_store.list_backups(conn, env.id, after=page.after, limit=page.fetch)
        takers = backup_store.takers(conn, items[:page.limit])
    return json_response(page_json(items, page, backup_store.backup_key,
                                   lambda b: backup_json(b, takers.get(b.id))))


def _artifact_present(backup: Backup, environment: str) -> None:
    """Refuse at request time a backup whose artifact is gone (deleted, or expired by the
    storage lifecycle rule) — not when the agent fails to fetch it."""
    artifacts = services().artifacts
    if not artifacts.exists(artifacts.name_of(backup.location)):
        raise Conflict(f"backup {backup.id} of {environment} (taken {iso(backup.created_at)})"
                       " has no artifact any more: it was deleted or expired from storage."
                       " Choose a newer backup", field="backupId")


def _backup_of_environment(conn: Any, project: Project, env: Environment,
                           parameters: dict[str, Any]) -> None:
    backup = backup_store.get_backup(conn, parameters["backupId"])
    if backup.environment_id != env.id:
        raise ConstraintViolation(f"backup {backup.id} belongs to another environment; to "
                                  "restore another environment's backup here, refresh from"
                                  " it (POST …/refreshes)", field="backupId")
    _artifact_present(backup, env.slug)


def _refresh_check(principal: Principal) -> Check:
    def check(conn: Any, project: Project, env: Environment,
              parameters: dict[str, Any]) -> dict[str, Any]:
        return refresh_parameters(conn, project, env, parameters, access_of(conn, principal))
    return check


def refresh_parameters(conn: Any, project: Project, env: Environment,
                       parameters: dict[str, Any], access: Any) -> dict[str, Any]:
    """A refresh's parameters resolved: the source's backup (its latest unless chosen),
    the masking script's argv; refused when the target is protected against refreshes,
    the caller may not read the source's backups, or the artifact is gone."""
    if not env.database.get("connection"):
        raise ConstraintViolation(f"environment {env.slug} has no database connection to "
                                  "restore into (set database.connection)", field="env")
    protection = approvals.protection_for(conn, env.id)
    if protection is not None and "refresh" not in protection.operations:
        raise ConstraintViolation(
            f"environment {env.slug} is protected and its protection does not allow "
            "refreshes; an admin may add 'refresh' to its protected operations (refreshes "
            "then wait for approval)", field="env")
    try:
        source = store.get_environment(conn, project.id, parameters["sourceEnvironment"])
    except NotFound:
        raise NotFound(f"environment {parameters['sourceEnvironment']} not found in project "
                       f"{project.slug}", field="sourceEnvironment") from None
    if source.id == env.id:
        raise ConstraintViolation("the source is this environment: restore one of its "
                                  "backups instead (POST …/restores)",
                                  field="sourceEnvironment")
    require(access, project.id, "reader", f"reading {source.slug}'s backups")
    if parameters.get("backupId"):
        backup = backup_store.get_backup(conn, parameters["backupId"])
        if backup.environment_id != source.id:
            raise ConstraintViolation(f"backup {backup.id} is not a backup of {source.slug}",
                                      field="backupId")
    else:
        latest = backup_store.latest_backup(conn, source.id)
        if latest is None:
            raise ConstraintViolation(f"{source.slug} has no backup yet: take one first "
                                      "(POST …/backups) or name backupId",
                                      field="sourceEnvironment")
        backup = latest
    _artifact_present(backup, source.slug)
    out = {**parameters, "sourceEnvironment": source.slug, "backupId": str(backup.id)}
    if parameters.get("maskScript"):
        try:
            script = script_store.get_script(conn, project.id, parameters["maskScript"])
        except NotFound as exc:
            raise NotFound(exc.detail, field="maskScript") from None
        try:
            out["maskArgv"] = scripts.resolve_argv(script, parameters.get("maskParameters")
                                                   or {})
        except DomainError as exc:
            field = (exc.field or "").replace("parameters.", "maskParameters.", 1)
            raise ConstraintViolation(exc.detail.replace("parameters.", "maskParameters.", 1),
                                      field=field or "maskParameters") from None
        out["maskTimeoutSeconds"] = script.timeout_seconds
    return out


@bp.route(route=f"{ENV_ROUTE}/refreshes", methods=["POST"])
@api
def refresh(req: func.HttpRequest) -> func.HttpResponse:
    """Restore this environment from a backup of another environment of the project."""
    return _submit(req, "refresh", check=_refresh_check(caller(req)))


def _restart_check(conn: Any, project: Project, env: Environment,
                   parameters: dict[str, Any]) -> None:
    """What a restart names exists on the target: the site or its slot on App Service, a
    Kubernetes kind only for Kubernetes workloads, a namespace inside the environment's."""
    target, workload = env.target, parameters["workload"]
    if target.get("type") == "appservice":
        site, slot = str(target["site"]), str(target.get("slot") or "staging")
        for field in ("namespace", "kind"):
            if parameters.get(field):
                raise ConstraintViolation(f"{field}: environment {env.slug} is an App Service"
                                          f" target; a restart here names the site {site} or"
                                          f" its slot {slot}, without {field}", field=field)
        if workload not in (site.lower(), slot.lower()):
            raise ConstraintViolation(f"workload: {workload} is neither the site {site} nor "
                                      f"its slot {slot}; name one of them", field="workload")
        return
    if parameters.get("kind") and workload in (target.get("services") or {}):
        raise ConstraintViolation(f"kind: {workload} is a service on the agent's machine, "
                                  "not a Kubernetes workload; omit kind", field="kind")
    _namespace_of_environment(conn, project, env, parameters)


def _namespace_of_environment(conn: Any, project: Project, env: Environment,
                              parameters: dict[str, Any]) -> None:
    """A restart stays inside the environment's namespace (or the list its admin set)."""
    namespace = parameters.get("namespace")
    if namespace is None:
        return
    allowed = target_namespaces(env.target)
    if env.target.get("type") != "agent" or not env.target.get("cluster"):
        raise ConstraintViolation(f"environment {env.slug} has no Kubernetes cluster; a "
                                  "restart here names no namespace", field="namespace")
    if namespace not in allowed:
        raise ConstraintViolation(
            f"namespace {namespace} is outside environment {env.slug}: restarts here may "
            f"name {', '.join(allowed)} (target.namespace / target.namespaces)",
            field="namespace")


def _sandbox_name_free(conn: Any, project: Project, env: Environment,
                       parameters: dict[str, Any]) -> None:
    if env.kind == "sandbox":
        raise ConstraintViolation("a sandbox cannot have sandboxes; use its parent",
                                  field="env")
    taken = {e.slug for e in store.list_environments(conn, project.id)}
    if parameters["name"] in taken:
        raise Conflict(f"an environment named {parameters['name']} already exists",
                       field="name")
    if parameters.get("backupId"):
        _seed_backup_of_parent(conn, env, parameters["backupId"])


def _seed_backup_of_parent(conn: Any, env: Environment, backup_id: str) -> None:
    """A chosen seed is a regular backup of the parent whose artifact is still stored."""
    backup = backup_store.get_backup(conn, backup_id)
    if backup.environment_id != env.id:
        raise ConstraintViolation(f"backupId: backup {backup.id} is not a backup of "
                                  f"{env.slug}; a sandbox is seeded from its parent's "
                                  "backups", field="backupId")
    if backup.kind != "backup":
        raise ConstraintViolation(f"backupId: backup {backup.id} is a {backup.kind} copy taken"
                                  " by a restore, not a regular backup of "
                                  f"{env.slug}; choose a regular backup, or omit backupId "
                                  "to seed from a fresh one", field="backupId")
    _artifact_present(backup, env.slug)


def _must_be_sandbox(conn: Any, project: Project, env: Environment,
                     parameters: dict[str, Any]) -> None:
    if env.kind != "sandbox":
        raise ConstraintViolation(f"{env.slug} is not a sandbox; only sandboxes are torn "
                                  "down", field="env")


@bp.route(route=f"{ENV_ROUTE}/scripts/{{script}}/runs", methods=["POST"])
@api
def run_script(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params["script"]

    def resolve(conn: Any, project: Project, env: Environment,
                parameters: dict[str, Any]) -> dict[str, Any]:
        script = script_store.get_script(conn, project.id, name)
        argv = scripts.resolve_argv(script, parameters.get("parameters", {}))
        return {"script": name, "parameters": parameters.get("parameters", {}), "argv": argv,
                "timeoutSeconds": script.timeout_seconds}

    return _submit(req, "script_run", check=resolve)


def _operation(function: str, path: str, operation: str, check: Check | None = None) -> None:
    """``POST {environment}/{path}``: request ``operation`` (202 + task), after ``check``."""
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        return _submit(req, operation, check=check)

    handler.__name__ = handler.__qualname__ = function
    bp.route(route=f"{ENV_ROUTE}/{path}", methods=["POST"])(api(handler))


# the operations whose request is the body alone (refresh and script runs, above, also
# read the caller or the route)
for _function, _path, _operation_name, _check in [
        ("deploy", "deployments", "deploy", _what_ships),
        ("backup", "backups", "backup", None),
        ("restore", "restores", "restore", _backup_of_environment),
        ("restart", "restarts", "restart", _restart_check),
        ("create_sandbox", "sandboxes", "sandbox_create", _sandbox_name_free),
        ("teardown_sandbox", "teardown", "sandbox_delete", _must_be_sandbox)]:
    _operation(_function, _path, _operation_name, _check)
