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

Under load a lane finds several events waiting when it wakes. Events of one target bound
for the same group (or user) that follow each other there leave as ONE message whose
arguments are theirs, in order (at most ``MAX_ARGUMENTS``): every event's payload is one
argument, and a client handles each argument as if it came alone (``shared.realtime.
events``), so a client sees the same sequence in fewer REST calls. A quiet lane sends each
event at once, as before: nothing waits to be batched.
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
# payloads merged into one message at most (a task snapshot is 1-2 KB; SignalR refuses
# messages over 1 MB)
MAX_ARGUMENTS = 50
# events taken off a lane's queue per wake-up
MAX_DRAIN = 500


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
            batch = [lane.get()]
            while len(batch) < MAX_DRAIN:
                try:
                    batch.append(lane.get_nowait())
                except queue.Empty:
                    break
            sends: list[tuple[str, tuple[Any, ...]]] = []
            for item in batch:
                if item is _STOP or item[0] == "_mark":
                    self._send_all(sends)  # what came before a mark or the stop leaves first
                    sends = []
                    if item is _STOP:
                        return
                    item[1][0].set()
                else:
                    sends.append(item)
            self._send_all(sends)

    def _send_all(self, sends: list[tuple[str, tuple[Any, ...]]]) -> None:
        for method, args in merge_runs(sends):
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


def merge_runs(sends: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    """Queued sends → the calls that deliver them: per destination (a group, a user, all),
    in the order queued, each run of one target merged into one call whose arguments are
    the run's, in order, at most ``MAX_ARGUMENTS`` each. Destinations are independent
    (SignalR orders per connection only), so they may interleave differently."""
    runs: dict[tuple[str, tuple[Any, ...]], list[tuple[str, list[Any]]]] = {}
    for method, args in sends:
        *where, target, payload = args  # where: (group,), (user_id,) or () for all
        to = runs.setdefault((method, tuple(where)), [])
        if to and to[-1][0] == target and len(to[-1][1]) + len(payload) <= MAX_ARGUMENTS:
            to[-1][1].extend(payload)
        else:
            to.append((target, list(payload)))
    calls: list[tuple[str, tuple[Any, ...]]] = []
    for (method, destination), messages in runs.items():
        calls.extend((method, (*destination, target, payload)) for target, payload in messages)
    return calls
