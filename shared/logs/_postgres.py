"""Task logs in Postgres (local mode default, so logs survive a host restart).

Sequence numbers come from ``task_log_heads``: an upsert bumps the task's counter by the
number of lines and returns the new last number, holding the row lock until commit, so
concurrent appenders to one task queue behind each other and numbers never collide or
skip. The lines go in from the same statement (a data-modifying CTE), which commits on
its own: an append is one round trip.
"""

from __future__ import annotations

from shared.clock import Clock, SystemClock
from shared.db import Database
from shared.logs._port import LogLine, LogStore

# One statement: claim n numbers on the task's head row (its row lock serialises
# concurrent appenders until commit) and insert the lines numbered from the claimed range.
_APPEND = """
WITH claim AS (
    INSERT INTO task_log_heads (task_id, last_seq) VALUES (%(task)s, %(n)s)
    ON CONFLICT (task_id) DO UPDATE SET last_seq = task_log_heads.last_seq + EXCLUDED.last_seq
    RETURNING last_seq
)
INSERT INTO task_log_lines (task_id, seq, at, level, text)
SELECT %(task)s, claim.last_seq - %(n)s + u.ord, %(at)s, u.level, u.text
FROM claim, unnest(%(levels)s::text[], %(texts)s::text[]) WITH ORDINALITY AS u(level, text, ord)
RETURNING seq
"""

_READ = """
SELECT seq, at, level, text FROM task_log_lines
WHERE task_id = %(task)s AND seq > %(after)s ORDER BY seq LIMIT %(limit)s
"""


class PostgresLogStore(LogStore):
    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or SystemClock()

    def _append(self, task_id: str, pairs: list[tuple[str, str]]) -> list[LogLine]:
        at = self._clock.now()
        with self._db.statements() as conn:  # one statement: atomic, no BEGIN/COMMIT
            rows = conn.execute(_APPEND, {"task": task_id, "n": len(pairs), "at": at,
                                          "levels": [p[0] for p in pairs],
                                          "texts": [p[1] for p in pairs]}).fetchall()
        first = min(r["seq"] for r in rows)
        return [LogLine(first + i, at, lvl, text) for i, (lvl, text) in enumerate(pairs)]

    def _read(self, task_id: str, after: int, limit: int) -> list[LogLine]:
        rows = self._db.fetch_all(_READ, {"task": task_id, "after": after, "limit": limit})
        return [LogLine(r["seq"], r["at"], r["level"], r["text"]) for r in rows]
