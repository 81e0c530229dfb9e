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

import json
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

_COLUMNS = ("instance_id, name, execution_id, status, input, output, custom_status, version, "
            "parent, book, created_at, updated_at")


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

    @property
    def pool(self) -> AsyncConnectionPool:
        assert self._pool is not None, "store not opened"
        return self._pool

    async def open(self) -> None:
        # synchronous_commit=off: a commit returns before its WAL is flushed to disk. A
        # killed *host* loses nothing (the server has the commit); only a crash of the
        # Postgres server itself could lose the last fraction of a second of episodes.
        self._pool = AsyncConnectionPool(
            self._url, min_size=1, max_size=self._max, open=False,
            kwargs={"autocommit": True, "options": "-c synchronous_commit=off"})
        await self._pool.open()
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            await conn.execute(DDL)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # ---- writes ----------------------------------------------------------------------
    async def create(self, inst: Instance, start: Message) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            if not await self._upsert(conn, inst):
                row = await (await conn.execute(
                    "SELECT status FROM durable_instances WHERE instance_id = %s",
                    (inst.instance_id,))).fetchone()
                raise InstanceExists(f"An Orchestration instance with the status "
                                     f"{row[0] if row else 'Running'} already exists.")
            await conn.execute("DELETE FROM durable_history WHERE instance_id = %s",
                               (inst.instance_id,))
            await conn.execute("DELETE FROM durable_inbox WHERE instance_id = %s",
                               (inst.instance_id,))
            await self._insert_message(conn, inst.instance_id, start)
        inst.inbox.append(start)
        self._live[inst.instance_id] = inst

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
            (inst.instance_id, inst.name, inst.execution_id, inst.status, inst.input,
             inst.output, inst.custom_status, inst.version,
             Jsonb(inst.parent) if inst.parent else None, Jsonb(inst.book.to_json()),
             inst.created_at, inst.updated_at, _TERMINAL))
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
        live = self._live.get(instance_id)
        if stored and live is not None:
            live.inbox.append(msg)

    async def write(self, step: EpisodeWrite) -> None:
        inst = step.instance
        appended: list[tuple[str, Message]] = []
        base = len(inst.history) - len(step.new_history)
        rows = (list(range(base, base + len(step.new_history))),
                [json.dumps(ev) for ev in step.new_history])
        consumed = [m.seq for m in step.consumed if m.seq]
        state = (inst.name, inst.execution_id, inst.status, inst.input, inst.output,
                 inst.custom_status, Jsonb(inst.book.to_json()), inst.updated_at,
                 inst.instance_id)
        async with self.pool.connection() as conn:
            if not (step.reset_history or step.created or step.added_messages):
                # The common episode: one statement, so one round trip and one commit.
                await conn.execute(_EPISODE, (inst.instance_id, *rows, consumed, *state))
            else:
                async with conn.transaction():
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
            self._live.pop(inst.instance_id, None)

    async def delete(self, instance_ids: list[str]) -> int:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM durable_inbox WHERE instance_id = ANY(%s)",
                               (instance_ids,))
            cur = await conn.execute(
                "DELETE FROM durable_instances WHERE instance_id = ANY(%s)", (instance_ids,))
        for iid in instance_ids:
            self._live.pop(iid, None)
        return cur.rowcount

    def evict(self, instance_id: str) -> None:
        """Forget the live copy (after a failed write) so the next read reloads it."""
        self._live.pop(instance_id, None)

    # ---- reads -----------------------------------------------------------------------
    async def get(self, instance_id: str) -> Instance | None:
        live = self._live.get(instance_id)
        if live is not None:
            return live
        found = await self._load(f"SELECT {_COLUMNS} FROM durable_instances "
                                 "WHERE instance_id = %s", (instance_id,), with_history=True)
        return found[0] if found else None

    async def query(self, q: Query) -> list[Instance]:
        where, args = ["TRUE"], []
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
        return [self._live.get(i.instance_id, i) for i in rows]

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
