"""``POST /api/negotiate`` and ``POST /api/realtime/groups/{group}`` against real Postgres
and the real SignalR emulation: who may join which group, and that a joined client then
receives exactly what the event helpers publish."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import azure.functions as func
import jwt
import pytest

from functions.http import realtime as realtime_fn
from shared.api.views import task_json
from shared.realtime import RestRealtime
from shared.realtime.events import publish_task_log, publish_task_update
from shared.services import Services
from tests.realtime._client import HubClient
from tests.realtime._server import Emulator
from tests.realtime.test_emulation import run


def principal_header(user_id: str) -> str:
    data = {"identityProvider": "aad", "userId": user_id, "userDetails": f"{user_id}@x",
            "userRoles": ["anonymous", "authenticated"]}
    return base64.b64encode(json.dumps(data).encode()).decode()


def principal_headers(user_id: str) -> dict[str, str]:
    """What a Function App linked to a Static Web App receives for a signed-in user."""
    return {"x-ms-client-principal": principal_header(user_id),
            "x-ms-client-principal-idp": "azureStaticWebApps"}


def call(fn: Any, method: str, url: str, user: str | None, body: Any = None,
         route: dict[str, str] | None = None) -> func.HttpResponse:
    headers = principal_headers(user) if user else {}
    req = func.HttpRequest(method, url, headers=headers, route_params=route or {},
                           body=json.dumps(body).encode() if body is not None else b"")
    return fn.build().get_user_function()(req)


def join(user: str | None, group: str, connection_id: str) -> func.HttpResponse:
    return call(realtime_fn.realtime_group, "POST", f"/api/realtime/groups/{group}", user,
                {"connectionId": connection_id}, {"group": group})


def test_negotiate_needs_a_principal(app_services: Services) -> None:
    resp = call(realtime_fn.negotiate, "POST", "/api/negotiate", None)
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"


def test_negotiate_refuses_a_signed_in_caller_without_any_role(
        app_services: Services, emulator: Emulator) -> None:
    resp = call(realtime_fn.negotiate, "POST", "/api/negotiate", "nobody-42")
    assert resp.status_code == 403
    assert "accessToken" not in json.loads(resp.get_body())


def test_negotiate_returns_a_client_url_and_token_for_the_callers_user_id(
        app_services: Services, emulator: Emulator, world: dict[str, Any]) -> None:
    resp = call(realtime_fn.negotiate, "POST", "/api/negotiate", world["reader"])
    assert resp.status_code == 200
    info = json.loads(resp.get_body())
    assert info["url"] == f"{emulator.endpoint}/client/?hub=cloudops"
    claims = jwt.decode(info["accessToken"], emulator.extension.access_key,
                        algorithms=["HS256"], audience=info["url"])
    assert claims["nameid"] == world["reader"]


def test_reader_joins_task_group_and_receives_only_that_tasks_events(
        app_services: Services, world: dict[str, Any], rest: RestRealtime) -> None:
    task = world["task"]

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            info = json.loads(call(realtime_fn.negotiate, "POST", "/api/negotiate",
                                   world["reader"]).get_body())
            client = await HubClient(session, info["url"], info["accessToken"]).connect()
            resp = await asyncio.to_thread(join, world["reader"], f"task:{task.id}",
                                           client.connection_id)
            assert resp.status_code == 200
            snapshot = task_json(task)
            await asyncio.to_thread(publish_task_update, rest, snapshot)
            await asyncio.to_thread(publish_task_log, rest, task.id, task.project_id,
                                    [{"seq": 1, "at": "t", "level": "info", "text": "a"}])
            other = dict(snapshot, id="00000000-0000-0000-0000-000000000000")
            await asyncio.to_thread(publish_task_update, rest, other)
            await asyncio.to_thread(rest.send_to_user, world["reader"], "marker", [])
            assert await client.next() == ("taskUpdated", [snapshot])
            target, args = await client.next()
            assert target == "taskLog" and args[0]["from"] == 1
            assert await client.next() == ("marker", [])  # the other task's event never came
            await client.close()
    run(scenario())


@pytest.mark.parametrize(("who", "group", "status"), [
    ("reader", "project", 200), ("stranger", "project", 403), ("stranger", "task", 403),
    ("reader", "unknown-project", 404), ("reader", "unknown-task", 404),
    ("reader", "bogus", 404), ("reader", "project:not-a-uuid", 404)])
def test_group_join_is_allowed_only_to_readers_of_the_project(
        app_services: Services, world: dict[str, Any], rest: RestRealtime,
        who: str, group: str, status: int) -> None:
    name = {"project": f"project:{world['project'].id}", "task": f"task:{world['task'].id}",
            "unknown-project": "project:00000000-0000-0000-0000-000000000001",
            "unknown-task": "task:00000000-0000-0000-0000-000000000001",
            }.get(group, group)

    async def scenario() -> func.HttpResponse:
        async with aiohttp.ClientSession() as session:
            info = rest.negotiate(world[who])
            client = await HubClient(session, info["url"], info["accessToken"]).connect()
            resp = await asyncio.to_thread(join, world[who], name, client.connection_id)
            await client.close()
            return resp
    resp = run(scenario())
    assert resp.status_code == status
    if status != 200:
        assert resp.mimetype == "application/problem+json"


def test_group_join_refuses_missing_or_unknown_connections(
        app_services: Services, world: dict[str, Any]) -> None:
    group = f"project:{world['project'].id}"
    missing = call(realtime_fn.realtime_group, "POST", "/x", world["reader"], {},
                   {"group": group})
    assert missing.status_code == 422
    assert json.loads(missing.get_body())["field"] == "connectionId"
    assert join(world["reader"], group, "no-such-connection").status_code == 404
    assert join(None, group, "whatever").status_code == 401
