"""Durable Functions for the local host: an engine that drives the real Python SDK.

``DurableExtension`` plugs the engine into ``localhost.host.Host`` (see
``localhost/extension.py``): it claims the ``orchestrationTrigger`` and
``activityTrigger`` functions, provides the ``durableClient`` input binding (the client
JSON whose ``rpcBaseUrl`` is ``{host.base_url}/durabletask/``), serves the Durable HTTP
API on the host's port, and runs activities and entity batches through ``host.invoke``.
Entities (``entityTrigger``) follow ``localhost.durable.entities``.

Store: in memory by default; ``database_url=`` (or the environment
``CLOUDOPS_DURABLE_STORE=postgres`` with ``DATABASE_URL``) keeps instances in Postgres so
a restarted host resumes every unfinished orchestration. ``host.json``
``extensions.durableTask`` ``hubName`` and ``maxConcurrentActivityFunctions`` apply.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from localhost.durable import inprocess
from localhost.durable.catalog import KINDS, FunctionRef
from localhost.durable.engine import Engine
from localhost.durable.http_api import DurableHttpApi, client_binding
from localhost.durable.store import InstanceStore, MemoryStore

if TYPE_CHECKING:
    from localhost.functions import FunctionInfo
    from localhost.host import Host

__all__ = ["DurableExtension", "Engine"]

DEFAULT_TASK_HUB = "TestHubName"  # what Core Tools uses locally
DEFAULT_MAX_ACTIVITIES = 64


class DurableExtension:
    name = "durable"

    def __init__(self, store: InstanceStore | None = None, *, database_url: str | None = None,
                 task_hub: str | None = None, max_activities: int | None = None,
                 extended_sessions: bool = True) -> None:
        self._store = store
        self._database_url = database_url
        self.task_hub = task_hub or DEFAULT_TASK_HUB
        self._explicit_hub = task_hub is not None
        self._max_activities = max_activities or DEFAULT_MAX_ACTIVITIES
        self._extended_sessions = extended_sessions
        self._functions: list[FunctionRef] = []
        self._host: Host | None = None
        self._engine: Engine | None = None

    @classmethod
    def from_env(cls, **kwargs: Any) -> DurableExtension:
        """Postgres-backed when ``CLOUDOPS_DURABLE_STORE=postgres`` (uses ``DATABASE_URL``)."""
        url = None
        if os.environ.get("CLOUDOPS_DURABLE_STORE", "memory").lower() == "postgres":
            url = os.environ.get("DATABASE_URL") or None
        return cls(database_url=url, **kwargs)

    @property
    def store(self) -> InstanceStore:
        if self._store is None:
            if self._database_url:
                from localhost.durable.pg_store import PostgresStore

                self._store = PostgresStore(self._database_url)
            else:
                self._store = MemoryStore()
        return self._store

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the durable extension has not started")
        return self._engine

    def bind(self, host: Host) -> None:
        self._host = host
        config = host.extension_config("durableTask")
        if not self._explicit_hub and config.get("hubName"):
            self.task_hub = str(host.resolve_setting(config["hubName"]))
        if config.get("maxConcurrentActivityFunctions"):
            self._max_activities = int(config["maxConcurrentActivityFunctions"])
        if self._store is None and self._database_url is None:
            self._database_url = DurableExtension.from_env()._database_url
        for trigger_type in ("orchestrationTrigger", "activityTrigger", "entityTrigger"):
            host.register_trigger(trigger_type, self._claim)
        host.register_input_binding("durableClient", self._client_value)
        api = DurableHttpApi(_LazyEngine(self), host.base_url, self.task_hub)  # type: ignore[arg-type]  # proxies Engine
        api.add_routes(host.web)

    def _claim(self, fn: FunctionInfo) -> None:
        kind = KINDS[fn.trigger_type]
        # an entity answers to its trigger's entityName when one is given
        name = str(fn.trigger.get("entityName") or fn.name) if kind == "entity" else fn.name
        self._functions.append(FunctionRef(name, kind, fn.user_function,
                                           str(fn.trigger.get("name", "")), fn))

    def _client_value(self, fn: Any, binding: dict[str, Any]) -> str:
        assert self._host is not None
        hub = binding.get("taskHub") or self.task_hub
        return json.dumps(client_binding(self._host.base_url, hub))

    async def start(self) -> None:
        host = self._host
        assert host is not None, "bind() must run before start()"

        async def invoke(ref: FunctionRef, trigger_value: Any) -> Any:
            return await host.invoke(ref.handle, trigger_value)

        await release_client_session()
        self._engine = Engine(self._functions, invoke, self.store,
                              max_activities=self._max_activities,
                              extended_sessions=self._extended_sessions)
        await self._engine.start()
        # the app's Durable client reaches this engine without loopback HTTP
        inprocess.register(host.base_url, host.web, asyncio.get_running_loop())

    def metrics(self) -> dict[str, Any]:
        """Durable work done since start: orchestrator episodes (each an orchestrator
        execution on Azure), activity and entity executions, history events and messages
        written, and the store's group commits."""
        engine = self._engine
        if engine is None:
            return {}
        store = self.store
        return {"episodes": engine.episodes, "activity_runs": engine.work.activity_runs,
                "entity_batches": engine.entity_batches,
                "history_events": engine.history_events, "messages": engine.messages,
                "store_batches": getattr(store, "batches", None),
                "store_batched_episodes": getattr(store, "batched_episodes", None)}

    async def stop(self) -> None:
        if self._host is not None:
            inprocess.unregister(self._host.base_url)
        if self._engine is not None:
            await self._engine.stop()
        await release_client_session()


async def release_client_session() -> None:
    """Close the SDK client's module-global aiohttp session, whichever loop owns it.

    ``DurableOrchestrationClient`` shares one ``aiohttp.ClientSession`` per process and
    only replaces it once closed, so a session left by an earlier event loop (a previous
    host; tests run one loop each) would be reused on the wrong loop. Called when the
    extension starts and stops.
    """
    from azure.durable_functions.models.utils import http_utils

    session = http_utils._client_session
    http_utils._session_lock = asyncio.Lock()
    if session is None or session.closed:
        return
    http_utils._client_session = None
    owner = session._loop
    if owner is asyncio.get_running_loop():
        await session.close()
    elif owner.is_closed():
        session.connector._close()  # type: ignore[union-attr]  # marks it closed, no I/O
    else:  # still running in another thread (another host): let that loop close it
        asyncio.run_coroutine_threadsafe(session.close(), owner)


class _LazyEngine:
    """Routes are added in ``bind``; the engine exists only from ``start``."""

    def __init__(self, ext: DurableExtension) -> None:
        self._ext = ext

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ext.engine, name)

