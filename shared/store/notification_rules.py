"""Notification rules: which events, which environments, which channel (the model and
its API body live in ``shared.notify.rules``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from shared.domain.models import Task
from shared.errors import ConstraintViolation, NotFound
from shared.notify.rules import Rule, RuleInput
from shared.store import _paging, activity
from shared.store._paging import Key


def create_rule(conn: Connection[Any], *, project_id: UUID, body: RuleInput,
                environment_ids: list[UUID], actor: str) -> Rule:
    body.check_channel()
    row = conn.execute(
        "INSERT INTO notification_rules (project_id, name, events, environment_ids, channel,"
        " webhook_url, recipients, enabled, created_by) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (project_id, body.name, list(body.events), environment_ids, body.channel,
         body.webhook_url if body.channel == "teams" else None,
         body.recipients if body.channel == "email" else [], body.enabled, actor)).fetchone()
    assert row is not None
    rule = Rule.from_row(row)
    activity.record(conn, actor=actor, action="notification_rule.created",
                    project_id=project_id, details={"rule": str(rule.id), "name": rule.name,
                                                    "channel": rule.channel,
                                                    "events": rule.events})
    return rule



def update_rule(conn: Connection[Any], rule: Rule, *, body: RuleInput,
                environment_ids: list[UUID], actor: str) -> Rule:
    """Replace a rule's settings. A teams rule sent without ``webhookUrl`` keeps the URL
    it has (the API never shows it back, so an edit cannot resend it)."""
    webhook = body.webhook_url or (rule.webhook_url if rule.channel == "teams" else None)
    if body.channel == "teams" and not webhook:
        raise ConstraintViolation("a teams rule needs webhookUrl", field="webhookUrl")
    if body.channel == "email" and not body.recipients:
        raise ConstraintViolation("an email rule needs recipients", field="recipients")
    row = conn.execute(
        "UPDATE notification_rules SET name = %s, events = %s, environment_ids = %s,"
        " channel = %s, webhook_url = %s, recipients = %s, enabled = %s, updated_at = now()"
        " WHERE id = %s RETURNING *",
        (body.name, list(body.events), environment_ids, body.channel,
         webhook if body.channel == "teams" else None,
         body.recipients if body.channel == "email" else [], body.enabled,
         rule.id)).fetchone()
    if row is None:
        raise NotFound(f"notification rule {rule.id} not found", field="rule")
    changed = Rule.from_row(row)
    activity.record(conn, actor=actor, action="notification_rule.updated",
                    project_id=rule.project_id,
                    details={"rule": str(rule.id), "name": changed.name,
                             "channel": changed.channel, "events": changed.events,
                             "enabled": changed.enabled,
                             "webhookChanged": body.webhook_url is not None})
    return changed


def rule_key(rule: Rule) -> Key:
    return (rule.name,)



def list_rules(conn: Connection[Any], project_id: UUID, *, after: Key | None = None,
               limit: int | None = None) -> list[Rule]:
    return [Rule.from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM notification_rules WHERE project_id = %s", (project_id,),
        order=("name",), after_key=after, limit_to=limit)]



def get_rule(conn: Connection[Any], project_id: UUID, rule_id: str) -> Rule:
    try:
        key = UUID(rule_id)
    except ValueError:
        raise NotFound(f"notification rule {rule_id} not found", field="rule") from None
    row = conn.execute("SELECT * FROM notification_rules WHERE project_id = %s AND id = %s",
                       (project_id, key)).fetchone()
    if row is None:
        raise NotFound(f"notification rule {rule_id} not found", field="rule")
    return Rule.from_row(row)



def delete_rule(conn: Connection[Any], rule: Rule, *, actor: str) -> None:
    conn.execute("DELETE FROM notification_rules WHERE id = %s", (rule.id,))
    activity.record(conn, actor=actor, action="notification_rule.deleted",
                    project_id=rule.project_id, details={"rule": str(rule.id),
                                                         "name": rule.name})



_ANY_RULE = ("EXISTS (SELECT 1 FROM notification_rules r WHERE r.project_id = t.project_id"
             " AND r.enabled AND (cardinality(r.environment_ids) = 0"
             " OR t.environment_id = ANY(r.environment_ids)))")


def task_and_any_rule(conn: Connection[Any], task_id: UUID) -> tuple[Task, bool]:
    """The task and ``any_rule_for_task``, in one read."""
    row = conn.execute(f"SELECT t.*, {_ANY_RULE} AS any_rule FROM tasks t WHERE t.id = %s",
                       (task_id,)).fetchone()
    if row is None:
        raise NotFound(f"task {task_id} not found", field="task")
    return Task.from_row(row), bool(row["any_rule"])


def any_rule_for_task(conn: Connection[Any], task_id: UUID) -> bool:
    """Whether an enabled rule of the task's project could match the task's environment."""
    row = conn.execute(f"SELECT {_ANY_RULE} AS any FROM tasks t WHERE t.id = %s",
                       (task_id,)).fetchone()
    return bool(row and row["any"])
