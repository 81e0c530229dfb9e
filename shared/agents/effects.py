"""What a business step leaves to announce after its transaction commits.

Rules in this package run inside one database transaction and return ``Effects``; the
function layer applies them once the transaction has committed: task log lines, realtime
``taskUpdated`` / ``taskLog`` / ``agentUpdated`` events, and the durable external event
``job:<id>`` that wakes the orchestration waiting for a finished job. Publishing never
fails the agent's request: a realtime hiccup is logged, and an undelivered job event
stays in the outbox (``jobs.event_delivered_at IS NULL``) for the reaper timer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.agents.views import agent_json, job_event
from shared.api.views import task_json
from shared.domain.models import Agent, Job, Task
from shared.redact import scrub_lines
from shared.store import jobs as job_store

if TYPE_CHECKING:
    from azure.durable_functions import DurableOrchestrationClient

    from shared.services import Services

log = logging.getLogger("cloudops.agents")


@dataclass
class Effects:
    tasks: list[Task] = field(default_factory=list)           # taskUpdated
    agents: list[tuple[Agent, str]] = field(default_factory=list)  # agentUpdated (agent, pool)
    logs: list[tuple[Task, list[Any]]] = field(default_factory=list)  # lines to append
    finished: list[Job] = field(default_factory=list)         # raise job:<id>

    def extend(self, other: Effects) -> None:
        self.tasks += other.tasks
        self.agents += other.agents
        self.logs += other.logs
        self.finished += other.finished


def _publish(svc: Services, effects: Effects, now: datetime) -> None:
    """Blocking part (log store, realtime REST): run on a worker thread."""
    logs = getattr(svc, "logs", None)
    realtime = getattr(svc, "realtime", None)
    events = _realtime_events() if realtime is not None else None
    for task, lines in effects.logs:
        if not lines or logs is None:
            continue
        try:
            stored = logs.append(str(task.id), scrub_lines(lines, task.secrets))
            if events is not None:
                events.publish_task_log(realtime, str(task.id), str(task.project_id),
                                        [line.to_json() for line in stored])
        except Exception as exc:  # the job result matters more; the gap is still told
            log.exception("could not store/publish %d log lines of task %s", len(lines),
                          task.id)
            _note_gap(logs, task, len(lines), exc)
    if events is None:
        return
    for task in effects.tasks:
        try:
            events.publish_task_update(realtime, task_json(task))
        except Exception:
            log.exception("could not publish taskUpdated for %s", task.id)
    offline_after = _policy().offline_after
    for agent, pool_name in effects.agents:
        try:
            events.publish_agent_update(realtime, agent_json(
                agent, pool_name=pool_name, now=now, offline_after=offline_after))
        except Exception:
            log.exception("could not publish agentUpdated for %s", agent.id)


def _note_gap(logs: Any, task: Task, count: int, exc: Exception) -> None:
    """Write where lines are missing, so the log never looks complete when it is not."""
    noun = "line" if count == 1 else "lines"
    try:
        logs.append(str(task.id), [f"… {count:,} {noun} could not be stored"
                                   f" ({type(exc).__name__})"], level="warning")
    except Exception:
        log.exception("could not note the log gap of task %s", task.id)


async def apply_effects(svc: Services, effects: Effects, *,
                        client: DurableOrchestrationClient | None = None,
                        now: datetime | None = None) -> None:
    """Append logs, publish realtime events and wake orchestrations (after commit)."""
    if effects.logs or effects.tasks or effects.agents:
        await asyncio.to_thread(_publish, svc, effects, now or _now(svc))
    if client is not None and effects.finished:
        await deliver_job_events(svc, client, effects.finished)


async def deliver_job_events(svc: Services, client: DurableOrchestrationClient,
                             jobs: list[Job]) -> int:
    """Raise ``job:<id>`` on each job's orchestration (instance id = task id); record
    each attempt so the outbox retries the failures. Returns how many were delivered."""
    delivered = 0
    for job in jobs:
        ok = False
        try:
            await client.raise_event(str(job.task_id), f"job:{job.id}", job_event(job))
            ok = True
            delivered += 1
        except Exception as exc:
            log.warning("could not raise job:%s on %s (will retry): %s", job.id, job.task_id,
                        exc)
        stamp = _now(svc) if ok else None

        def mark(job_id: Any = job.id, at: datetime | None = stamp) -> None:
            with svc.db.transaction() as conn:
                job_store.mark_event(conn, job_id, delivered_at=at)

        await asyncio.to_thread(mark)
    return delivered


def _realtime_events() -> Any:
    try:
        from shared.realtime import events
    except ImportError:  # the realtime package is not part of this deployment
        return None
    return events


def _policy() -> Any:
    from shared.agents.policy import agent_policy

    return agent_policy()


def _now(svc: Services) -> datetime:
    return svc.clock.now()
