"""The app's Service Bus port: message shape for Azure, adapter choice from settings.

Azure Service Bus speaks AMQP, which has no local stand-in here; so the Azure adapter is
checked by the SDK message objects it builds (the exact objects ``send_messages`` gets),
and the local adapter end-to-end in ``test_servicebus.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.bus import BusMessage, InMemoryBus, make_bus
from shared.bus.azure import AzureServiceBus, to_servicebus_message
from shared.bus.local import LocalServiceBus, is_local_emulator
from shared.settings import Settings, SettingsError


def test_azure_message_carries_session_message_id_properties_and_schedule() -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    sdk = to_servicebus_message(BusMessage(
        session_id="env-1", message_id="task-1", body={"taskId": "task-1"},
        application_properties={"operation": "deploy"}, scheduled_enqueue_time=when,
        subject="deploy", correlation_id="corr"))
    assert sdk.session_id == "env-1"
    assert sdk.message_id == "task-1"
    assert sdk.content_type == "application/json"
    assert json.loads(b"".join(sdk.body)) == {"taskId": "task-1"}
    assert sdk.application_properties == {"operation": "deploy"}
    assert sdk.scheduled_enqueue_time_utc == when
    assert (sdk.subject, sdk.correlation_id) == ("deploy", "corr")


def test_message_without_session_or_id_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="session_id"):
        BusMessage(session_id="", message_id="x", body={})
    with pytest.raises(ValueError, match="message_id"):
        BusMessage(session_id="s", message_id="", body={})


def test_make_bus_picks_the_adapter_from_settings() -> None:
    local = ("Endpoint=http://127.0.0.1:7071/servicebus/;SharedAccessKeyName=localhost;"
             "SharedAccessKey=k;UseDevelopmentEmulator=true")
    assert is_local_emulator(local)
    bus = make_bus(Settings.from_env({"ServiceBusConnection": local}))
    assert isinstance(bus, LocalServiceBus)
    assert bus.url == "http://127.0.0.1:7071/servicebus/tasks/messages"
    azure = make_bus(Settings.from_env({
        "ServiceBusConnection": "Endpoint=sb://ns.servicebus.windows.net/;"
                                "SharedAccessKeyName=k;SharedAccessKey=v"}))
    assert isinstance(azure, AzureServiceBus)
    identity = make_bus(Settings.from_env({
        "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net"}))
    assert isinstance(identity, AzureServiceBus) and identity._namespace
    with pytest.raises(SettingsError):
        make_bus(Settings.from_env({}))


def test_in_memory_fake_dedupes_like_the_broker() -> None:
    bus = InMemoryBus()
    message = BusMessage(session_id="s", message_id="m", body={})
    bus.send(message)
    bus.send(message)
    assert bus.sent == [message]


def test_make_bus_returns_one_adapter_per_configuration() -> None:
    local = ("Endpoint=http://127.0.0.1:7071/servicebus/;SharedAccessKeyName=localhost;"
             "SharedAccessKey=k;UseDevelopmentEmulator=true")
    first = make_bus(Settings.from_env({"ServiceBusConnection": local}))
    assert make_bus(Settings.from_env({"ServiceBusConnection": local})) is first
    other = make_bus(Settings.from_env({"ServiceBusConnection": local,
                                        "CLOUDOPS_TASK_QUEUE": "other"}))
    assert other is not first
