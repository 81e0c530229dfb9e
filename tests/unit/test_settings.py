from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError


def test_defaults_describe_an_offline_local_host() -> None:
    settings = Settings.from_env({})
    assert settings.mode == "local"
    assert settings.database_url is None
    assert settings.home == Path(".cloudops")
    assert settings.task_queue == "tasks"


def test_values_are_read_by_their_azure_app_setting_names() -> None:
    settings = Settings.from_env({
        "DATABASE_URL": "postgresql://u@h/db",
        "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
        "CLOUDOPS_DB_POOL_MAX": "4",
    })
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.service_bus_namespace == "ns.servicebus.windows.net"
    assert settings.db_pool_max == 4


@pytest.mark.parametrize(("env", "name"), [
    ({"CLOUDOPS_MODE": "cloud"}, "CLOUDOPS_MODE"),
    ({"CLOUDOPS_DB_POOL_MAX": "many"}, "CLOUDOPS_DB_POOL_MAX"),
    ({"CLOUDOPS_DB_POOL_MAX": "0"}, "CLOUDOPS_DB_POOL_MAX"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"CLOUDOPS_MODE": "azure"}, "DATABASE_URL"),
])
def test_invalid_or_missing_setting_is_named_in_the_error(env: dict[str, str],
                                                          name: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.name == name
    assert name in str(info.value)


def test_azure_mode_accepts_connection_strings_instead_of_identity_endpoints() -> None:
    settings = Settings.from_env({
        "CLOUDOPS_MODE": "azure", "DATABASE_URL": "postgresql://u@h/db",
        "ServiceBusConnection": "Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=b",
        "AzureSignalRConnectionString": "Endpoint=https://x;AccessKey=k;Version=1.0;",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "CLOUDOPS_AGENT_KEY_SECRET": "s" * 32,
    })
    assert settings.mode == "azure"


def test_redacted_settings_never_show_secrets() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u:hunter2@h/db"})
    shown = settings.redacted()
    assert shown["DATABASE_URL"] == "<set>"
    assert "hunter2" not in repr(shown)
