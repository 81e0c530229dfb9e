"""Durable entities: function-based entity triggers driven through the real SDK.

Orchestrations signal and call the entity (``signal_entity``, ``call_entity``), clients
signal it and read its state through the Durable HTTP API with the SDK's own
``DurableOrchestrationClient``, operations on one entity never interleave, errors raised by
an operation reach the caller, and entity state survives a restart on the Postgres store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import azure.durable_functions as df
import psycopg
import pytest

from localhost.durable import DurableExtension
from localhost.durable import history as h
from localhost.durable.pg_store import PostgresStore
from localhost.host import Host
from tests.durable.apps import entities_app
from tests.durable.harness import api_server, outputs, run_to_end, running_engine, until
from tests.waiting import async_wait_until

SAMPLE_DIR = Path(__file__).parent / "apps" / "entity_sample"


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def pg_url(database_url: str) -> Iterator[str]:
    yield database_url
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS durable_history, durable_inbox, durable_instances")


async def _state(eng, key: str):
    inst = await eng.read_entity("Counter", key)
    return None if inst is None else json.loads(inst.output)


@pytest.mark.parametrize("sessions", [True, False], ids=["extended", "full-replay"])
def test_an_orchestration_signals_and_calls_an_entity(sessions: bool) -> None:
    async def main():
        async with running_engine(entities_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "signal_then_get", "k1")
            # signals are delivered before the later call, in the order they were sent
            assert outputs(inst) == [7, 17]
            assert await _state(eng, "k1") == 17
            sent = [e for e in inst.history.events if e["EventType"] == h.EVENT_SENT]
            assert [e["InstanceId"] for e in sent] == ["@counter@k1"] * 4
            assert [e["EventId"] for e in sent] == [0, 1, 2, 3]
            assert all(json.loads(e["Input"])["id"] for e in sent)
    run(main())


def test_an_operation_that_raises_fails_the_call_and_keeps_the_state() -> None:
    async def main():
        async with running_engine(entities_app.make_app()) as eng:
            await eng.signal_entity("Counter", "k2", "add", "5")
            inst = await run_to_end(eng, "call_failing", "k2")
            out = outputs(inst)
            assert "cannot fail at 5" in out["error"]
            assert out["value"] == 5
    run(main())


def test_operations_on_one_entity_never_interleave() -> None:
    async def main():
        async with running_engine(entities_app.make_app()) as eng:
            ids = [await eng.start_new("add_one", None, json.dumps("shared")) for _ in range(20)]
            fan = await run_to_end(eng, "add_in_parallel", {"key": "shared", "n": 10})
            results = [outputs(await eng.wait_for(i, 20)) for i in ids]
            # 30 increments, each saw a distinct value: none was lost or applied twice
            assert sorted(results + outputs(fan)) == list(range(1, 31))
            assert await _state(eng, "shared") == 30
    run(main())


def test_a_deleted_entity_no_longer_exists() -> None:
    async def main():
        async with running_engine(entities_app.make_app()) as eng:
            await eng.signal_entity("Counter", "gone", "add", "1")
            await until(lambda: _state(eng, "gone"))
            await eng.signal_entity("Counter", "gone", "delete", None)
            await until(lambda: _missing(eng, "gone"))
    run(main())


async def _missing(eng, key: str) -> bool:
    return await eng.read_entity("Counter", key) is None


def test_the_sdk_client_signals_reads_and_lists_entities_over_the_http_api() -> None:
    async def main():
        async with running_engine(entities_app.make_app()) as eng, \
                api_server(eng) as (base, client):
            counter = df.EntityId("Counter", "http")
            missing = await client.read_entity_state(counter)
            assert not missing.entity_exists
            await client.signal_entity(counter, "add", 2)
            await client.signal_entity(counter, "add", 40)
            await until(lambda: _is(eng, "http", 42))
            state = await client.read_entity_state(counter)
            assert state.entity_exists and state.entity_state == 42
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/runtime/webhooks/durabletask/entities/Counter",
                                    params={"fetchState": "true"}) as resp:
                    assert resp.status == 200
                    listed = await resp.json()
                assert [(e["entityId"], e["state"]) for e in listed] == [
                    ({"name": "counter", "key": "http"}, 42)]
                async with http.post(
                        f"{base}/runtime/webhooks/durabletask/entities/Counter/http?op=reset"
                        ) as resp:
                    assert resp.status == 202
                async with http.post(
                        f"{base}/runtime/webhooks/durabletask/entities/Nope/x?op=add") as resp:
                    assert resp.status == 400
                async with http.get(f"{base}/durabletask/instances") as resp:
                    assert await resp.json() == []  # entities are not orchestrations
            await until(lambda: _is(eng, "http", 0))
    run(main())


async def _is(eng, key: str, value: int) -> bool:
    return await _state(eng, key) == value


def test_entity_state_and_queued_operations_survive_a_restart_on_postgres(pg_url: str) -> None:
    async def main():
        async with running_engine(entities_app.make_app(), store=PostgresStore(pg_url)) as eng:
            inst = await run_to_end(eng, "signal_then_get", "pg")
            assert outputs(inst) == [7, 17]
        async with running_engine(entities_app.make_app(), store=PostgresStore(pg_url)) as eng:
            assert await _state(eng, "pg") == 17
            inst = await run_to_end(eng, "add_one", "pg")
            assert outputs(inst) == 18
            # an operation stored while no host runs is carried out by the next one
            await eng.store.enqueue("@counter@pg", (await _op("add", 100)))
        async with running_engine(entities_app.make_app(), store=PostgresStore(pg_url)) as eng:
            await until(lambda: _is(eng, "pg", 118))
    run(main())


async def _op(name: str, value: int):
    from localhost.durable.entities import operation

    return operation(name, json.dumps(value), signal=True)


def test_the_entity_sample_runs_on_the_local_host(tmp_path: Path) -> None:
    async def main():
        host = Host(SAMPLE_DIR, port=0, state_dir=tmp_path / "state", builtins=False,
                    extensions=[DurableExtension()])
        await host.start()
        try:
            async with aiohttp.ClientSession() as http:
                url = f"{host.base_url}/api/entity/Counter/web"
                async with http.post(url, json=4) as resp:
                    assert resp.status == 202, await resp.text()
                async def entity() -> dict[str, Any] | None:
                    async with http.get(url) as resp:
                        body = await resp.json()
                    return dict(body) if body["exists"] else None
                assert await async_wait_until(entity, "the entity to exist", 5) == {
                    "exists": True, "state": 4}
                async with http.post(f"{host.base_url}/api/orchestrators/counter_orchestrator",
                                     json="web") as resp:
                    assert resp.status == 202
                    links = await resp.json()
                async def finished() -> dict[str, Any] | None:
                    async with http.get(links["statusQueryGetUri"]) as resp:
                        return dict(await resp.json()) if resp.status == 200 else None
                status = await async_wait_until(finished, "the orchestration to finish", 5)
                assert status["runtimeStatus"] == "Completed"
                assert status["output"] == 9
        finally:
            await host.stop()
    run(main())
