"""Following a task to its end: its live log, its status and progress, its exit code.

The log is read with ``GET /api/tasks/{id}/logs?after=N`` from the last sequence number
printed, so a dropped connection (retried with backoff by the client) resumes exactly
where it stopped: no line twice, none missed. On a terminal a progress bar stays on the
last line under the log; in CI (and whenever output is not a terminal) every line is a
plain timestamped one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from cli.client import ApiClient

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}
EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 2, "timed_out": 2}
PAGE = 1000


def stamp(iso: Any) -> str:
    """Every time the CLI prints, one format: UTC with milliseconds,
    ``2026-05-04T08:25:44.603Z`` (the API leaves out a zero fraction; this never does)."""
    if not iso:
        return ""
    try:
        value = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def exit_code(status: str) -> int:
    return EXIT_CODES.get(status, 1)


def neutralize(text: str, runner: str | None) -> str:
    """Keep a task's log from issuing pipeline commands (``##vso[...]``, ``::set-...``):
    the log is the operation's output, not the pipeline's."""
    text = text.replace("##vso[", "##vso\u200b[")
    if runner == "github-actions" and text.lstrip().startswith("::"):
        text = " " + text
    return text


@dataclass
class LogPrinter:
    """Prints log lines and status changes; owns the terminal progress bar if any."""

    out: TextIO
    tty: bool = False
    runner: str | None = None
    _bar: str = field(default="", init=False)
    _last_note: tuple[Any, ...] = field(default=(), init=False)

    def line(self, item: dict[str, Any]) -> None:
        text = neutralize(str(item.get("text", "")), self.runner)
        level = str(item.get("level") or "info")
        if self.tty:
            clock = str(item.get("at") or "")[11:19]
            self._write(f"{clock} {text}")
            return
        prefix = ""
        if level in ("error", "warning"):
            prefix = {"azure-devops": f"##[{level}]",
                      "github-actions": f"::{level}::"}.get(self.runner or "", "")
        self._write(f"{stamp(item.get('at'))} {level.upper():7} {prefix}{text}")

    def note(self, text: str) -> None:
        now = stamp(datetime.now(UTC).isoformat())
        self._write(text if self.tty else f"{now} {'NOTE':7} {text}")

    def status(self, task: dict[str, Any]) -> None:
        """A status or reason change becomes a line; on a terminal the bar is redrawn."""
        status, reason, progress = task.get("status"), task.get("reason"), task.get("progress")
        note = (status, reason)
        if note != self._last_note:
            self._last_note = note
            # "task cancelled by ana", "task failed: exit 1" — never "failed: failed".
            if reason and str(reason).startswith(str(status)):
                self.note(f"task {reason}")
            else:
                self.note(f"task {status}" + (f": {reason}" if reason else ""))
        if self.tty:
            self._draw(status or "", progress or 0, reason or "")

    def close(self) -> None:
        if self.tty and self._bar:
            self.out.write("\r\033[K")
            self.out.flush()
            self._bar = ""

    def _write(self, text: str) -> None:
        if self.tty and self._bar:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        if self.tty and self._bar:
            self.out.write(self._bar)
        self.out.flush()

    def _draw(self, status: str, progress: int, reason: str) -> None:
        filled = max(0, min(30, progress * 30 // 100))
        self._bar = f"[{'#' * filled}{'-' * (30 - filled)}] {progress:3d}% {status}"
        if reason:
            self._bar += f" - {reason[:60]}"
        self.out.write("\r\033[K" + self._bar)
        self.out.flush()


def follow(client: ApiClient, task_id: str, printer: LogPrinter | None, *,
           after: int = 0, poll: float = 0.5,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Print the task's log from ``after`` until the task ends; return the final task.

    ``printer`` None waits silently. Connection errors are retried inside the client,
    and since each read asks for lines after the last one printed, a retry never
    repeats or skips a line.
    """
    printed = after
    try:
        while True:
            page = client.get(f"/api/tasks/{task_id}/logs",
                              {"after": printed, "limit": PAGE})
            items = page.get("items") or []
            for item in items:
                seq = int(item.get("seq", 0))
                if seq <= printed:  # a replayed page after a reconnect: already printed
                    continue
                printed = seq
                if printer is not None:
                    printer.line(item)
            task = client.get(f"/api/tasks/{task_id}")
            if printer is not None:
                printer.status(task)
            # The logs endpoint reads the task before its lines, so lines read after a
            # terminal status are complete; only a full page means there may be more.
            if page.get("status") in TERMINAL and task.get("status") in TERMINAL \
                    and len(items) < PAGE:
                return dict(task)
            if len(items) < PAGE:
                sleep(poll)
    finally:
        if printer is not None:
            printer.close()
