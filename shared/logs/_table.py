"""Task logs in Azure Table storage (azure-data-tables), the Azure-mode store.

Layout: PartitionKey = task id, RowKey = sequence number zero-padded to 10 digits (so
string order is numeric order), properties ``At``, ``Level``, ``Text``. One extra entity
per task, RowKey ``~head`` (sorts after every number), holds the last number handed out.

Concurrency: an append reads the head (and its ETag) and commits one entity-group
transaction that creates the new lines *and* updates the head only if its ETag is
unchanged (or creates it if it did not exist). Transactions within a partition are
atomic, so a concurrent appender's commit makes ours fail whole; we re-read and retry
with jittered back-off. Batches hold at most 100 operations and 4 MiB, so a large
append is committed as several consecutive transactions (each claims its own range).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, NoReturn

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from shared.azure_credential import (
    STORAGE_TABLE_DATA_CONTRIBUTOR,
    AzureRole,
)
from shared.clock import Clock, SystemClock
from shared.errors import Unavailable
from shared.logs._port import LogLine, LogStore

AZURE_ROLES = (AzureRole("task logs: read and write table entities",
                         "Microsoft.Storage/storageAccounts",
                         (STORAGE_TABLE_DATA_CONTRIBUTOR,)),)

HEAD = "~head"
_WIDTH = 10
_MAX_OPS = 99  # plus the head update makes 100, the service limit
_MAX_BATCH_CHARS = 1_000_000  # ~2 MB as UTF-16 on the wire, well under the 4 MiB limit
_MAX_ATTEMPTS = 50


class _LostRace(Exception):
    """A concurrent appender committed first (409/412): read the head again and retry."""


def _too_many_appenders(state: RetryCallState) -> NoReturn:
    raise Unavailable("too many concurrent appenders to one task log; retry")


def row_key(seq: int) -> str:
    return f"{seq:0{_WIDTH}d}"


class TableLogStore(LogStore):
    def __init__(self, table: TableClient, clock: Clock | None = None,
                 *, create_table: bool = True) -> None:
        self._table = table
        self._clock = clock or SystemClock()
        self._ensured = not create_table

    @classmethod
    def from_connection_string(cls, connection: str, table_name: str,
                               clock: Clock | None = None) -> TableLogStore:
        return cls(TableClient.from_connection_string(connection, table_name), clock)

    @classmethod
    def from_endpoint(cls, endpoint: str, table_name: str, credential: TokenCredential,
                      clock: Clock | None = None) -> TableLogStore:
        return cls(TableClient(endpoint, table_name, credential=credential), clock)

    def _ensure_table(self) -> None:
        if self._ensured:
            return
        with contextlib.suppress(ResourceExistsError):
            self._table.create_table()
        self._ensured = True

    def _append(self, task_id: str, pairs: list[tuple[str, str]]) -> list[LogLine]:
        self._ensure_table()
        at = self._clock.now()
        stored: list[LogLine] = []
        for chunk in _chunks(pairs):
            stored.extend(self._append_chunk(task_id, chunk, at))
        return stored

    def _append_chunk(self, task_id: str, chunk: list[tuple[str, str]],
                      at: datetime) -> list[LogLine]:
        for attempt in Retrying(stop=stop_after_attempt(_MAX_ATTEMPTS),
                                wait=wait_random_exponential(multiplier=0.002, max=0.05),
                                retry=retry_if_exception_type(_LostRace),
                                retry_error_callback=_too_many_appenders):
            with attempt:
                return self._try_append(task_id, chunk, at)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _try_append(self, task_id: str, chunk: list[tuple[str, str]],
                    at: datetime) -> list[LogLine]:
        last, etag = self._head(task_id)
        first = last + 1
        ops: list[Any] = [
            ("create", {"PartitionKey": task_id, "RowKey": row_key(first + i),
                        "At": at, "Level": lvl, "Text": text})
            for i, (lvl, text) in enumerate(chunk)]
        head = {"PartitionKey": task_id, "RowKey": HEAD, "Last": last + len(chunk)}
        if etag is None:
            ops.append(("create", head))
        else:
            ops.append(("update", head, {"mode": UpdateMode.REPLACE, "etag": etag,
                                         "match_condition": MatchConditions.IfNotModified}))
        try:
            self._table.submit_transaction(ops)
        except TableTransactionError as exc:
            # 409 (head created meanwhile / row exists) or 412 (head moved): lost a race
            if exc.status_code not in (409, 412):
                raise Unavailable(f"table storage refused the log append: {exc.message}")\
                    from exc
            raise _LostRace from exc
        except HttpResponseError as exc:
            raise Unavailable(f"table storage unavailable: {exc.message}") from exc
        return [LogLine(first + i, at, lvl, text) for i, (lvl, text) in enumerate(chunk)]

    def _head(self, task_id: str) -> tuple[int, str | None]:
        try:
            entity = self._table.get_entity(task_id, HEAD)
        except ResourceNotFoundError:
            return 0, None
        return int(entity["Last"]), entity.metadata["etag"]

    def _read(self, task_id: str, after: int, limit: int) -> list[LogLine]:
        self._ensure_table()
        query = "PartitionKey eq @pk and RowKey gt @after and RowKey lt @head"
        pages = self._table.query_entities(
            query, parameters={"pk": task_id, "after": row_key(after), "head": HEAD},
            results_per_page=limit, select=["RowKey", "At", "Level", "Text"])
        out: list[LogLine] = []
        try:
            for entity in pages:
                out.append(LogLine(int(entity["RowKey"]), _utc(entity["At"]),
                                   entity["Level"], entity["Text"]))
                if len(out) >= limit:
                    break
        except HttpResponseError as exc:
            raise Unavailable(f"table storage unavailable: {exc.message}") from exc
        return out

    def close(self) -> None:
        self._table.close()


def _chunks(pairs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    chunks: list[list[tuple[str, str]]] = [[]]
    size = 0
    for pair in pairs:
        if chunks[-1] and (len(chunks[-1]) >= _MAX_OPS or size + len(pair[1]) > _MAX_BATCH_CHARS):
            chunks.append([])
            size = 0
        chunks[-1].append(pair)
        size += len(pair[1])
    return chunks


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
