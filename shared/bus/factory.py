"""``make_bus(settings)``: the adapter the settings call for."""

from __future__ import annotations

from shared.bus.azure import AzureServiceBus
from shared.bus.local import LocalServiceBus, is_local_emulator
from shared.bus.port import TaskBus
from shared.settings import Settings, SettingsError


def make_bus(settings: Settings) -> TaskBus:
    connection = settings.service_bus_connection
    if is_local_emulator(connection):
        return LocalServiceBus(settings.task_queue, str(connection))
    if connection:
        return AzureServiceBus(settings.task_queue, connection_string=connection)
    if settings.service_bus_namespace:
        return AzureServiceBus(settings.task_queue, namespace=settings.service_bus_namespace)
    raise SettingsError("ServiceBusConnection",
                        "is not set (the local host sets it; in Azure set "
                        "ServiceBusConnection__fullyQualifiedNamespace)")
