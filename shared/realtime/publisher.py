"""Publishing off the request path: a Realtime wrapper whose sends return at once.

Task transitions publish several events; waiting for each REST round trip would put the
SignalR service's latency on every request and activity. Sends go to one queue drained
by one thread, so events keep their order; membership changes and negotiate (whose
callers must know the outcome) pass straight through.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from shared.realtime.port import ConnectionInfo, Realtime

log = logging.getLogger("cloudops.realtime")
_STOP = object()


class QueuedRealtime:
    def __init__(self, inner: Realtime, max_pending: int = 10_000) -> None:
        self.inner = inner
        self.hub = inner.hub
        self._queue: queue.Queue[Any] = queue.Queue(max_pending)
        self._thread = threading.Thread(target=self._drain, name="realtime-publisher",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, tuple[Any, ...]]) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:  # clients re-read state on reconnect; never block the caller
            log.warning("realtime publish queue full; dropping an event")
            return False

    def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        return self._put(("send_to_group", (group, target, args)))

    def send_to_user(self, user_id: str, target: str, args: list[Any]) -> bool:
        return self._put(("send_to_user", (user_id, target, args)))

    def send_to_all(self, target: str, args: list[Any]) -> bool:
        return self._put(("send_to_all", (target, args)))

    def add_to_group(self, group: str, connection_id: str) -> None:
        self.inner.add_to_group(group, connection_id)

    def remove_from_group(self, group: str, connection_id: str) -> None:
        self.inner.remove_from_group(group, connection_id)

    def negotiate(self, user_id: str | None, ttl: int = 3600) -> ConnectionInfo:
        return self.inner.negotiate(user_id, ttl)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far was sent (tests, shutdown)."""
        done = threading.Event()
        self._put(("_mark", (done,)))
        done.wait(timeout)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
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
        self._queue.put(_STOP)
        self._thread.join(timeout=5)
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
