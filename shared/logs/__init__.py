"""Task log lines: the ``LogStore`` port, its adapters, and ``make_log_store``.

Adapters: ``MemoryLogStore`` (fast fake), ``PostgresLogStore`` (local mode default: logs
survive a host restart), ``TableLogStore`` (Azure Table storage, the Azure default). All
pass the same contract tests (``tests/azure/test_log_store_contract.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.logs._memory import MemoryLogStore
from shared.logs._port import (
    MAX_LINE_CHARS,
    MAX_READ_LIMIT,
    LineInput,
    LogLine,
    LogStore,
    redact,
    redact_lines,
)

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.db import Database
    from shared.settings import Settings

KINDS = ("memory", "postgres", "table")


def make_log_store(settings: Settings, db: Database | None,
                   clock: Clock | None = None) -> LogStore:
    """The store the settings ask for: ``CLOUDOPS_LOG_STORE``, else table in Azure mode and
    postgres in local mode."""
    from shared.settings import SettingsError

    kind = settings.log_store or ("table" if settings.mode == "azure" else "postgres")
    if kind == "memory":
        return MemoryLogStore(clock)
    if kind == "postgres":
        if db is None:
            raise SettingsError("CLOUDOPS_LOG_STORE", "postgres log store needs the database")
        from shared.logs._postgres import PostgresLogStore

        return PostgresLogStore(db, clock)
    if kind == "table":
        from shared.logs._table import TableLogStore

        if settings.storage_connection:
            return TableLogStore.from_connection_string(
                settings.storage_connection, settings.log_table, clock)
        if settings.table_endpoint:
            from shared.azure_credential import azure_credential

            return TableLogStore.from_endpoint(settings.table_endpoint, settings.log_table,
                                               azure_credential(settings), clock)
        raise SettingsError("AzureWebJobsStorage__tableServiceUri",
                            "table log store needs it or AzureWebJobsStorage")
    raise SettingsError("CLOUDOPS_LOG_STORE", f"must be one of {', '.join(KINDS)}, got {kind!r}")


__all__ = ["MAX_LINE_CHARS", "MAX_READ_LIMIT", "LineInput", "LogLine", "LogStore",
           "MemoryLogStore", "make_log_store", "redact", "redact_lines"]
