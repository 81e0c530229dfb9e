"""The task-log port: ordered, numbered lines per task, and the rules every adapter shares.

A task's log is a sequence of lines numbered 1, 2, 3 ... with no gaps, even when several
writers append to the same task at once. Readers resume with ``after=<last seq seen>``,
so nothing is lost on reconnect. Text is stored as given, with two storage-driven
exceptions shared by every adapter so they stay interchangeable: NUL characters (which
neither Postgres nor Table storage can hold) become U+FFFD, and a line longer than
``MAX_LINE_CHARS`` is split into consecutive lines (Table storage caps a property at
64 KiB) — no character is dropped.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.errors import ConstraintViolation

MAX_LINE_CHARS = 16_000
MAX_READ_LIMIT = 1000
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_LEVEL = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")

LineInput = str | tuple[str, str]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One stored line of a task's log."""

    seq: int
    at: datetime
    level: str
    text: str

    def to_json(self) -> dict[str, object]:
        return {"seq": self.seq, "at": self.at, "level": self.level, "text": self.text}


class LogStore(ABC):
    """Append-only, numbered log lines per task.

    The checks every adapter owes its callers happen here, once; an adapter implements
    ``_append`` (given checked, non-empty ``(level, text)`` pairs) and ``_read``."""

    def append(self, task_id: str, lines: Sequence[LineInput], *,
               level: str = "info") -> list[LogLine]:
        """Store ``lines`` (text, or ``(level, text)`` pairs) after the task's last line.

        Sequence numbers are consecutive from 1 per task, also with concurrent appenders.
        Returns the stored lines. An empty ``lines`` stores nothing and returns ``[]``.
        """
        check_task_id(task_id)
        pairs = normalise(lines, level)
        return self._append(task_id, pairs) if pairs else []

    def read(self, task_id: str, *, after: int = 0,
             limit: int = MAX_READ_LIMIT) -> list[LogLine]:
        """Lines with ``seq > after`` in order, at most ``limit`` of them."""
        check_task_id(task_id)
        check_read(after, limit)
        return self._read(task_id, after, limit)

    @abstractmethod
    def _append(self, task_id: str, pairs: list[tuple[str, str]]) -> list[LogLine]:
        """Store the checked pairs; the stored lines."""

    @abstractmethod
    def _read(self, task_id: str, after: int, limit: int) -> list[LogLine]:
        """The lines after ``after``, at most ``limit`` (both checked)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections, if the adapter holds any."""


def check_task_id(task_id: str) -> str:
    if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
        raise ConstraintViolation(
            "task id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            field="taskId")
    return task_id


def check_read(after: int, limit: int) -> None:
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise ConstraintViolation("after must be a non-negative integer", field="after")
    if not isinstance(limit, int) or isinstance(limit, bool) or not (
            1 <= limit <= MAX_READ_LIMIT):
        raise ConstraintViolation(f"limit must be between 1 and {MAX_READ_LIMIT}",
                                  field="limit")


def normalise(lines: Sequence[LineInput], level: str) -> list[tuple[str, str]]:
    """``(level, text)`` pairs ready to store, validated, NULs replaced, long lines split."""
    if isinstance(lines, (str, bytes)):
        raise ConstraintViolation("lines must be a list of lines, not one string",
                                  field="lines")
    out: list[tuple[str, str]] = []
    for index, item in enumerate(lines):
        if isinstance(item, str):
            line_level, text = level, item
        elif (isinstance(item, tuple) and len(item) == 2
              and all(isinstance(part, str) for part in item)):
            line_level, text = item
        else:
            raise ConstraintViolation("each line must be text or a (level, text) pair",
                                      field=f"lines[{index}]")
        if not _LEVEL.match(line_level):
            raise ConstraintViolation(
                "level must be 1-16 lowercase letters, digits, '_' or '-'", field="level")
        text = text.replace("\x00", "\ufffd")
        if len(text) <= MAX_LINE_CHARS:
            out.append((line_level, text))
        else:
            out.extend((line_level, text[i:i + MAX_LINE_CHARS])
                       for i in range(0, len(text), MAX_LINE_CHARS))
    return out


def redact(text: str, secrets: Iterable[str], *, mask: str = "***") -> str:
    """``text`` with every occurrence of each secret replaced by ``mask``.

    Secrets shorter than 4 characters are ignored: masking "a" would shred every line
    and protect nothing. Longer secrets are replaced first so one containing another is
    masked whole.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, mask)
    return text


def redact_lines(lines: Sequence[LineInput], secrets: Iterable[str]) -> list[LineInput]:
    """``lines`` with ``redact`` applied to each text (levels kept)."""
    known = [s for s in secrets if s]
    out: list[LineInput] = []
    for item in lines:
        if isinstance(item, tuple):
            out.append((item[0], redact(item[1], known)))
        else:
            out.append(redact(item, known))
    return out
