"""Service Bus emulation for the local host: the in-memory broker (``broker``), the REST
send API and SAS tokens (``rest``), the message shapes the worker sees (``wire``), and the
extension that binds ``serviceBusTrigger`` functions to it (``extension``)."""
