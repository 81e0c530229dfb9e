"""Notifications: per-project rules, rendering (Teams Adaptive Cards, e-mail), delivery.

The public surface other parts call:

- ``notify_event(svc, event)`` delivers any ``Event`` once now (one attempt per channel;
  pass ``max_attempts`` > 1 and call again to retry). Build events with
  ``event_for_task`` (terminal task events), ``approval_requested_event``,
  ``agent_offline_event`` or ``sandbox_expiring_event``.
- ``notify_agents_offline(svc, [(agent, pool_name), ...])`` from the offline detector.
- Orchestrations deliver terminal task events through the ``notify_task_event`` activity
  (``functions/activities/notify.py``), retried with backoff by ``run_task``.
"""

from __future__ import annotations

from datetime import datetime

from shared.domain.models import Environment, Project, Task
from shared.notify.agents import agent_offline_event, notify_agents_offline
from shared.notify.delivery import DeliveryReport, deliver, deliveries_of_task, send_test
from shared.notify.events import EVENTS, Event, event_for_task, task_link
from shared.services import Services

__all__ = [
    "EVENTS",
    "DeliveryReport",
    "Event",
    "agent_offline_event",
    "approval_requested_event",
    "deliver",
    "deliveries_of_task",
    "event_for_task",
    "notify_agents_offline",
    "notify_event",
    "sandbox_expiring_event",
    "send_test",
]


def notify_event(svc: Services, event: Event, *, max_attempts: int = 1) -> DeliveryReport:
    """Deliver ``event`` to every matching rule not yet served (idempotent on event id)."""
    return deliver(svc, event, max_attempts=max_attempts)


def approval_requested_event(task: Task, project: Project, environment: Environment,
                             public_url: str | None, approvers: str | None = None) -> Event:
    facts = {"Approvers": approvers} if approvers else {}
    return Event(event="approval.requested", event_id=f"task:{task.id}:approval-requested",
                 project_id=project.id, project=project.name, environment_id=environment.id,
                 environment=environment.slug, task_id=task.id, operation=task.operation,
                 who=task.requested_by_name or task.requested_by, outcome="awaiting approval",
                 title=f"{task.operation.replace('_', ' ')} on {project.name} / "
                       f"{environment.slug} awaits approval",
                 facts=facts, link=task_link(public_url, task.id))


def sandbox_expiring_event(project: Project, sandbox: Environment, now: datetime,
                           public_url: str | None) -> Event:
    assert sandbox.expires_at is not None
    minutes = max(0, int((sandbox.expires_at - now).total_seconds() // 60))
    link = (f"{public_url.rstrip('/')}/environment/?p={project.slug}"
            f"&e={sandbox.slug}") if public_url else None
    return Event(event="sandbox.expiring",
                 event_id=f"sandbox:{sandbox.id}:expiring:{sandbox.expires_at.isoformat()}",
                 project_id=project.id, project=project.name, environment_id=sandbox.id,
                 environment=sandbox.slug, who=sandbox.created_by,
                 outcome=f"expires in {minutes} minutes",
                 title=f"sandbox {sandbox.slug} of {project.name} expires in {minutes} minutes",
                 facts={"Expires at": sandbox.expires_at.isoformat()}, link=link)
