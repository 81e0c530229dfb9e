"""The authorization matrix: every HTTP route of the app (read from the function index, so
new routes are covered automatically) by every kind of caller → 401, 403 (404 where a
task's existence is hidden) or allowed. A route missing from POLICIES fails the test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from localhost.easyauth import COOKIE, principal_cookie
from tests.conftest import RunningHost
from tests.pipeline.test_cancel_and_failures import FakeAgent
from tests.pipeline.test_pipeline_e2e import make_env, wait_for

# function name → policy. ("user", scope, role): Easy Auth users / pipeline keys holding
# ``role`` on the project (scope "project") or globally ("global"); "hide" = answers 404
# to callers who may not read the project; "authenticated": any signed-in caller;
# "any-role": a caller holding some role on some project (or globally);
# "agent": agent keys only; "register": registration tokens only; "signed": signed URLs
# only; "public": anyone.
POLICIES: dict[str, tuple[str, ...]] = {
    "health": ("public",), "openapi_document": ("public",), "api_docs": ("public",),
    "artifact": ("signed",),
    "agent_register": ("register",),
    **{name: ("agent",) for name in (
        "agent_rotate_key", "agent_heartbeat", "agent_next_job", "agent_job_logs",
        "agent_job_result", "agent_job_release")},
    "list_pools": ("any-role",), "list_pool_agents": ("any-role",),
    "create_pool": ("user", "global", "admin"),
    "issue_registration_token": ("user", "global", "admin"),
    "change_agent": ("user", "global", "admin"),
    "negotiate": ("any-role",), "me": ("authenticated",),
    "auth_roles": ("authenticated",),  # SWA's rolesSource: answers only about the caller
    **{name: ("user", "global", "admin") for name in (
        "pipeline_keys", "rotate_pipeline_key", "revoke_pipeline_key")},
    "list_projects": ("authenticated",), "list_tasks": ("authenticated",),
    "pending_approvals": ("authenticated",),
    "create_project": ("user", "global", "operator"),
    "global_roles": ("user", "global", "admin"), "global_role_item": ("user", "global", "admin"),
    "realtime_group": ("user", "project", "reader"),
    "realtime_group:DELETE": ("authenticated",),  # leaving a group needs no permission
    "list_activity": ("user", "project", "reader"),
    "project_item:GET": ("user", "project", "reader"),
    "project_item": ("user", "project", "admin"),
    "environments:GET": ("user", "project", "reader"),
    "environments": ("user", "project", "admin"),
    "environment_item:GET": ("user", "project", "reader"),
    "environment_item": ("user", "project", "admin"),
    "project_scripts:GET": ("user", "project", "reader"),
    "project_scripts": ("user", "project", "admin"),
    "script_item": ("user", "project", "admin"),
    "project_roles:GET": ("user", "project", "reader"),
    "project_roles": ("user", "project", "admin"),
    "project_role_item": ("user", "project", "admin"),
    "protection:GET": ("user", "project", "reader"),
    "protection": ("user", "project", "admin"),
    "freeze_windows:GET": ("user", "project", "reader"),
    "freeze_windows": ("user", "project", "admin"),
    "freeze_override": ("user", "project", "admin"),
    "list_backups": ("user", "project", "reader"),
    "backup_item:GET": ("user", "project", "reader"),
    "backup_item": ("user", "project", "admin"),
    "backup_download": ("user", "project", "operator"),
    **{name: ("user", "project", "operator") for name in (
        "deploy", "backup", "restore", "refresh", "restart", "create_sandbox", "run_script",
        "teardown_sandbox")},
    "get_task": ("user", "project", "reader", "hide"),
    "task_logs": ("user", "project", "reader", "hide"),
    "cancel_task": ("user", "project", "operator", "hide"),
    "decide_approval": ("user", "project", "reader", "hide"),
    "notification_rules:GET": ("user", "project", "reader"),
    "notification_rules": ("user", "project", "admin"),
    "notification_rule:GET": ("user", "project", "reader"),
    "notification_rule": ("user", "project", "admin"),
    "task_notifications": ("user", "project", "reader", "hide"),
    "send_test_notification": ("user", "project", "admin"),
    "backup_schedules:GET": ("user", "project", "reader"),
    "backup_schedules": ("user", "project", "admin"),
    "backup_schedule:GET": ("user", "project", "reader"),
    "backup_schedule": ("user", "project", "admin"),
    "extend_sandbox": ("user", "project", "operator"),
    "resources:GET": ("any-role",), "resources": ("user", "global", "admin"),
    "resource_item:GET": ("any-role",), "resource_item": ("user", "global", "admin"),
    "resource_grants:GET": ("any-role",), "resource_grants": ("user", "global", "admin"),
    "withdraw_grant": ("user", "global", "admin"),
}

CALLERS = ["anonymous", "forged", "malformed", "agent", "pipeline", "stranger", "reader",
           "operator", "admin", "other_operator", "global_admin"]
ROLE_OF = {"reader": "reader", "operator": "operator", "admin": "admin"}
RANK = {"reader": 1, "operator": 2, "admin": 3}


@dataclass
class Route:
    name: str
    method: str
    route: str


def http_routes() -> list[Route]:
    from tests.function_index import app_functions

    out = []
    for fn in app_functions():
        trigger = fn.get_trigger()
        if trigger.get_binding_name() != "httpTrigger":
            continue
        for method in trigger.methods:
            out.append(Route(fn.get_function_name(), str(getattr(method, "value", method)),
                             trigger.route))
    return out


ROUTES = http_routes()


def policy_of(route: Route) -> tuple[str, ...] | None:
    return POLICIES.get(f"{route.name}:{route.method}") or POLICIES.get(route.name)


def test_every_route_is_classified() -> None:
    missing = sorted({f"{r.name} {r.method} /api/{r.route}" for r in ROUTES
                      if policy_of(r) is None})
    assert missing == [], "classify these routes in POLICIES"


@dataclass
class World:
    host: RunningHost
    project: str
    project_id: str
    env: str
    task_id: str
    agent: FakeAgent

    def fill(self, route: str) -> str:
        values = {"project": self.project, "env": self.env, "id": self.task_id,
                  "script": "nope", "assignment": str(uuid.uuid4()), "pool": self.agent.pool,
                  "agent": str(uuid.uuid4()), "action:alpha": "disable",
                  "job": str(uuid.uuid4()), "group": f"project:{self.project_id}",
                  "*name": "x/y.dump", "*asset": "index.html",
                  "rule": str(uuid.uuid4()), "schedule": str(uuid.uuid4()),
                  "resource": f"pool:{self.agent.pool}", "grant": str(uuid.uuid4()),
                  "key": str(uuid.uuid4()), "backup": str(uuid.uuid4())}
        for key, value in values.items():
            route = route.replace("{" + key + "}", value)
        return route


@pytest.fixture(scope="module")
def world(running_host: RunningHost) -> World:
    admin = running_host.session("matrix-owner", ("admin",))
    project, env = make_env(admin, running_host)
    project_id = admin.get(running_host.url(f"/api/projects/{project}")).json()["id"]
    for user, role in (("m-reader", "reader"), ("m-operator", "operator"),
                       ("m-admin", "admin")):
        admin.post(running_host.url(f"/api/projects/{project}/roles"),
                   json={"principalType": "user", "principalId": user, "role": role})
    other, _ = make_env(admin, running_host)
    admin.post(running_host.url(f"/api/projects/{other}/roles"),
               json={"principalType": "user", "principalId": "m-other", "role": "operator"})
    task = admin.post(running_host.url(
        f"/api/projects/{project}/environments/{env}/deployments"), json={"version": "1"}).json()
    wait_for(admin, running_host, task["id"])
    agent = FakeAgent(running_host, admin, ["linux"])
    # the pipeline key holds a role elsewhere, never on the matrix project
    admin.post(running_host.url(f"/api/projects/{other}/roles"),
               json={"principalType": "service", "principalId": "default", "role": "reader"})
    return World(running_host, project, project_id, env, task["id"], agent)


def headers_for(caller: str, world: World) -> dict[str, str]:
    users = {"stranger": ("m-stranger", ()), "reader": ("m-reader", ()),
             "operator": ("m-operator", ()), "admin": ("m-admin", ()),
             "other_operator": ("m-other", ()), "global_admin": ("m-global", ("admin",))}
    if caller in users:
        user, roles = users[caller]
        return {"Cookie": f"{COOKIE}={principal_cookie(user, user, list(roles))}"}
    if caller == "forged":  # a client-supplied principal: the front door strips it
        forged = principal_cookie("m-global", "m-global", ["admin"])
        return {"x-ms-client-principal": forged}
    if caller == "malformed":
        return {"Cookie": f"{COOKIE}=%%%not-base64"}
    if caller == "agent":
        return {"Authorization": world.agent.http.headers["Authorization"]}
    if caller == "pipeline":  # the default key: a service principal with no role here
        return {"x-functions-key": world.host.function_key}
    return {}


def expected(policy: tuple[str, ...], caller: str) -> set[int] | str:
    """A set of statuses, or "allowed" (anything but 401/403 and 5xx)."""
    kind = policy[0]
    signed_in = caller in ("pipeline", "stranger", "reader", "operator", "admin",
                           "other_operator", "global_admin")
    if kind == "public":
        return "allowed"
    if kind == "signed":
        return {403}
    if kind == "register":
        return {401, 403}
    if kind == "agent":
        return "allowed" if caller == "agent" else {401}
    if not signed_in:
        return {401}
    if kind == "authenticated":
        return "allowed"
    if kind == "any-role":  # a role on some project, or globally
        return {403} if caller == "stranger" else "allowed"
    _, scope, need = policy[:3]
    if caller == "global_admin":
        return "allowed"
    if scope == "global":
        return {403}
    role = ROLE_OF.get(caller)
    if role is not None and RANK[role] >= RANK[need]:
        return "allowed"
    if "hide" in policy and role is None:
        return {404}
    return {403}


def body_for(route: Route) -> dict[str, Any]:
    bodies: dict[str, dict[str, Any]] = {
        "deploy": {"version": "2"}, "restore": {"backupId": str(uuid.uuid4())},
        "refresh": {"sourceEnvironment": "nowhere"},
        "restart": {"workload": "web"}, "create_sandbox": {"name": "sb", "ttlHours": 1},
        "run_script": {"parameters": {}}, "decide_approval": {"decision": "approve"},
        "realtime_group": {"connectionId": "nope"}, "agent_register": {
            "token": "not-a-token", "name": "x"},
        "agent_heartbeat": {}, "agent_job_logs": {"lines": []},
        "agent_job_result": {"status": "failed", "error": "x"},
    }
    return bodies.get(route.name, {})


CASES = [(r, c) for r in ROUTES for c in CALLERS if policy_of(r) is not None
         # destructive admin calls would remove the world; their denials are still covered
         and not (r.method == "DELETE" and r.name in ("project_item", "environment_item")
                  and c in ("admin", "global_admin"))]


@pytest.mark.parametrize(("route", "caller"), CASES,
                         ids=[f"{r.method}-{r.name}-{c}" for r, c in CASES])
def test_route_answers_each_caller_as_its_policy_says(world: World, route: Route,
                                                      caller: str) -> None:
    policy = policy_of(route)
    assert policy is not None
    url = world.host.url("/api/" + world.fill(route.route))
    if route.name == "agent_next_job":
        url += "?wait=0"
    if route.name == "list_activity":
        url += f"?project={world.project}"
    response = requests.request(route.method, url, headers=headers_for(caller, world),
                                json=body_for(route) if route.method != "GET" else None,
                                timeout=30, allow_redirects=False)
    want = expected(policy, caller)
    if want == "allowed":
        assert response.status_code not in (401, 403) and response.status_code < 500, \
            (response.status_code, response.text[:300])
    else:
        assert response.status_code in want, (response.status_code, response.text[:300])
