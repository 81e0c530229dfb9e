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


def test_errors_are_one_line_naming_the_variable_and_the_value() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"CLOUDOPS_DB_POOL_MAX": "many"})
    assert str(info.value) == "setting CLOUDOPS_DB_POOL_MAX: must be an integer, got 'many'"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"CLOUDOPS_SMTP_STARTTLS": "maybe"})
    assert str(info.value) == "setting CLOUDOPS_SMTP_STARTTLS: must be true or false, got 'maybe'"


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({"CLOUDOPS_TASK_QUEUE": "   ", "DATABASE_URL": ""})
    assert settings.task_queue == "tasks" and settings.database_url is None


def test_agent_policy_is_read_with_the_other_settings() -> None:
    policy = Settings.from_env({"CLOUDOPS_AGENT_HEARTBEAT_SECONDS": "0.5",
                                "CLOUDOPS_AGENT_LEASE_SECONDS": "2"}).agent_policy()
    assert policy.heartbeat_seconds == 0.5 and policy.lease.total_seconds() == 2
    assert policy.offline_after.total_seconds() == 1.5  # three missed heartbeats


@pytest.mark.parametrize(("env", "name", "problem"), [
    ({"CLOUDOPS_AGENT_HEARTBEAT_SECONDS": "soon"}, "CLOUDOPS_AGENT_HEARTBEAT_SECONDS",
     "must be a number, got 'soon'"),
    ({"CLOUDOPS_AGENT_KEY_DAYS": "-1"}, "CLOUDOPS_AGENT_KEY_DAYS", "must be positive, got -1"),
    ({"CLOUDOPS_AGENT_MAX_WAIT_SECONDS": "231"}, "CLOUDOPS_AGENT_MAX_WAIT_SECONDS",
     "must stay below Azure's 230 s HTTP limit"),
    ({"CLOUDOPS_AGENT_HEARTBEAT_SECONDS": "40"}, "CLOUDOPS_AGENT_LEASE_SECONDS",
     "must be at least two heartbeat intervals"),
])
def test_invalid_agent_policy_is_refused_at_start(env: dict[str, str], name: str,
                                                  problem: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert (info.value.name, info.value.problem) == (name, problem)
