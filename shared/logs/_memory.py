"""In-memory task logs: the fast fake for tests (same contract tests as the real stores)."""

from __future__ import annotations

import threading

from shared.clock import Clock, SystemClock
from shared.logs._port import LogLine, LogStore


class MemoryLogStore(LogStore):
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lines: dict[str, list[LogLine]] = {}
        self._lock = threading.Lock()

    def _append(self, task_id: str, pairs: list[tuple[str, str]]) -> list[LogLine]:
        at = self._clock.now()
        with self._lock:
            log = self._lines.setdefault(task_id, [])
            start = len(log) + 1
            stored = [LogLine(start + i, at, lvl, text) for i, (lvl, text) in enumerate(pairs)]
            log.extend(stored)
        return stored

    def _read(self, task_id: str, after: int, limit: int) -> list[LogLine]:
        with self._lock:
            # seq n lives at index n-1, so slicing is the whole query
            return list(self._lines.get(task_id, [])[after:after + limit])
