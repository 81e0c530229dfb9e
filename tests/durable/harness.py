"""Test harness: an engine over a test app, and the Durable HTTP API on a real port.

Runs without ``localhost.host``: functions come from ``app.get_functions()`` and are
called by ``direct_invoker`` (sync user code on a thread pool, as the worker does).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.durable_functions import DurableOrchestrationClient
from azure.durable_functions.models.utils import http_utils

from localhost.durable.catalog import direct_invoker, functions_from_app
from localhost.durable.engine import Engine
from localhost.durable.http_api import DurableHttpApi, client_binding
from localhost.durable.store import TERMINAL, Instance, InstanceStore
from tests.waiting import async_wait_until


@asynccontextmanager
async def running_engine(app: Any, *, store: InstanceStore | None = None,
                         **options: Any) -> AsyncIterator[Engine]:
    engine = Engine(functions_from_app(app), direct_invoker(), store, **options)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def run_to_end(engine: Engine, name: str, value: Any = None, *,
                     instance_id: str | None = None, timeout: float = 20) -> Instance:
    iid = await engine.start_new(name, instance_id, json.dumps(value))
    return await engine.wait_for(iid, timeout)


async def until(predicate: Callable[[], Any], timeout: float = 10,
                what: str = "the engine to reach the state the test waits for") -> None:
    """Poll an async-or-sync predicate until it holds (state, not timing, is asserted)."""
    await async_wait_until(predicate, what, timeout)


async def holds_back(engine: Engine, iid: str) -> bool:
    """The instance's driver has looked at its inbox and stopped, leaving messages held
    (what a suspended instance does with everything but resume and terminate)."""
    if iid in engine._driving:
        return False
    inst = await engine.store.get(iid)
    return inst is not None and bool(inst.inbox)


async def status_is(engine: Engine, iid: str, status: str) -> bool:
    inst = await engine.get(iid)
    return inst is not None and inst.status == status


def outputs(inst: Instance) -> Any:
    assert inst.status in TERMINAL, inst.status
    return None if inst.output is None else json.loads(inst.output)


@asynccontextmanager
async def api_server(engine: Engine, task_hub: str = "TestHubName"
                     ) -> AsyncIterator[tuple[str, DurableOrchestrationClient]]:
    """The HTTP API on a real loopback port and an SDK client bound to it."""
    web_app = web.Application()
    server = TestServer(web_app, host="127.0.0.1")
    # the port is known only once the server listens; routes use the request's own host
    api = DurableHttpApi(engine, "http://127.0.0.1", task_hub)
    api.add_routes(web_app)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    api.base_url = base
    client = DurableOrchestrationClient(json.dumps(client_binding(base, task_hub)))
    try:
        yield base, client
    finally:
        await http_utils._close_session()  # the SDK keeps one global aiohttp session
        await server.close()
