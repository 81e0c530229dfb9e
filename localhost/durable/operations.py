"""Client operations of the engine: what the Durable HTTP API and clients ask for.

Start (refusing an id that is still running, as Azure does), status reads and queries,
raise event / terminate / suspend / resume (messages to the instance's inbox), purge,
and waiting for completion. ``Engine`` mixes these in; the errors carry the HTTP status
the Durable extension answers with.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from localhost.durable import entities
from localhost.durable.store import (
    TERMINAL,
    DurableError,
    Instance,
    InstanceExists,
    InstanceStore,
    Message,
    Query,
)

__all__ = ["ClientOperations", "DurableError", "InstanceExists", "InstanceGone",
           "InstanceNotFound", "NotTerminal", "UnknownFunction"]


class UnknownFunction(DurableError):
    status = 400


class InstanceNotFound(DurableError):
    status = 404


class InstanceGone(DurableError):
    status = 410


class NotTerminal(DurableError):
    status = 412


class ClientOperations:
    """Mixed into ``Engine``, which provides the attributes declared here."""

    store: InstanceStore
    orchestrators: dict[str, Any]
    entities: dict[str, Any]
    _sessions: Any
    _driving: dict[str, asyncio.Event]
    _waiters: dict[str, list[asyncio.Future[None]]]
    messages: int

    def _wake(self, instance_id: str) -> None:
        raise NotImplementedError

    async def deliver(self, instance_id: str, msg: Message) -> None:
        raise NotImplementedError

    async def ensure_entity(self, instance_id: str) -> None:
        raise NotImplementedError

    def _new_instance(self, iid: str, name: str, input_json: str | None, version: str,
                      parent: dict[str, Any] | None) -> tuple[Instance, Message]:
        raise NotImplementedError

    async def start_new(self, name: str, instance_id: str | None = None,
                        input_json: str | None = None, version: str = "",
                        parent: dict[str, Any] | None = None) -> str:
        if name not in self.orchestrators:
            raise UnknownFunction(f"The function '{name}' doesn't exist, is disabled, or is "
                                  "not an orchestrator function.")
        iid = instance_id or uuid.uuid4().hex
        # Every unfinished instance is held in memory, so an id the store does not hold
        # is new or finished: ``create`` refuses a live one atomically either way.
        existing = self.store.cached(iid)
        driving = self._driving.get(iid)
        if existing is not None and existing.status in TERMINAL and driving is not None:
            await driving.wait()  # its last episode may still be on its way to the store
        if existing is not None and existing.status not in TERMINAL:
            raise InstanceExists(f"An Orchestration instance with the status "
                                 f"{existing.status} already exists.")
        inst, start = self._new_instance(iid, name, input_json, version, parent)
        self.messages += 1
        await self.store.create(inst, start)
        self._sessions.pop(iid, None)
        self._wake(iid)
        return iid

    async def get(self, instance_id: str) -> Instance | None:
        return await self.store.get(instance_id)

    async def query(self, q: Query) -> list[Instance]:
        """Orchestration instances; entities only when the id prefix asks for them."""
        found = await self.store.query(q)
        if q.id_prefix and entities.is_entity(q.id_prefix):
            return found
        return [i for i in found if not entities.is_entity(i.instance_id)]

    # ---- entities (the client side: signal and read) --------------------------------
    async def signal_entity(self, name: str, key: str, operation: str,
                            input_json: str | None) -> None:
        """Queue ``operation`` for entity ``name``/``key`` (created on first use)."""
        if name not in self.entities:
            raise UnknownFunction(f"The function '{name}' doesn't exist, is disabled, or is "
                                  "not an entity function.")
        iid = entities.scheduler_id(name, key)
        await self.ensure_entity(iid)
        await self.deliver(iid, entities.operation(operation, input_json, signal=True))

    async def read_entity(self, name: str, key: str) -> Instance | None:
        """The entity instance if the entity exists (has state), else ``None``."""
        inst = await self.store.get(entities.scheduler_id(name, key))
        return inst if inst is not None and inst.output is not None else None

    async def list_entities(self, name: str | None = None) -> list[Instance]:
        prefix = entities.scheduler_id(name, "") if name else entities.ENTITY_PREFIX
        found = await self.store.query(Query(id_prefix=prefix))
        return [i for i in found if i.output is not None]

    async def _live(self, instance_id: str) -> Instance:
        inst = await self.store.get(instance_id)
        if inst is None:
            raise InstanceNotFound(f"No instance with ID '{instance_id}' found.")
        if inst.status in TERMINAL:
            raise InstanceGone(f"Instance with ID '{instance_id}' is {inst.status}.")
        return inst

    async def raise_event(self, instance_id: str, name: str, input_json: str | None) -> None:
        await self._live(instance_id)
        await self.deliver(instance_id, Message("event", {"name": name, "input": input_json}))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        await self._live(instance_id)
        await self.deliver(instance_id, Message("terminate", {"reason": reason}))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        await self._live(instance_id)
        await self.deliver(instance_id, Message("suspend", {"reason": reason}))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        await self._live(instance_id)
        await self.deliver(instance_id, Message("resume", {"reason": reason}))

    async def purge(self, instance_id: str) -> int:
        inst = await self.store.get(instance_id)
        if inst is None:
            return 0
        if inst.status not in TERMINAL:
            raise NotTerminal(f"Only orchestrations in a terminal state can be purged, but "
                              f"the orchestration with instance ID {instance_id} has status "
                              f"{inst.status}")
        return await self.store.delete([instance_id])

    async def purge_by(self, q: Query) -> int:
        ids = [i.instance_id for i in await self.store.query(q) if i.status in TERMINAL]
        return await self.store.delete(ids) if ids else 0

    async def wait_for(self, instance_id: str, timeout: float | None = None) -> Instance:
        """Wait until the instance reaches a terminal status (for tests and the API)."""
        inst = await self.store.get(instance_id)
        if inst is None:
            raise InstanceNotFound(instance_id)
        if inst.status not in TERMINAL:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(instance_id, []).append(fut)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                waiting = self._waiters.get(instance_id)
                if waiting and fut in waiting:
                    waiting.remove(fut)
        found = await self.store.get(instance_id)
        assert found is not None
        return found
