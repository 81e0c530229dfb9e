"""The app's Durable client reaches its own host's engine in-process: the same handlers
answer (status codes, bodies, errors) with no request on the socket; other hosts' URLs,
and this host's once it has stopped, still go over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.durable_functions import DurableOrchestrationClient
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus,
)
from azure.durable_functions.models.utils import http_utils

from localhost.durable import inprocess
from localhost.durable.http_api import DurableHttpApi, client_binding
from tests.durable.apps import actions_app
from tests.durable.harness import running_engine, until


@asynccontextmanager
async def served(engine: Any) -> AsyncIterator[tuple[str, web.Application, list[str]]]:
    """The HTTP API on a real port, counting the requests that reach the socket."""
    seen: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path}")
        return await handler(request)

    app = web.Application(middlewares=[count])
    server = TestServer(app, host="127.0.0.1")
    api = DurableHttpApi(engine, "http://127.0.0.1", "TestHubName")
    api.add_routes(app)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    api.base_url = base
    try:
        yield base, app, seen
    finally:
        inprocess.unregister(base)
        await http_utils._close_session()
        await server.close()


def _client(base: str) -> DurableOrchestrationClient:
    return DurableOrchestrationClient(json.dumps(client_binding(base, "TestHubName")))


async def _status(client: DurableOrchestrationClient, iid: str, status: str) -> bool:
    got = await client.get_status(iid)
    return got.runtime_status is not None and got.runtime_status.value == status


def test_client_calls_to_the_own_host_are_answered_in_process_by_the_same_handlers() -> None:
    async def main() -> None:
        async with running_engine(actions_app.make_app()) as eng, served(eng) as (
                base, app, seen):
            inprocess.register(base, app, asyncio.get_running_loop())
            client = _client(base)
            assert await client.start_new("chain", "c1", 2) == "c1"
            await eng.wait_for("c1", 10)
            done = await client.get_status("c1", show_history=True, show_input=True)
            assert done.runtime_status == OrchestrationRuntimeStatus.Completed
            assert done.output == {"value": 16, "shouted": "DONE!"} and done.input_ == 2
            assert not await client.get_status("nope")
            with pytest.raises(Exception, match="doesn't exist"):
                await client.start_new("no_such_orchestrator")
            await client.start_new("wait_event", "w1")
            await client.start_new("wait_event", "w2")
            with pytest.raises(Exception, match="already exists"):
                await client.start_new("wait_event", "w1")
            await until(lambda: _status(client, "w1", "Running"))
            await client.raise_event("w1", "approval", {"ok": True})
            await until(lambda: _status(client, "w1", "Completed"))
            assert (await client.get_status("w1")).output == {"ok": True}
            await client.terminate("w2", "no longer needed")
            await until(lambda: _status(client, "w2", "Terminated"))
            with pytest.raises(Exception, match="gone"):
                await client.raise_event("w2", "approval", 1)
            with pytest.raises(Exception, match="found"):
                await client.raise_event("missing", "approval", 1)
            assert (await client.purge_instance_history("c1")).instances_deleted == 1
            assert seen == []  # nothing reached the socket
    asyncio.run(main())


def test_calls_go_over_http_again_once_the_host_is_unregistered() -> None:
    async def main() -> None:
        async with running_engine(actions_app.make_app()) as eng, served(eng) as (
                base, app, seen):
            inprocess.register(base, app, asyncio.get_running_loop())
            inprocess.unregister(base)
            client = _client(base)
            await client.start_new("chain", "c2", 1)
            await eng.wait_for("c2", 10)
            assert (await client.get_status("c2")).runtime_status == \
                OrchestrationRuntimeStatus.Completed
            assert [s.split()[0] for s in seen] == ["POST", "GET"]
    asyncio.run(main())
