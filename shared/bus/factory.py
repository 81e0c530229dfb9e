"""``make_bus(settings)``: the adapter the settings call for, one per configuration.

Instances are cached per (queue, connection) so callers may call ``make_bus`` on every
request: the Azure adapter then keeps one AMQP connection instead of opening one per call.
"""

from __future__ import annotations

import threading

from shared.bus.azure import AzureServiceBus
from shared.bus.local import LocalServiceBus, is_local_emulator
from shared.bus.port import TaskBus
from shared.settings import Settings, SettingsError

_cache: dict[tuple[str, str | None, str | None], TaskBus] = {}
_lock = threading.Lock()


def make_bus(settings: Settings) -> TaskBus:
    key = (settings.task_queue, settings.service_bus_connection,
           settings.service_bus_namespace)
    with _lock:
        bus = _cache.get(key)
        if bus is None:
            bus = _cache[key] = _build(settings)
        return bus


def _build(settings: Settings) -> TaskBus:
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
