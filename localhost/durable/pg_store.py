"""The Postgres instance store: a restarted host resumes every unfinished orchestration.

Three tables of its own (created idempotently under an advisory lock, so the local host
needs no migration of the app's): ``durable_instances`` (status, input, output, custom
status, the engine's bookkeeping), ``durable_history`` (one row per event) and
``durable_inbox`` (messages not yet processed). An episode is one transaction: new history
rows, consumed inbox rows deleted, the instance row updated, created sub-orchestrations
and messages to other instances inserted. Unfinished instances are kept in memory as the
engine's live objects; finished ones are read from the database.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from localhost.durable.history import HistoryLog
from localhost.durable.store import (
    TERMINAL,
    Bookkeeping,
    EpisodeWrite,
    Instance,
    InstanceExists,
    Message,
    Query,
)

_DDL_LOCK = 0x0D0B_AB1E
RECENT_LIMIT = 2048
# Group-commit statements in flight at once. With synchronous commit each one waits for
# its WAL flush; one at a time, everything that arrives meanwhile goes in the next (fewer,
# larger commits: 200 x 5 orchestrations took 640 commits with 4, 170 with 1, and ran
# faster: the creates, which must each wait for their own flush, queue behind fewer).
FLUSHERS = 1
BATCH_LIMIT = 256  # episodes per statement
_TERMINAL = list(TERMINAL)
DDL = """
CREATE TABLE IF NOT EXISTS durable_instances (
    instance_id   text PRIMARY KEY,
    name          text NOT NULL,
    execution_id  text NOT NULL,
    status        text NOT NULL,
    input         text,
    output        text,
    custom_status text,
    version       text NOT NULL DEFAULT '',
    parent        jsonb,
    book          jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS durable_instances_status ON durable_instances (status);
CREATE INDEX IF NOT EXISTS durable_instances_created ON durable_instances (created_at);
CREATE TABLE IF NOT EXISTS durable_history (
    instance_id text    NOT NULL REFERENCES durable_instances ON DELETE CASCADE,
    seq         integer NOT NULL,
    event       text    NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE IF NOT EXISTS durable_inbox (
    id           bigserial PRIMARY KEY,
    instance_id  text NOT NULL,
    kind         text NOT NULL,
    execution_id text,
    body         text NOT NULL
);
CREATE INDEX IF NOT EXISTS durable_inbox_instance ON durable_inbox (instance_id, id);
"""

# An episode's history rows, consumed inbox rows and instance state, in one statement.
_EPISODE = """
WITH history AS (
    INSERT INTO durable_history (instance_id, seq, event)
    SELECT %s, seq, event FROM unnest(%s::integer[], %s::text[]) AS t(seq, event)
), consumed AS (
    DELETE FROM durable_inbox WHERE id = ANY(%s::bigint[])
)
UPDATE durable_instances SET name = %s, execution_id = %s, status = %s, input = %s,
    output = %s, custom_status = %s, book = %s, updated_at = %s
WHERE instance_id = %s
"""

# Many episodes (of many instances) in one statement (group commit). The batch travels as
# one JSON document that the server takes apart: dumping long arrays parameter by
# parameter cost more client CPU than the statement itself. Each event is embedded as a
# JSON object (not a string holding JSON) and stored as its text: ``json``, not ``jsonb``,
# keeps that text as sent and skips building a binary document.
_EPISODES = """
WITH batch AS (SELECT %s::json AS j), state AS (
    SELECT t.* FROM batch, json_to_recordset(j->'state') AS t(
        instance_id text, name text, execution_id text, status text, input text,
        output text, custom_status text, book jsonb, updated_at timestamptz)
), history AS (
    INSERT INTO durable_history (instance_id, seq, event)
    SELECT t.* FROM batch, json_to_recordset(j->'history')
        AS t(instance_id text, seq integer, event text)
), consumed AS (
    DELETE FROM durable_inbox WHERE id IN (
        SELECT json_array_elements_text(j->'consumed')::bigint FROM batch)
)
UPDATE durable_instances d SET name = s.name, execution_id = s.execution_id,
    status = s.status, input = s.input, output = s.output, custom_status = s.custom_status,
    book = s.book, updated_at = s.updated_at
FROM state s WHERE d.instance_id = s.instance_id
"""

_COLUMNS = ("instance_id, name, execution_id, status, input, output, custom_status, version, "
            "parent, book, created_at, updated_at")

# Create (or replace a finished instance) and queue the start message, in one statement.
# ``xmax = 0`` tells a fresh insert from a replacement, whose old rows are deleted; every
# part sees the same snapshot, so the delete never sees the start message inserted here.
_CREATE = f"""
WITH up AS (
    INSERT INTO durable_instances ({_COLUMNS})
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (instance_id) DO UPDATE SET name = EXCLUDED.name,
        execution_id = EXCLUDED.execution_id, status = EXCLUDED.status,
        input = EXCLUDED.input, output = NULL, custom_status = NULL,
        version = EXCLUDED.version, parent = EXCLUDED.parent, book = EXCLUDED.book,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
    WHERE durable_instances.status = ANY(%s)
    RETURNING instance_id, (xmax = 0) AS fresh
), old_history AS (
    DELETE FROM durable_history WHERE instance_id IN (SELECT instance_id FROM up WHERE NOT fresh)
), old_inbox AS (
    DELETE FROM durable_inbox WHERE instance_id IN (SELECT instance_id FROM up WHERE NOT fresh)
), start AS (
    INSERT INTO durable_inbox (instance_id, kind, execution_id, body)
    SELECT instance_id, %s, %s, %s FROM up RETURNING id
)
SELECT (SELECT id FROM start)
"""


class PostgresStore:
    # The server is away (restart, network cut): retry once it is back, never give up
    # on the instance for it (see ``Engine._recover``).
    transient_errors: tuple[type[BaseException], ...] = (psycopg.OperationalError,
                                                         PoolTimeout)

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._url = url
        self._max = max_connections
        self._pool: AsyncConnectionPool | None = None
        self._live: dict[str, Instance] = {}
        # Instances that just finished, as committed: the episode's driver, waiters and
        # status reads look at them right away, and reloading the history for each read
        # was a third of the time of short orchestrations. Bounded, oldest dropped first.
        self._recent: OrderedDict[str, Instance] = OrderedDict()
        self._queue: list[Any] = []  # episodes waiting for the next group commit
        self._flushers = 0
        self._flush_tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[str] = set()  # instances with a statement in flight
        self._pending: dict[str, asyncio.Future[None]] = {}  # last queued episode each
        self._poisoned: dict[str, Exception] = {}  # failed writes, until evicted
        # instances whose creating statement is in flight: a read of one meanwhile (an
        # event raised at its start) must get the creator's object, not a second copy
        # loaded from the committed row (two copies were both driven: the first episode
        # ran twice and its second commit failed on the history's primary key)
        self._creating: dict[str, asyncio.Future[None]] = {}
        self.batches = 0
        self.batched_episodes = 0

    @property
    def pool(self) -> AsyncConnectionPool:
        assert self._pool is not None, "store not opened"
        return self._pool

    async def open(self) -> None:
        # synchronous_commit=on (whatever the server's default): a commit returns once its
        # WAL is on disk, so an acknowledged step survives a crash of the server itself.
        # The engine does not wait for an ordinary episode's commit before going on
        # (``submit``), so the flush is paid once per group commit, not per activity.
        self._pool = AsyncConnectionPool(
            self._url, min_size=1, max_size=self._max, open=False,
            kwargs={"autocommit": True, "options": "-c synchronous_commit=on"})
        await self._pool.open()
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            await conn.execute(DDL)

    async def close(self) -> None:
        if self._flush_tasks:
            await asyncio.gather(*self._flush_tasks, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # ---- writes ----------------------------------------------------------------------
    async def create(self, inst: Instance, start: Message) -> None:
        """One statement (one round trip, one commit): insert the instance or replace a
        finished one (then its old history and inbox go), and queue its start message."""
        iid = inst.instance_id
        while (other := self._creating.get(iid)) is not None:  # one creation of an id at once
            await asyncio.wait([other])
        creating = asyncio.get_running_loop().create_future()
        self._creating[iid] = creating
        try:
            await self._create(inst, start)
        finally:
            del self._creating[iid]
            creating.set_result(None)

    async def _create(self, inst: Instance, start: Message) -> None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CREATE, (
                *self._row(inst), _TERMINAL, start.kind, start.execution_id,
                json.dumps(start.body)))).fetchone()
        if row is None or row[0] is None:
            async with self.pool.connection() as conn:
                found = await (await conn.execute(
                    "SELECT status FROM durable_instances WHERE instance_id = %s",
                    (inst.instance_id,))).fetchone()
            raise InstanceExists(f"An Orchestration instance with the status "
                                 f"{found[0] if found else 'Running'} already exists.")
        start.seq = row[0]
        inst.inbox.append(start)
        self._recent.pop(inst.instance_id, None)
        self._live[inst.instance_id] = inst

    @staticmethod
    def _row(inst: Instance) -> tuple[Any, ...]:
        return (inst.instance_id, inst.name, inst.execution_id, inst.status, inst.input,
                inst.output, inst.custom_status, inst.version,
                Jsonb(inst.parent) if inst.parent else None, Jsonb(inst.book.to_json()),
                inst.created_at, inst.updated_at)

    @staticmethod
    async def _upsert(conn: AsyncConnection, inst: Instance) -> bool:
        """Insert, or replace a finished instance; False if a live one holds the id."""
        cur = await conn.execute(
            f"INSERT INTO durable_instances ({_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (instance_id) DO UPDATE SET name = EXCLUDED.name, "
            "execution_id = EXCLUDED.execution_id, status = EXCLUDED.status, "
            "input = EXCLUDED.input, output = NULL, custom_status = NULL, "
            "version = EXCLUDED.version, parent = EXCLUDED.parent, book = EXCLUDED.book, "
            "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at "
            "WHERE durable_instances.status = ANY(%s) RETURNING instance_id",
            (*PostgresStore._row(inst), _TERMINAL))
        return await cur.fetchone() is not None

    @staticmethod
    async def _insert_message(conn: AsyncConnection, iid: str, msg: Message) -> bool:
        cur = await conn.execute(
            "INSERT INTO durable_inbox (instance_id, kind, execution_id, body) "
            "SELECT %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM durable_instances "
            "WHERE instance_id = %s AND NOT status = ANY(%s)) RETURNING id",
            (iid, msg.kind, msg.execution_id, json.dumps(msg.body), iid, _TERMINAL))
        row = await cur.fetchone()
        if row is None:
            return False
        msg.seq = row[0]
        return True

    async def enqueue(self, instance_id: str, msg: Message) -> None:
        async with self.pool.connection() as conn:
            stored = await self._insert_message(conn, instance_id, msg)
        await self._created(instance_id)  # stored for one being created: its object gets it
        live = self._live.get(instance_id)
        if stored and live is not None:
            live.inbox.append(msg)

    def submit(self, step: EpisodeWrite) -> asyncio.Future[None] | None:
        """Queue a common episode (no children, no messages to send, no new execution) for
        the next group commit and return the future of its commit; None for any other
        episode (``write`` stores those itself).

        Episodes of one instance are committed in the order they were submitted, never two
        of its statements at once, and one that fails fails every later one of the same
        instance (they were computed on top of it): the instance is evicted and further
        writes of it refused until the engine ``evict``s it and reloads its committed state.
        The episode's rows are encoded here, so later episodes of the live instance may
        change it before the commit.
        """
        if step.reset_history or step.created or step.added_messages:
            return None
        inst = step.instance
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        iid = inst.instance_id
        refused = self._poisoned.get(iid)
        if refused is not None:
            fut.set_exception(refused)
            return fut
        base = len(inst.history) - len(step.new_history)
        key = json.dumps(iid)
        history = [f'{{"instance_id":{key},"seq":{base + i},"event":{json.dumps(ev)}}}'
                   for i, ev in enumerate(step.new_history)]
        state = json.dumps({
            "instance_id": iid, "name": inst.name, "execution_id": inst.execution_id,
            "status": inst.status, "input": inst.input, "output": inst.output,
            "custom_status": inst.custom_status, "book": inst.book.to_json(),
            "updated_at": inst.updated_at.isoformat()})
        consumed = [m.seq for m in step.consumed if m.seq]
        self._queue.append((iid, history, consumed, state, fut))
        self._pending[iid] = fut
        fut.add_done_callback(lambda f: self._settled(iid, f))
        if self._flushers < FLUSHERS:
            self._flushers += 1
            task = asyncio.ensure_future(self._flush())
            self._flush_tasks.add(task)
            task.add_done_callback(self._flush_tasks.discard)
        if inst.status in TERMINAL:
            self._finished(inst)
        return fut

    def _settled(self, iid: str, fut: asyncio.Future[None]) -> None:
        if self._pending.get(iid) is fut:
            del self._pending[iid]

    async def _settle(self, iid: str) -> None:
        """Wait until the instance's queued episodes are committed (or failed)."""
        while (pending := self._pending.get(iid)) is not None:
            await asyncio.wait([pending])
        refused = self._poisoned.get(iid)
        if refused is not None:
            raise refused

    def _finished(self, inst: Instance) -> None:
        self._live.pop(inst.instance_id, None)
        self._recent[inst.instance_id] = inst
        while len(self._recent) > RECENT_LIMIT:
            self._recent.popitem(last=False)

    async def write(self, step: EpisodeWrite) -> None:
        queued = self.submit(step)
        if queued is not None:
            # The common episode: committed together with whatever other instances'
            # episodes are ready at the same moment, in one statement (group commit).
            await queued
            return
        inst = step.instance
        appended: list[tuple[str, Message]] = []
        base = len(inst.history) - len(step.new_history)
        rows = (list(range(base, base + len(step.new_history))),
                [json.dumps(ev) for ev in step.new_history])
        consumed = [m.seq for m in step.consumed if m.seq]
        state = (inst.name, inst.execution_id, inst.status, inst.input, inst.output,
                 inst.custom_status, Jsonb(inst.book.to_json()), inst.updated_at,
                 inst.instance_id)
        await self._settle(inst.instance_id)  # after its queued episodes, in order
        async with self.pool.connection() as conn, conn.transaction():
            if step.reset_history:
                await conn.execute(
                    "DELETE FROM durable_history WHERE instance_id = %s",
                    (inst.instance_id,))
            await conn.execute(_EPISODE, (inst.instance_id, *rows, consumed, *state))
            for child in step.created:
                if await self._upsert(conn, child):
                    await conn.execute(
                        "DELETE FROM durable_history WHERE instance_id = %s",
                        (child.instance_id,))
                    for msg in child.inbox:
                        await self._insert_message(conn, child.instance_id, msg)
            for target, msg in step.added_messages:
                if await self._insert_message(conn, target, msg):
                    appended.append((target, msg))
        for child in step.created:
            self._live[child.instance_id] = child
        for target, msg in appended:
            live = self._live.get(target)
            if live is not None:
                live.inbox.append(msg)
        if inst.status in TERMINAL:
            self._finished(inst)

    async def _flush(self) -> None:
        """Up to ``FLUSHERS`` statements run at once; episodes that arrive while they run
        wait and go together in the next one (``_EPISODES``: all their history rows,
        consumed inbox rows and instance rows in one statement, so one round trip and one
        commit for many episodes). A lone episode goes at once: batching adds no wait.
        Each episode stays atomic; a failed statement fails every episode in it."""
        try:
            while True:
                batch = self._take()
                if not batch:
                    return
                iids = {e[0] for e in batch}
                self._inflight |= iids
                try:
                    await self._commit_batch(batch)
                except BaseException as exc:
                    self._inflight -= iids
                    self._fail(iids, batch, exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                else:
                    self._inflight -= iids
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
        finally:
            self._flushers -= 1

    def _take(self) -> list[Any]:
        """The next batch: queued episodes of instances with no statement in flight, in
        queue order, at most ``BATCH_LIMIT``; the rest stay queued, in order."""
        batch: list[Any] = []
        rest: list[Any] = []
        blocked = set(self._inflight)
        for entry in self._queue:
            iid = entry[0]
            if iid in blocked or len(batch) >= BATCH_LIMIT:
                rest.append(entry)
                blocked.add(iid)  # a later episode of it stays behind this one
            else:
                batch.append(entry)
        self._queue = rest
        return batch

    def _fail(self, iids: set[str], batch: list[Any], exc: BaseException) -> None:
        """A statement failed: its episodes fail, and so does every queued later episode
        of the same instances; those instances are refused until evicted and reloaded."""
        failed = list(batch) + [e for e in self._queue if e[0] in iids]
        self._queue = [e for e in self._queue if e[0] not in iids]
        error = exc if isinstance(exc, Exception) else RuntimeError("write cancelled")
        for iid in iids:
            self._poisoned[iid] = error
            self._live.pop(iid, None)
            self._recent.pop(iid, None)
        for *_, fut in failed:
            if not fut.done():
                fut.set_exception(error)

    async def _commit_batch(self, batch: list[Any]) -> None:
        states: dict[str, str] = {}
        history: list[str] = []
        consumed: list[int] = []
        for iid, rows, used, state, _ in batch:
            history.extend(rows)
            consumed.extend(used)
            states.pop(iid, None)
            states[iid] = state  # an instance's later episode carries its latest state
        doc = ('{"state":[' + ",".join(states.values()) + '],"history":['
               + ",".join(history) + '],"consumed":' + json.dumps(consumed) + "}")
        async with self.pool.connection() as conn:
            await conn.execute(_EPISODES, (doc,))
        self.batches += 1
        self.batched_episodes += len(batch)

    async def delete(self, instance_ids: list[str]) -> int:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM durable_inbox WHERE instance_id = ANY(%s)",
                               (instance_ids,))
            cur = await conn.execute(
                "DELETE FROM durable_instances WHERE instance_id = ANY(%s)", (instance_ids,))
        for iid in instance_ids:
            self._live.pop(iid, None)
            self._recent.pop(iid, None)
        return cur.rowcount

    def evict(self, instance_id: str) -> None:
        """Forget the live copy (after a failed write) so the next read reloads it."""
        self._live.pop(instance_id, None)
        self._recent.pop(instance_id, None)
        self._poisoned.pop(instance_id, None)

    def cached(self, instance_id: str) -> Instance | None:
        """The instance if it is held in memory (unfinished, or just finished); no I/O."""
        return self._live.get(instance_id) or self._recent.get(instance_id)

    # ---- reads -----------------------------------------------------------------------
    async def _created(self, instance_id: str) -> None:
        """Wait for a creation of ``instance_id`` in flight, if any."""
        while (creating := self._creating.get(instance_id)) is not None:
            await asyncio.wait([creating])

    async def get(self, instance_id: str) -> Instance | None:
        await self._created(instance_id)
        live = self._live.get(instance_id) or self._recent.get(instance_id)
        if live is not None:
            return live
        if instance_id in self._pending:  # evicted with episodes still queued: let them land
            await asyncio.wait([self._pending[instance_id]])
            return await self.get(instance_id)
        found = await self._load(f"SELECT {_COLUMNS} FROM durable_instances "
                                 "WHERE instance_id = %s", (instance_id,), with_history=True)
        if instance_id in self._creating or instance_id in self._live:
            # created (or reloaded by another reader) while this read was under way: the
            # object already live is the one that runs
            return await self.get(instance_id)
        if not found:
            return None
        inst = found[0]
        if inst.status not in TERMINAL:
            # reloaded after an eviction: the live object again, so messages stored for it
            # meanwhile reach the driver that runs it (``enqueue`` appends to it)
            inst = self._live.setdefault(instance_id, inst)
        return inst

    async def query(self, q: Query) -> list[Instance]:
        where, args = ["TRUE"], list[object]()
        if q.created_from is not None:
            where.append("created_at >= %s")
            args.append(q.created_from)
        if q.created_to is not None:
            where.append("created_at <= %s")
            args.append(q.created_to)
        if q.statuses:
            where.append("status = ANY(%s)")
            args.append(list(q.statuses))
        if q.id_prefix:
            where.append("starts_with(instance_id, %s)")
            args.append(q.id_prefix)
        rows = await self._load(f"SELECT {_COLUMNS} FROM durable_instances WHERE "
                                + " AND ".join(where), tuple(args), with_history=False)
        return [self._live.get(i.instance_id) or self._recent.get(i.instance_id) or i
                for i in rows]

    async def unfinished(self) -> list[Instance]:
        found = await self._load(f"SELECT {_COLUMNS} FROM durable_instances "
                                 "WHERE NOT status = ANY(%s)", (_TERMINAL,), with_history=True)
        for inst in found:
            self._live[inst.instance_id] = inst
        return found

    async def _load(self, sql: str, args: tuple[Any, ...], *, with_history: bool
                    ) -> list[Instance]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(sql, args)).fetchall()
            out = [_instance(row) for row in rows]
            if with_history and out:
                ids = [i.instance_id for i in out]
                by_id = {i.instance_id: i for i in out}
                events: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
                for iid, text in await (await conn.execute(
                        "SELECT instance_id, event FROM durable_history "
                        "WHERE instance_id = ANY(%s) ORDER BY instance_id, seq",
                        (ids,))).fetchall():
                    events[iid].append(json.loads(text))
                for iid, evs in events.items():
                    by_id[iid].history = HistoryLog(evs)
                for seq, iid, kind, execution_id, body in await (await conn.execute(
                        "SELECT id, instance_id, kind, execution_id, body FROM durable_inbox "
                        "WHERE instance_id = ANY(%s) ORDER BY id", (ids,))).fetchall():
                    by_id[iid].inbox.append(Message(kind, json.loads(body), execution_id, seq))
        return out


def _instance(row: tuple[Any, ...]) -> Instance:
    (iid, name, execution_id, status, input_, output, custom, version, parent, book,
     created, updated) = row
    return Instance(instance_id=iid, name=name, execution_id=execution_id, status=status,
                    input=input_, output=output, custom_status=custom, version=version,
                    parent=parent, book=Bookkeeping.from_json(book), created_at=created,
                    updated_at=updated)
