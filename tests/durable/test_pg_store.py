"""The Postgres instance store: the same orchestrations, and resuming after a restart.

Uses the suite's throwaway database (``database_url``); the store creates its own tables.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from localhost.durable import history as h
from localhost.durable.pg_store import PostgresStore
from tests.durable.apps import actions_app
from tests.durable.harness import outputs, run_to_end, running_engine, until
from tests.waiting import async_wait_until


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def pg_url(database_url: str) -> Iterator[str]:
    yield database_url
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS durable_history, durable_inbox, durable_instances")


def test_orchestrations_complete_with_every_step_stored(pg_url: str) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), store=PostgresStore(pg_url)) as eng:
            chain = await run_to_end(eng, "chain", 1, instance_id="pg-chain")
            fan = await run_to_end(eng, "fan_out", 20, instance_id="pg-fan")
            parent = await run_to_end(eng, "parent_of_failure", instance_id="pg-parent")
            counter = await run_to_end(eng, "counter", {"n": 0, "until": 3})
            retry = await run_to_end(eng, "with_retry", {"key": "pg", "succeed_on": 2,
                                                         "max": 3, "interval_ms": 10})
            assert outputs(chain) == {"value": 8, "shouted": "DONE!"}
            assert outputs(fan) == 380
            assert "gave up" in outputs(parent)["child_failed"]
            assert outputs(counter) == 3
            assert outputs(retry)["result"] == "ok after 2"
        # a fresh store reads the finished instances back from the database
        fresh = PostgresStore(pg_url)
        await fresh.open()
        try:
            stored = await fresh.get("pg-chain")
            assert stored is not None and stored.status == "Completed"
            assert [e["EventType"] for e in stored.history.events] == [
                e["EventType"] for e in chain.history.events]
            child = await fresh.get("child-of-pg-parent")
            assert child is not None and child.status == "Failed"
            with psycopg.connect(pg_url) as conn:
                left = conn.execute("SELECT count(*) FROM durable_inbox").fetchone()[0]
            assert left == 0
        finally:
            await fresh.close()
    run(main())


def test_a_new_engine_resumes_a_waiting_instance_and_buffered_events(pg_url: str) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), store=PostgresStore(pg_url)) as eng:
            await eng.start_new("wait_event", "pg-wait")
            await eng.start_new("event_or_timeout", "pg-timer", json.dumps(
                {"event": "job:x", "timeout_ms": 300}))
            await until(lambda: _has_waits(eng, "pg-wait"))
            fire_at = await until_timer_created(eng, "pg-timer")
        # host gone; the timer is due while nobody runs; the event arrives on the new host
        await async_wait_until(lambda: datetime.now(UTC) > fire_at,
                               "the timer to come due while no engine runs", 10)
        async with running_engine(actions_app.make_app(), store=PostgresStore(pg_url)) as eng:
            await eng.raise_event("pg-wait", "approval", json.dumps("later"))
            waited = await eng.wait_for("pg-wait", 10)
            timed = await eng.wait_for("pg-timer", 10)
            assert outputs(waited) == "later"
            assert outputs(timed) == {"timeout": True}
            assert sum(e["EventType"] == h.EXECUTION_STARTED
                       for e in waited.history.events) == 1
    run(main())


async def until_timer_created(eng, iid: str) -> datetime:
    """When the instance's (first) durable timer fires, once the timer is in its history."""
    async def fire_at() -> datetime | None:
        inst = await eng.get(iid)
        for e in inst.history.events if inst is not None else []:
            if e["EventType"] == h.TIMER_CREATED:
                return h.parse_iso(e["FireAt"])
        return None
    return await async_wait_until(fire_at, f"{iid}'s timer to be created", 10)


async def _has_waits(eng, iid: str) -> bool:
    inst = await eng.get(iid)
    return inst is not None and inst.book.waits.get("approval") == 1


def test_starting_a_running_id_is_refused_by_the_database(pg_url: str) -> None:
    async def main():
        from localhost.durable.engine import InstanceExists

        async with running_engine(actions_app.make_app(), store=PostgresStore(pg_url)) as eng:
            await eng.start_new("wait_event", "pg-dup")
        async with running_engine(actions_app.make_app(), store=PostgresStore(pg_url)) as eng:
            with pytest.raises(InstanceExists):
                await eng.start_new("chain", "pg-dup", "1")
            await eng.terminate("pg-dup", "replace me")
            await until(lambda: _status(eng, "pg-dup", "Terminated"))
            inst = await run_to_end(eng, "chain", 1, instance_id="pg-dup")
            assert outputs(inst) == {"value": 8, "shouted": "DONE!"}
    run(main())


async def _status(eng, iid: str, status: str) -> bool:
    inst = await eng.get(iid)
    return inst is not None and inst.status == status


def test_episodes_of_many_instances_share_commits_and_all_land(pg_url: str) -> None:
    async def main():
        store = PostgresStore(pg_url)
        async with running_engine(actions_app.make_app(), store=store) as eng:
            ids = [await eng.start_new("chain", f"pg-many-{i}", "1") for i in range(40)]
            done = [await eng.wait_for(i, 30) for i in ids]
            assert all(outputs(d) == {"value": 8, "shouted": "DONE!"} for d in done)
            assert store.batched_episodes > store.batches  # some commits carried several
        fresh = PostgresStore(pg_url)
        await fresh.open()
        try:
            for inst in done:
                stored = await fresh.get(inst.instance_id)
                assert stored is not None and stored.status == "Completed"
                assert [e["EventType"] for e in stored.history.events] == [
                    e["EventType"] for e in inst.history.events]
            with psycopg.connect(pg_url) as conn:
                assert conn.execute("SELECT count(*) FROM durable_inbox").fetchone()[0] == 0
        finally:
            await fresh.close()
    run(main())


class _FailingOnce(PostgresStore):
    """Fails the second group commit, as a dropped connection would."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.commits = 0

    async def _commit_batch(self, batch):
        self.commits += 1
        if self.commits == 2:
            raise psycopg.OperationalError("connection lost (test)")
        await super()._commit_batch(batch)


def test_an_episode_whose_commit_fails_is_run_again_from_the_committed_state(
        pg_url: str) -> None:
    """Ordinary episodes are not waited for (their activities start during the commit);
    when one does not commit, the instance resumes from what did, as after a crash."""
    async def main():
        store = _FailingOnce(pg_url)
        async with running_engine(actions_app.make_app(), store=store) as eng:
            inst = await run_to_end(eng, "sequence", 12, instance_id="pg-lost-commit")
            assert outputs(inst) == 12
            assert store.commits > 2
        fresh = PostgresStore(pg_url)
        await fresh.open()
        try:
            stored = await fresh.get("pg-lost-commit")
            assert stored is not None and stored.status == "Completed"
            assert json.loads(stored.output or "null") == 12
            completed = [e for e in stored.history.events
                         if e["EventType"] == h.TASK_COMPLETED]
            assert sorted(e["TaskScheduledId"] for e in completed) == list(range(12))
        finally:
            await fresh.close()
    run(main())


def test_an_instance_s_queued_episodes_land_in_order_in_few_commits(pg_url: str) -> None:
    async def main():
        store = PostgresStore(pg_url)
        async with running_engine(actions_app.make_app(), store=store) as eng:
            inst = await run_to_end(eng, "sequence", 60, instance_id="pg-in-order")
            assert outputs(inst) == 60
        fresh = PostgresStore(pg_url)
        await fresh.open()
        try:
            stored = await fresh.get("pg-in-order")
            assert stored is not None
            assert stored.history.events == inst.history.events
            assert stored.book.to_json() == inst.book.to_json()
        finally:
            await fresh.close()
    run(main())


def test_a_read_while_an_instance_is_created_gets_the_creators_object(pg_url: str) -> None:
    """An event raised at an orchestration's start reads the instance while its creating
    statement has committed but the store has not yet made it live: the reader must get
    the creator's object, not a second copy from the row (both copies were driven, and
    the first episode's second commit failed on the history's primary key)."""
    from contextlib import asynccontextmanager

    from localhost.durable.store import Instance, Message

    async def main() -> None:
        store = PostgresStore(pg_url)
        await store.open()
        try:
            real = store.pool.connection
            committed, release = asyncio.Event(), asyncio.Event()
            hold = [True]

            @asynccontextmanager
            async def connection(*args, **kwargs):  # type: ignore[no-untyped-def]
                held, hold[0] = hold[0], False
                async with real(*args, **kwargs) as conn:
                    yield conn
                if held:  # the creating statement (autocommit) is in: pause before live
                    committed.set()
                    await release.wait()

            store.pool.connection = connection  # type: ignore[method-assign]
            now = datetime.now(UTC)
            inst = Instance(instance_id="pg-racing", name="chain", execution_id="e1",
                            status="Pending", input=None, created_at=now, updated_at=now)
            creating = asyncio.create_task(store.create(inst, Message("start", {}, "e1")))
            await committed.wait()
            # barriers: a read that loaded the row (the racy path), or the reader and the
            # event both waiting for the creation (the fix)
            loaded, waits = asyncio.Event(), [0]
            real_load, real_created = store._load, getattr(store, "_created", None)

            async def load(*args, **kwargs):  # type: ignore[no-untyped-def]
                try:
                    return await real_load(*args, **kwargs)
                finally:
                    loaded.set()

            async def created(instance_id: str) -> None:
                waits[0] += instance_id in store._creating
                if real_created is not None:
                    await real_created(instance_id)

            store._load = load  # type: ignore[method-assign]
            store._created = created  # type: ignore[method-assign]
            reading = asyncio.create_task(store.get("pg-racing"))
            event = asyncio.create_task(store.enqueue("pg-racing", Message("event", {
                "name": "go", "input": None})))
            await async_wait_until(lambda: (loaded.is_set() and event.done()) or waits[0] >= 2,
                                   "the reader and the event to meet the creation")
            release.set()
            await creating
            assert await reading is inst
            await event
            assert store.cached("pg-racing") is inst
            assert [m.kind for m in inst.inbox] == ["start", "event"]
        finally:
            await store.close()
    run(main())
