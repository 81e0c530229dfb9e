"""Delivering an event to every matching rule's channel, exactly once per (event, rule).

Each (event id, rule) has one row in ``notification_deliveries``. An attempt locks the
row (``SKIP LOCKED``: a concurrent attempt leaves it alone), sends, and records the
outcome in the same transaction, so a delivered row is never sent again. The lock (and
one pooled connection) is held for the send, which channels bound to 10 seconds. Attempts count
on the row; the attempt that reaches ``max_attempts`` marks it failed and writes the
failure to the activity log and the task's log. Callers retry while ``pending`` is
non-zero (the Durable activity raises, so the orchestrator's retry policy backs off).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from shared.notify import render
from shared.notify.channels import DeliveryError, build_email, post_teams, send_email
from shared.notify.events import Event
from shared.notify.rules import Rule
from shared.services import Services
from shared.store import activity
from shared.store import notification_deliveries as delivery_store
from shared.store import notification_rules as rule_store

log = logging.getLogger("cloudops.notify")
ACTOR = "notifier"


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    already_done: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failed": self.failed, "pending": self.pending,
                "alreadyDone": self.already_done, "errors": self.errors}


def matching_rules(svc: Services, event: Event) -> list[Rule]:
    with svc.db.transaction() as conn:
        rules = rule_store.list_rules(conn, event.project_id)
    return [r for r in rules if r.matches(event.names, event.environment_id)]


def send(svc: Services, rule: Rule, event: Event) -> None:
    """One attempt on one channel; raises DeliveryError."""
    if rule.channel == "teams":
        assert rule.webhook_url is not None
        post_teams(rule.webhook_url, render.teams_message(event),
                   allow_loopback=svc.settings.webhook_allow_loopback)
        return
    message = build_email(svc.settings, rule.recipients, render.email_subject(event),
                          render.email_text(event), render.email_html(event))
    send_email(svc.settings, message, rule.recipients)


def send_test(svc: Services, rule: Rule, *, project: str, actor: str) -> dict[str, Any]:
    """Send one test message through ``rule``'s channel now, whatever its events and
    environments; nothing is recorded as a task's delivery. The outcome (and the channel's
    error, which never holds the webhook URL) goes to the activity log and back."""
    event = Event(event="test", event_id=f"test:{uuid4()}", project_id=rule.project_id,
                  project=project, outcome="test", who=actor,
                  title=f"Test message for notification rule '{rule.name}' of {project}",
                  detail="Sent with 'Send a test' to check that this channel works.")
    try:
        send(svc, rule, event)
    except DeliveryError as exc:
        error: str | None = str(exc)
    except Exception as exc:  # a rendering bug: say so without a stack trace
        log.exception("test notification to rule %s failed", rule.id)
        error = f"internal error: {type(exc).__name__}"
    else:
        error = None
    with svc.db.transaction() as conn:
        activity.record(conn, actor=actor, action="notification_rule.tested",
                        project_id=rule.project_id,
                        details={"rule": str(rule.id), "name": rule.name,
                                 "channel": rule.channel, "delivered": error is None,
                                 "error": error})
    return {"ruleId": str(rule.id), "channel": rule.channel, "delivered": error is None,
            "error": error}


def deliver(svc: Services, event: Event, *, max_attempts: int) -> DeliveryReport:
    """Try every matching, not yet settled delivery of ``event`` once."""
    report = DeliveryReport()
    for rule in matching_rules(svc, event):
        _deliver_one(svc, rule, event, max_attempts, report)
    return report


def _deliver_one(svc: Services, rule: Rule, event: Event, max_attempts: int,
                 report: DeliveryReport) -> None:
    with svc.db.transaction() as conn:
        delivery_store.ensure_delivery(conn, event_id=event.event_id, rule_id=rule.id,
                                       project_id=event.project_id, task_id=event.task_id,
                                       event=event.event, channel=rule.channel)
    with svc.db.transaction() as conn:
        row = delivery_store.claim_delivery(conn, event.event_id, rule.id)
        if row is None:  # another attempt holds it right now: ask to be retried
            report.pending += 1
            return
        if row["status"] != "pending":
            report.already_done += 1
            return
        try:
            send(svc, rule, event)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a rendering bug must not lose the record either
            log.exception("notification %s to rule %s failed", event.event_id, rule.id)
            error = f"internal error: {type(exc).__name__}"
        else:
            delivery_store.mark_delivered(conn, row["id"])
            report.delivered += 1
            return
        attempts = row["attempts"] + 1
        final = attempts >= max_attempts
        delivery_store.mark_attempt_failed(conn, row["id"], attempts=attempts, error=error,
                                           final=final)
        report.errors.append(f"{rule.name}: {error}")
        if not final:
            report.pending += 1
            return
        report.failed += 1
        activity.record(conn, actor=ACTOR, action="notification.failed",
                        project_id=event.project_id, environment_id=event.environment_id,
                        task_id=event.task_id,
                        details={"event": event.event, "eventId": event.event_id,
                                 "rule": str(rule.id), "ruleName": rule.name,
                                 "channel": rule.channel, "attempts": attempts,
                                 "error": error})
    if event.task_id is not None:
        _log_on_task(svc, event.task_id, f"notification to {rule.channel} rule "
                     f"'{rule.name}' failed after {attempts} attempts: {error}")


def _log_on_task(svc: Services, task_id: UUID, line: str) -> None:
    from shared.store import tasks as task_store
    from shared.tasks.service import TaskService

    try:
        with svc.db.transaction() as conn:
            task = task_store.get_task(conn, task_id)
        TaskService(svc).log(task, [line], level="warning")
    except Exception:  # the activity log already has it; the task log is a courtesy
        log.warning("could not log the notification failure on task %s", task_id)


def deliveries_of_task(svc: Services, task_id: UUID) -> list[dict[str, Any]]:
    """The API view of a task's deliveries (no secrets: rule name and channel only)."""
    with svc.db.transaction() as conn:
        rows = delivery_store.deliveries_of_task(conn, task_id)
    return [{"id": str(r["id"]), "eventId": r["event_id"], "event": r["event"],
             "ruleId": str(r["rule_id"]), "rule": r["rule_name"], "channel": r["channel"],
             "status": r["status"], "attempts": r["attempts"], "lastError": r["last_error"],
             "createdAt": r["created_at"].isoformat(),
             "deliveredAt": r["delivered_at"].isoformat() if r["delivered_at"] else None}
            for r in rows]
