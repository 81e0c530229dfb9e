"""The app's Service Bus port: send task messages to the session-enabled queue.

``make_bus(settings)`` picks the adapter: the local host's emulator (connection string with
``UseDevelopmentEmulator=true`` and an ``http`` endpoint), Azure with a connection string,
or Azure with managed identity (``ServiceBusConnection__fullyQualifiedNamespace``).
"""

from shared.bus.factory import make_bus
from shared.bus.memory import InMemoryBus
from shared.bus.port import BusError, BusMessage, TaskBus

__all__ = ["BusError", "BusMessage", "InMemoryBus", "TaskBus", "make_bus"]
