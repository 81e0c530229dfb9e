"""Delivery to real local sinks (an HTTP webhook receiver, aiosmtpd with STARTTLS+AUTH),
called directly: exactly-once per (event, rule), retries, recorded final failures."""

from __future__ import annotations

from typing import Any

from shared.domain.models import Environment, Project, Task
from shared.domain.task_states import TaskStatus
from shared.notify import deliveries_of_task, event_for_task, notify_event
from shared.notify.rules import RuleInput, rule_json
from shared.services import Services
from shared.store import activity
from shared.store import tasks as task_store
from shared.store.notification_rules import create_rule, list_rules
from tests.notify.cards import facts_of, validate_teams_message
from tests.notify.conftest import PUBLIC_URL, make_plane, make_project
from tests.notify.sinks import SmtpSink, WebhookSink


def add_rule(svc: Services, project: Project, **fields: Any) -> None:
    body = RuleInput.model_validate({"name": fields.pop("name", "ops"),
                                     "events": ["task.succeeded", "task.failed"], **fields})
    with svc.db.transaction() as conn:
        create_rule(conn, project_id=project.id, body=body, environment_ids=[],
                    actor="alice")


def finished_task(svc: Services, project: Project, env: Environment,
                  status: TaskStatus = TaskStatus.SUCCEEDED,
                  parameters: dict[str, Any] | None = None) -> Task:
    with svc.db.transaction() as conn:
        task, _ = task_store.create_task(conn, project_id=project.id, environment_id=env.id,
                                         operation="deploy",
                                         parameters=parameters or {"version": "1.2.3"},
                                         requested_by="bob@example.com")
        task_store.transition(conn, task.id, TaskStatus.RUNNING, actor="system",
                              reason="deploying")
        return task_store.transition(conn, task.id, status, actor="system", reason="done",
                                     error=None if status == TaskStatus.SUCCEEDED else "boom")


def deliver_task(svc: Services, task: Task, project: Project, env: Environment,
                 max_attempts: int = 3) -> Any:
    return notify_event(svc, event_for_task(task, project, env, PUBLIC_URL),  # type: ignore[arg-type]
                        max_attempts=max_attempts)


def test_webhook_receives_a_valid_card_with_the_task_facts_and_link(
        plane: Services, webhook: WebhookSink) -> None:
    project, env = make_project(plane)
    add_rule(plane, project, channel="teams", webhookUrl=webhook.url)
    task = finished_task(plane, project, env)
    report = deliver_task(plane, task, project, env)
    assert report.delivered == 1
    (card_message,) = webhook.delivered
    card = validate_teams_message(card_message)
    facts = facts_of(card)
    assert (facts["Operation"], facts["Environment"], facts["Requested by"],
            facts["Outcome"], facts["version"]) == ("deploy", "dev", "bob@example.com",
                                                    "succeeded", "1.2.3")
    assert "Duration" in facts
    assert card["actions"][0]["url"] == f"{PUBLIC_URL}/task/?id={task.id}"


def test_email_arrives_over_starttls_with_both_parts_and_the_rule_recipients(
        db: Any, tmp_path: Any, smtp: SmtpSink) -> None:
    svc = make_plane(db, tmp_path, smtp.settings_env())
    project, env = make_project(svc)
    add_rule(svc, project, channel="email", recipients=["ops@example.com", "lead@example.org"])
    task = finished_task(svc, project, env, TaskStatus.FAILED)
    assert deliver_task(svc, task, project, env).delivered == 1
    (mail,) = smtp.received
    assert sorted(mail.recipients) == ["lead@example.org", "ops@example.com"]
    assert mail.envelope_from == "cloudops@example.com"
    assert mail.message.get_content_type() == "multipart/alternative"
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert "Outcome: failed" in text and "Details: boom" in text
    assert "<table" in html and f"{PUBLIC_URL}/task/?id={task.id}" in html
    assert "failed" in mail.message["Subject"]


def test_a_sink_failing_twice_then_succeeding_gets_exactly_one_delivery(
        plane: Services) -> None:
    sink = WebhookSink(fail_first=2)
    try:
        project, env = make_project(plane)
        add_rule(plane, project, channel="teams", webhookUrl=sink.url)
        task = finished_task(plane, project, env)
        reports = [deliver_task(plane, task, project, env, max_attempts=4) for _ in range(5)]
        assert [r.pending for r in reports] == [1, 1, 0, 0, 0]
        assert len(sink.requests) == 3 and len(sink.delivered) == 1
        (row,) = deliveries_of_task(plane, task.id)
        assert (row["status"], row["attempts"], row["lastError"]) == ("delivered", 3, None)
    finally:
        sink.close()


def test_an_always_failing_sink_is_recorded_and_the_task_keeps_its_outcome(
        plane: Services) -> None:
    sink = WebhookSink(always_fail=True)
    try:
        project, env = make_project(plane)
        add_rule(plane, project, name="broken", channel="teams", webhookUrl=sink.url)
        task = finished_task(plane, project, env)
        reports = [deliver_task(plane, task, project, env, max_attempts=3) for _ in range(4)]
        assert [(r.pending, r.failed) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0)]
        assert len(sink.requests) == 3
        (row,) = deliveries_of_task(plane, task.id)
        assert row["status"] == "failed" and "HTTP 500" in row["lastError"]
        assert "SECRET" not in str(row)
        with plane.db.transaction() as conn:
            assert task_store.get_task(conn, task.id).status == "succeeded"
            entries = activity.list_activity(conn, task_id=task.id)
        failed = [e for e in entries if e.action == "notification.failed"]
        assert len(failed) == 1 and failed[0].details["ruleName"] == "broken"
        lines = plane.logs.read(str(task.id))
        assert any("notification to teams rule 'broken' failed after 3 attempts" in x.text
                   for x in lines)
    finally:
        sink.close()


def test_rules_filter_by_event_and_environment(plane: Services, webhook: WebhookSink) -> None:
    project, env = make_project(plane)
    body = RuleInput.model_validate({"name": "failures", "events": ["task.failed"],
                                     "channel": "teams", "webhookUrl": webhook.url})
    with plane.db.transaction() as conn:
        create_rule(conn, project_id=project.id, body=body, environment_ids=[env.id],
                    actor="alice")
    ok = finished_task(plane, project, env)
    assert deliver_task(plane, ok, project, env).delivered == 0
    failed = finished_task(plane, project, env, TaskStatus.TIMED_OUT)
    assert deliver_task(plane, failed, project, env).delivered == 1
    assert facts_of(webhook.delivered[0]["attachments"][0]["content"])["Outcome"] == "timed out"


def test_the_webhook_url_is_never_shown_back(plane: Services, webhook: WebhookSink) -> None:
    project, _ = make_project(plane)
    add_rule(plane, project, channel="teams", webhookUrl=webhook.url)
    with plane.db.transaction() as conn:
        (rule,) = list_rules(conn, project.id)
    view = rule_json(rule, {})
    assert view["webhookUrl"] == "http://127.0.0.1/…" and view["hasWebhookUrl"] is True
    assert "SECRET" not in str(view) and "/workflows/hook" not in str(view)
