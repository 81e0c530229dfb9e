"""Which log store the settings select, and secret redaction before lines are stored."""

from __future__ import annotations

import pytest

from shared.db import Database
from shared.logs import MemoryLogStore, make_log_store, redact, redact_lines
from shared.logs._postgres import PostgresLogStore
from shared.logs._table import TableLogStore
from shared.settings import Settings, SettingsError
from tests.azure.conftest import Azurite


def test_local_mode_keeps_logs_in_postgres_so_they_survive_a_restart(db: Database) -> None:
    assert isinstance(make_log_store(Settings.from_env({}), db), PostgresLogStore)


def test_explicit_memory_store_needs_no_database() -> None:
    settings = Settings.from_env({"CLOUDOPS_LOG_STORE": "memory"})
    assert isinstance(make_log_store(settings, None), MemoryLogStore)


def test_table_store_uses_the_storage_connection_string(azurite: Azurite) -> None:
    settings = Settings.from_env({"CLOUDOPS_LOG_STORE": "table",
                                  "AzureWebJobsStorage": azurite.connection_string,
                                  "CLOUDOPS_LOG_TABLE": "selectedlogs"})
    store = make_log_store(settings, None)
    assert isinstance(store, TableLogStore)
    assert [ln.seq for ln in store.append("t-1", ["hello"])] == [1]
    store.close()


def test_table_store_with_an_endpoint_uses_the_managed_identity_credential() -> None:
    settings = Settings.from_env({"CLOUDOPS_LOG_STORE": "table",
                                  "AzureWebJobsStorage__tableServiceUri":
                                      "https://acct.table.core.windows.net",
                                  "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001"})
    store = make_log_store(settings, None)
    assert isinstance(store, TableLogStore)
    credential = store._table.credential  # type: ignore[attr-defined]
    assert type(credential).__name__ == "DefaultAzureCredential"


@pytest.mark.parametrize(("env", "name"), [
    ({"CLOUDOPS_LOG_STORE": "table"}, "AzureWebJobsStorage__tableServiceUri"),
    ({"CLOUDOPS_LOG_STORE": "files"}, "CLOUDOPS_LOG_STORE"),
    ({"CLOUDOPS_LOG_STORE": "postgres"}, "CLOUDOPS_LOG_STORE"),
])
def test_unusable_log_store_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as info:
        make_log_store(Settings.from_env(env), None)
    assert info.value.name == name


def test_redact_masks_every_secret_and_longest_first() -> None:
    secrets = ["hunter2-long", "hunter2", "ab"]
    assert redact("pw=hunter2-long and hunter2 ab", secrets) == "pw=*** and *** ab"


def test_redact_lines_keeps_levels_and_untouched_text() -> None:
    lines = redact_lines(["token s3cr3t!", ("error", "no secret here")], ["s3cr3t!"])
    assert lines == ["token ***", ("error", "no secret here")]
