"""Waking an orchestration with an external event, when its state already lives in Postgres.

Every event we raise is a hint: the decision, cancel or grant it announces is committed
first, and the orchestration re-reads it (and polls on a timer as a safety net). So an
instance that has not started yet (404: its Service Bus message is still on the way) or
has already finished (410) needs no wake-up, and must not turn a recorded decision into a
500 for the caller who made it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import azure.durable_functions as df

log = logging.getLogger("cloudops.wake")
_NOT_THERE = ("No instance with ID", "is gone")


async def wake(client: df.DurableOrchestrationClient, instance_id: str, event: str,
               data: Any = None) -> bool:
    """Raise ``event`` on ``instance_id``; False when there is no running instance to wake."""
    try:
        await client.raise_event(instance_id, event, data or {})
    except Exception as exc:
        if not any(marker in str(exc) for marker in _NOT_THERE):
            raise
        log.info("no running orchestration %s to wake with %s: %s", instance_id, event, exc)
        return False
    return True
