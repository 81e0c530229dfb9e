"""Task logs in Postgres (local mode default, so logs survive a host restart).

Sequence numbers come from ``task_log_heads``: one upsert bumps the task's counter by the
number of lines and returns the new last number, holding the row lock until commit, so
concurrent appenders to one task queue behind each other and numbers never collide or
skip. Lines go in with one ``unnest`` insert in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.logs._port import (
    MAX_READ_LIMIT,
    LineInput,
    LogLine,
    LogStore,
    check_read,
    check_task_id,
    normalise,
)

_CLAIM = """
INSERT INTO task_log_heads (task_id, last_seq) VALUES (%(task)s, %(n)s)
ON CONFLICT (task_id) DO UPDATE SET last_seq = task_log_heads.last_seq + EXCLUDED.last_seq
RETURNING last_seq
"""

_INSERT = """
INSERT INTO task_log_lines (task_id, seq, at, level, text)
SELECT %(task)s, u.seq, %(at)s, u.level, u.text
FROM unnest(%(seqs)s::integer[], %(levels)s::text[], %(texts)s::text[]) AS u(seq, level, text)
"""

_READ = """
SELECT seq, at, level, text FROM task_log_lines
WHERE task_id = %(task)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s
"""


class PostgresLogStore(LogStore):
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or SystemClock()

    def append(self, task_id: str, lines: Sequence[LineInput], *,
               level: str = "info") -> list[LogLine]:
        check_task_id(task_id)
        pairs = normalise(lines, level)
        if not pairs:
            return []
        at = self._clock.now()
        with self._db.transaction() as conn:
            row = conn.execute(_CLAIM, {"task": task_id, "n": len(pairs)}).fetchone()
            assert row is not None  # RETURNING of an upsert always yields the row
            first = row["last_seq"] - len(pairs) + 1
            seqs = list(range(first, first + len(pairs)))
            conn.execute(_INSERT, {"task": task_id, "at": at, "seqs": seqs,
                                   "levels": [p[0] for p in pairs],
                                   "texts": [p[1] for p in pairs]})
        return [LogLine(seq, at, lvl, text) for seq, (lvl, text) in zip(seqs, pairs, strict=True)]

    def read(self, task_id: str, *, after: int = 0,
             limit: int = MAX_READ_LIMIT) -> list[LogLine]:
        check_task_id(task_id)
        check_read(after, limit)
        rows = self._db.fetch_all(_READ, {"task": task_id, "after": after, "limit": limit})
        return [LogLine(r["seq"], r["at"], r["level"], r["text"]) for r in rows]
