"""The one clock. Inject a ``Clock`` so tests can move time.

Business time — expiries, schedules, leases, heartbeats, freezes, retention — is read from
the injected ``Clock`` (``Services.clock``) and handed down as ``now``; nothing in
``shared/`` or ``functions/`` calls ``datetime.now()`` for it.

Where Postgres referees time it is the only clock in the comparison. A column the
database stamps itself (``DEFAULT now()``, ``updated_at = now()``, ``clock_timestamp()``:
``tasks.updated_at``, ``tasks.finished_at``, ``tasks.last_enqueued_at``, the
``created_at`` of every row) is compared only in SQL, against ``now()``, never with
``clock.now()`` from Python: the two clocks may differ (another host, a test's
``ManualClock``), and a comparison across them would decide by that difference. The
store functions that do so say so (``stale_started_task_ids``, ``unpicked_queued_tasks``,
``teardown_in_hand`` in ``shared/store/tasks.py``; ``backups_younger_than`` in
``shared/store/backups.py``, for retention's ``keepDays``; ``lifetime_left`` in
``shared/store/projects.py``, for a sandbox's maximum lifetime). A column written from
``clock.now()`` (job leases, agent key expiries, sandbox ``expires_at``, freeze
overrides) is compared with ``clock.now()``.

When one rule needs both — a sandbox's new expiry (business time) against its maximum
lifetime (counted from the ``created_at`` Postgres stamped) — each clock measures a
duration of its own and only the durations meet: Postgres says how long the sandbox may
still live (``created_at + max - now()``), and the limit is ``clock.now()`` plus that.
Rows keep their database-stamped ``created_at`` (no second stamp from the clock): it
also orders and pages lists, where one writer's clock must not reorder another's rows.
The one exception is a backup schedule's ``created_at``: it is written from
``clock.now()``, because it anchors the schedule's first slot (``schedules/due.due_slot``
compares it with slots computed from ``clock.now()``).

Outside the control plane other clocks are right: ``localhost/`` is a Functions host
with its own wall clock (timers, durable history, token expiry), and the agent and the
CLI run on other machines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
