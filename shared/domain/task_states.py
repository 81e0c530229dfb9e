"""The task lifecycle: queued → waiting → running → succeeded | failed | cancelled | timed_out."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED,
                      TaskStatus.TIMED_OUT})
OPEN = frozenset(TaskStatus) - TERMINAL

# Which states each state may move to. A self-transition updates reason/progress.
ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.FAILED,
                                  TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}),
    TaskStatus.WAITING: frozenset({TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.FAILED,
                                   TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}),
    TaskStatus.RUNNING: frozenset({TaskStatus.RUNNING, TaskStatus.WAITING,
                                   TaskStatus.SUCCEEDED, TaskStatus.FAILED,
                                   TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}),
    TaskStatus.SUCCEEDED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
    TaskStatus.TIMED_OUT: frozenset(),
}


def sources_of(target: TaskStatus) -> list[str]:
    """The states from which ``target`` may be entered."""
    return sorted(s.value for s, targets in ALLOWED.items() if target in targets)


def can_move(current: TaskStatus, target: TaskStatus) -> bool:
    return target in ALLOWED[current]
