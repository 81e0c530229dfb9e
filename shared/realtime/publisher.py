"""Publishing off the request path: a Realtime wrapper whose sends return at once.

Task transitions publish several events; waiting for each REST round trip would put the
SignalR service's latency on every request and activity. Sends go to queues drained by
background threads ("lanes"): every send to one group (or user) goes through the same
lane, so a group's events keep their order — which is the order a client can observe, as
SignalR itself orders messages per connection only. Several lanes send at once, so under
load the events of different groups no longer wait behind each other's round trips (with
one thread, the last events of a saturated run left seconds after their tasks ended).
Membership changes and negotiate (whose callers must know the outcome) pass straight
through.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from typing import Any

from shared.realtime.port import ConnectionInfo, Realtime

log = logging.getLogger("cloudops.realtime")
_STOP = object()
LANES = 4


class QueuedRealtime:
    def __init__(self, inner: Realtime, max_pending: int = 10_000, lanes: int = LANES) -> None:
        self.inner = inner
        self.hub = inner.hub
        self._queues: list[queue.Queue[Any]] = [queue.Queue(max(1, max_pending // lanes))
                                                for _ in range(lanes)]
        self._threads = [threading.Thread(target=self._drain, args=(q,),
                                          name=f"realtime-publisher-{i}", daemon=True)
                         for i, q in enumerate(self._queues)]
        for thread in self._threads:
            thread.start()

    def _lane(self, key: str) -> queue.Queue[Any]:
        return self._queues[zlib.crc32(key.encode()) % len(self._queues)]

    def _put(self, key: str, item: tuple[str, tuple[Any, ...]]) -> bool:
        try:
            self._lane(key).put_nowait(item)
            return True
        except queue.Full:  # clients re-read state on reconnect; never block the caller
            log.warning("realtime publish queue full; dropping an event")
            return False

    def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        return self._put(f"group:{group}", ("send_to_group", (group, target, args)))

    def send_to_user(self, user_id: str, target: str, args: list[Any]) -> bool:
        return self._put(f"user:{user_id}", ("send_to_user", (user_id, target, args)))

    def send_to_all(self, target: str, args: list[Any]) -> bool:
        return self._put("all", ("send_to_all", (target, args)))

    def add_to_group(self, group: str, connection_id: str) -> None:
        self.inner.add_to_group(group, connection_id)

    def remove_from_group(self, group: str, connection_id: str) -> None:
        self.inner.remove_from_group(group, connection_id)

    def negotiate(self, user_id: str | None, ttl: int = 3600) -> ConnectionInfo:
        return self.inner.negotiate(user_id, ttl)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far was sent, on every lane (tests, shutdown)."""
        marks = [threading.Event() for _ in self._queues]
        for q, done in zip(self._queues, marks, strict=True):
            try:
                q.put(("_mark", (done,)), timeout=timeout)
            except queue.Full:
                continue
        for done in marks:
            done.wait(timeout)

    def _drain(self, lane: queue.Queue[Any]) -> None:
        while True:
            item = lane.get()
            if item is _STOP:
                return
            method, args = item
            if method == "_mark":
                args[0].set()
                continue
            try:
                getattr(self.inner, method)(*args)
            except Exception:  # best effort, as the port promises; keep draining
                log.exception("realtime %s failed", method)

    def close(self) -> None:
        self.flush()
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=5)
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
