"""The queued publisher: each group's events leave in the order they were sent, a slow
group does not hold up the others, a failing send does not stop the rest, flush waits
for every lane, and events that queued up leave merged into fewer messages."""

from __future__ import annotations

import threading
import zlib
from typing import Any

from shared.realtime.port import ConnectionInfo
from shared.realtime.publisher import LANES, MAX_ARGUMENTS, QueuedRealtime, merge_runs


class RecordingRealtime:
    hub = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []  # (group, payload): one per argument
        self.calls: list[tuple[str, str, list[Any]]] = []
        self.lock = threading.Lock()
        self.hold: dict[str, threading.Event] = {}
        self.entered = threading.Event()  # a send to a held group has begun
        self.seen = threading.Condition(self.lock)

    def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        gate = self.hold.get(group)
        if gate is not None:
            self.entered.set()
            assert gate.wait(10), "the held group was never released"
        if target == "boom":
            raise RuntimeError("transport failed")
        with self.lock:
            self.calls.append((group, target, list(args)))
            self.sent.extend((group, arg) for arg in args)
            self.seen.notify_all()
        return True

    def send_to_user(self, user_id: str, target: str, args: list[Any]) -> bool:
        return self.send_to_group(f"user:{user_id}", target, args)

    def send_to_all(self, target: str, args: list[Any]) -> bool:
        return self.send_to_group("all", target, args)

    def add_to_group(self, group: str, connection_id: str) -> None: ...

    def remove_from_group(self, group: str, connection_id: str) -> None: ...

    def negotiate(self, user_id: str | None, ttl: int = 3600) -> ConnectionInfo:
        raise NotImplementedError


def _groups_on_different_lanes() -> tuple[str, str]:
    names = [f"task:{i}" for i in range(64)]
    first = names[0]
    lane = zlib.crc32(f"group:{first}".encode()) % LANES
    other = next(n for n in names if zlib.crc32(f"group:{n}".encode()) % LANES != lane)
    return first, other


def test_each_groups_events_arrive_in_the_order_they_were_sent() -> None:
    inner = RecordingRealtime()
    rt = QueuedRealtime(inner)  # type: ignore[arg-type]
    try:
        groups = [f"project:{i}" for i in range(10)] + [f"task:{i}" for i in range(10)]
        for seq in range(50):
            for group in groups:
                assert rt.send_to_group(group, "taskUpdated", [seq])
        rt.flush()
        for group in groups:
            assert [s for g, s in inner.sent if g == group] == list(range(50))
    finally:
        rt.close()


def test_a_slow_group_does_not_hold_up_another_lane() -> None:
    inner = RecordingRealtime()
    slow, fast = _groups_on_different_lanes()
    inner.hold[slow] = threading.Event()
    rt = QueuedRealtime(inner)  # type: ignore[arg-type]
    try:
        rt.send_to_group(slow, "taskUpdated", ["first"])
        rt.send_to_group(fast, "taskUpdated", ["other"])
        with inner.lock:
            assert inner.seen.wait_for(lambda: (fast, "other") in inner.sent, timeout=10)
            assert (slow, "first") not in inner.sent
        inner.hold[slow].set()
        rt.flush()
        assert (slow, "first") in inner.sent
    finally:
        inner.hold[slow].set()
        rt.close()


def test_a_failed_send_is_logged_and_the_lane_keeps_draining() -> None:
    inner = RecordingRealtime()
    rt = QueuedRealtime(inner)  # type: ignore[arg-type]
    try:
        rt.send_to_group("task:1", "boom", ["lost"])
        rt.send_to_group("task:1", "taskUpdated", ["after"])
        rt.send_to_user("u1", "taskUpdated", ["to a user"])
        rt.send_to_all("taskUpdated", ["to all"])
        rt.flush()
        assert ("task:1", "after") in inner.sent
        assert ("user:u1", "to a user") in inner.sent and ("all", "to all") in inner.sent
        assert ("task:1", "lost") not in inner.sent
    finally:
        rt.close()


def test_events_queued_behind_a_slow_send_leave_merged_in_order() -> None:
    inner = RecordingRealtime()
    inner.hold["task:1"] = threading.Event()
    rt = QueuedRealtime(inner)  # type: ignore[arg-type]
    try:
        rt.send_to_group("task:1", "taskUpdated", ["held"])
        assert inner.entered.wait(10)  # the lane is inside the held send: the rest queue
        for seq in range(5):
            rt.send_to_group("task:1", "taskUpdated", [seq])
        inner.hold["task:1"].set()
        rt.flush()
        assert [arg for g, arg in inner.sent if g == "task:1"] == ["held", 0, 1, 2, 3, 4]
        assert [args for g, _, args in inner.calls if g == "task:1"] == [["held"], [0, 1, 2, 3, 4]]
    finally:
        inner.hold["task:1"].set()
        rt.close()


def test_merged_runs_keep_each_destinations_order_and_break_at_another_target() -> None:
    sends = [("send_to_group", ("task:1", "taskUpdated", ["a"])),
             ("send_to_group", ("project:p", "taskUpdated", ["A"])),
             ("send_to_group", ("task:1", "taskUpdated", ["b"])),
             ("send_to_group", ("task:1", "taskLog", ["log"])),
             ("send_to_group", ("task:1", "taskUpdated", ["c"])),
             ("send_to_user", ("u1", "taskUpdated", ["x"])),
             ("send_to_all", ("agentUpdated", ["g1"])),
             ("send_to_group", ("project:p", "taskUpdated", ["B", "C"])),
             ("send_to_all", ("agentUpdated", ["g2"]))]
    calls = merge_runs(sends)  # type: ignore[arg-type]
    assert calls == [
        ("send_to_group", ("task:1", "taskUpdated", ["a", "b"])),
        ("send_to_group", ("task:1", "taskLog", ["log"])),
        ("send_to_group", ("task:1", "taskUpdated", ["c"])),
        ("send_to_group", ("project:p", "taskUpdated", ["A", "B", "C"])),
        ("send_to_user", ("u1", "taskUpdated", ["x"])),
        ("send_to_all", ("agentUpdated", ["g1", "g2"])),
    ]
    assert sends[0][1][2] == ["a"]  # the callers' lists are not changed


def test_a_merged_message_carries_at_most_max_arguments() -> None:
    sends = [("send_to_group", ("project:p", "taskUpdated", [i]))
             for i in range(2 * MAX_ARGUMENTS + 1)]
    calls = merge_runs(sends)  # type: ignore[arg-type]
    assert [len(args[2]) for _, args in calls] == [MAX_ARGUMENTS, MAX_ARGUMENTS, 1]
    assert [x for _, args in calls for x in args[2]] == list(range(2 * MAX_ARGUMENTS + 1))
