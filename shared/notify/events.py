"""Notification events: what happened, to which project/environment, in data form.

An ``Event`` carries plain values only; channels render it (templates for e-mail, a card
built from data for Teams), so nothing a user typed is ever pasted into markup or JSON.
``event_id`` is the idempotency key: one event reaches one rule's channel at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.domain.models import Environment, Project, Task

EVENTS = ("task.succeeded", "task.failed", "task.cancelled", "approval.requested",
          "backup.failed", "agent.offline", "sandbox.expiring")

# timed_out is a failure as far as a subscriber is concerned
_TASK_EVENTS = {"succeeded": "task.succeeded", "failed": "task.failed",
                "timed_out": "task.failed", "cancelled": "task.cancelled"}


@dataclass(frozen=True)
class Event:
    event: str                      # one of EVENTS
    event_id: str                   # idempotency key of the delivery
    project_id: UUID
    project: str                    # project name as users see it
    title: str                      # one line, plain text
    outcome: str                    # e.g. "succeeded", "failed", "expires in 45 minutes"
    environment_id: UUID | None = None
    environment: str | None = None
    task_id: UUID | None = None
    operation: str | None = None
    who: str | None = None
    duration: str | None = None
    detail: str | None = None       # reason or error text
    facts: dict[str, str] = field(default_factory=dict)  # extra name → value rows
    link: str | None = None         # the task (or environment) page

    @property
    def also(self) -> tuple[str, ...]:
        """Further event names the same occurrence counts as (a failed backup task is
        also ``backup.failed``)."""
        if self.operation == "backup" and self.event == "task.failed":
            return ("backup.failed",)
        return ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.event, *self.also)


def task_event_name(status: str) -> str | None:
    return _TASK_EVENTS.get(status)


def format_duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None:
        return None
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def task_link(public_url: str | None, task_id: UUID) -> str | None:
    """The web app's task page (``/task/?id=``), when the public URL is known."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/task/?id={task_id}"


def _operation_facts(task: Task) -> dict[str, str]:
    params: dict[str, Any] = task.parameters or {}
    keys = {"deploy": ("version",), "restore": ("backupId",),
            "refresh": ("sourceEnvironment", "backupId", "maskScript"), "restart": ("workload",),
            "sandbox_create": ("name", "ttlHours"), "sandbox_delete": ("name", "reason"),
            "script_run": ("script",)}
    return {k: str(params[k]) for k in keys.get(task.operation, ()) if k in params}


def event_for_task(task: Task, project: Project, environment: Environment,
                   public_url: str | None) -> Event | None:
    """The terminal event of a task, or None if the task has not ended."""
    name = task_event_name(task.status)
    if name is None:
        return None
    outcome = task.status.replace("_", " ")
    return Event(
        event=name, event_id=f"task:{task.id}:{task.status}", project_id=project.id,
        project=project.name, environment_id=environment.id, environment=environment.slug,
        task_id=task.id, operation=task.operation, who=task.requested_by_name or task.requested_by,
        title=f"{task.operation.replace('_', ' ')} on {project.name} / {environment.slug}"
              f" {outcome}",
        outcome=outcome, duration=format_duration(task.started_at or task.created_at,
                                                  task.finished_at),
        detail=task.error or task.reason, facts=_operation_facts(task),
        link=task_link(public_url, task.id))
