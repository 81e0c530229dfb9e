"""Notifications, schedules and sandbox expiry end to end on the local host over HTTP.

The host here is this module's own (not the session's ``running_host``) because it needs
settings the shared one cannot have: the SMTP relay (a local aiosmtpd with STARTTLS and
AUTH), a public URL for task links, and short delivery retry delays so the retries with
backoff run in a second. Teams webhooks are a local HTTP sink (Teams itself cannot run
offline); cards are validated against the Adaptive Card schema version they declare."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import requests
from psycopg.rows import dict_row

from shared.api.openapi import NotificationTestOut, RuleOut, ScheduleOut
from shared.domain.models import BackupSchedule
from shared.notify.render import card_text
from shared.schedules.due import due_slot
from tests.conftest import (
    RunningHost,
    create_throwaway_database,
    drop_database,
    start_host,
    stop_host,
    with_database,
)
from tests.notify.cards import facts_of, validate_teams_message
from tests.notify.sinks import SmtpSink, WebhookSink
from tests.waiting import wait_until

PUBLIC_URL = "https://ops.example.com"
HOSTILE = 'Shop <script>alert(1)</script> "}]} [x](https://evil)'
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    sink = SmtpSink(tmp_path_factory.mktemp("smtp"))
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def host(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    admin_url, name = create_throwaway_database("cloudops_notify")
    running = start_host(with_database(admin_url, name), tmp_path_factory.mktemp("home"),
                         env={**smtp.settings_env(), "CLOUDOPS_PUBLIC_URL": PUBLIC_URL,
                              "CLOUDOPS_NOTIFY_FIRST_RETRY_MS": "100",
                              "CLOUDOPS_NOTIFY_ATTEMPTS": "3",
                              # the webhook sink listens on http://127.0.0.1
                              "CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK": "true"})
    yield running
    stop_host(running)
    drop_database(admin_url, name)


@pytest.fixture(scope="module")
def admin(host: RunningHost) -> Any:
    return host.session("alice", ("admin",))


def make_project(admin: Any, host: RunningHost, name: str = "Shop") -> str:
    slug = f"n-{uuid.uuid4().hex[:8]}"
    assert admin.post(host.url("/api/projects"), json={"slug": slug, "name": name}
                      ).status_code == 201
    r = admin.post(host.url(f"/api/projects/{slug}/environments"),
                   json={"slug": "dev", "name": "Dev", "target": {"type": "noop"}})
    assert r.status_code == 201, r.text
    return slug


def add_rule(admin: Any, host: RunningHost, project: str, **body: Any) -> dict[str, Any]:
    r = admin.post(host.url(f"/api/projects/{project}/notification-rules"), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def finished(admin: Any, host: RunningHost, task_id: str) -> dict[str, Any]:
    return wait_until(lambda: (t := admin.get(host.url(f"/api/tasks/{task_id}")).json())
                      ["status"] in TERMINAL and t, f"task {task_id} to end")


def deliveries(admin: Any, host: RunningHost, task_id: str) -> list[dict[str, Any]]:
    r = admin.get(host.url(f"/api/tasks/{task_id}/notifications"))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def settled(admin: Any, host: RunningHost, task_id: str, count: int) -> list[dict[str, Any]]:
    return wait_until(lambda: (items := deliveries(admin, host, task_id)) and len(items) == count
                      and all(i["status"] != "pending" for i in items) and items,
                      "deliveries to settle")


def fire_timer(host: RunningHost, name: str) -> None:
    r = requests.post(host.url(f"/admin/functions/{name}"), json={"input": ""},
                      headers={"x-functions-key": host.master_key}, timeout=10)
    assert r.status_code in (200, 202), r.text


def timer_runs_finished(host: RunningHost, name: str) -> int:
    """How many admin-started runs of ``name`` have ended (the local host counts them)."""
    r = requests.get(host.url(f"/admin/functions/{name}"),
                     headers={"x-functions-key": host.master_key}, timeout=10)
    assert r.status_code == 200, r.text
    return int(r.json()["adminRunsFinished"])


def test_a_task_outcome_reaches_teams_and_email_once_with_retries(
        host: RunningHost, admin: Any, smtp: SmtpSink) -> None:
    sink = WebhookSink(fail_first=2)
    try:
        project = make_project(admin, host, HOSTILE)
        teams = add_rule(admin, host, project, name="teams", events=["task.succeeded"],
                         channel="teams", webhookUrl=sink.url, environments=["dev"])
        assert teams["webhookUrl"] == "http://127.0.0.1/…" and "SECRET" not in str(teams)
        listed = admin.get(host.url(f"/api/projects/{project}/notification-rules")).json()
        assert "SECRET" not in str(listed) and len(listed["items"]) == 1
        add_rule(admin, host, project, name="mail", events=["task.succeeded"],
                 channel="email", recipients=["ops@example.com", "lead@example.org"])
        version = "1.0__rc__1"  # versions are restricted; "__" is markdown bold
        task = admin.post(host.url(f"/api/projects/{project}/environments/dev/deployments"),
                          json={"version": version}).json()
        assert finished(admin, host, task["id"])["status"] == "succeeded"
        rows = {r["rule"]: r for r in settled(admin, host, task["id"], 2)}
        assert (rows["teams"]["status"], rows["teams"]["attempts"]) == ("delivered", 3)
        assert (rows["mail"]["status"], rows["mail"]["attempts"]) == ("delivered", 1)
        assert len(sink.requests) == 3 and len(sink.delivered) == 1
        card = validate_teams_message(sink.delivered[0])
        facts = facts_of(card)
        assert facts["Requested by"] == "alice@example.com" and facts["Outcome"] == "succeeded"
        assert facts["version"] == card_text(version) and facts["Environment"] == "dev"
        assert facts["Project"] == card_text(HOSTILE)
        assert card["actions"][0]["url"] == f"{PUBLIC_URL}/task/?id={task['id']}"
        def mails() -> list[Any]:
            return [m for m in smtp.received
                    if task["id"] in m.message.get_body(("plain",)).get_content()]

        mail = wait_until(mails, "the e-mail")
        assert len(mail) == 1
        assert sorted(mail[0].recipients) == ["lead@example.org", "ops@example.com"]
        html = mail[0].message.get_body(("html",)).get_content()
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert '"}]}' not in html and "&#34;}]}" in html
        # nothing further arrives: delivered once per channel. Barrier: a later task's
        # card and e-mail go the same way; once they are in, a repeat of the first is not.
        later = admin.post(host.url(f"/api/projects/{project}/environments/dev/deployments"),
                           json={"version": "2.0"}).json()
        assert finished(admin, host, later["id"])["status"] == "succeeded"
        settled(admin, host, later["id"], 2)
        wait_until(lambda: len(sink.delivered) == 2, "the later task's card")
        wait_until(lambda: [m for m in smtp.received
                            if later["id"] in m.message.get_body(("plain",)).get_content()],
                   "the later task's e-mail")
        versions = [facts_of(validate_teams_message(c))["version"] for c in sink.delivered]
        assert versions == [card_text(version), card_text("2.0")]
        assert len(mails()) == 1
    finally:
        sink.close()


def test_an_always_failing_sink_leaves_the_outcome_and_the_failure_is_recorded(
        host: RunningHost, admin: Any) -> None:
    sink = WebhookSink(always_fail=True)
    try:
        project = make_project(admin, host)
        add_rule(admin, host, project, name="broken", events=["task.succeeded"],
                 channel="teams", webhookUrl=sink.url)
        task = admin.post(host.url(f"/api/projects/{project}/environments/dev/deployments"),
                          json={"version": "1"}).json()
        (row,) = settled(admin, host, task["id"], 1)
        assert (row["status"], row["attempts"]) == ("failed", 3)
        assert "HTTP 500" in row["lastError"]
        assert finished(admin, host, task["id"])["status"] == "succeeded"
        activity = admin.get(host.url(f"/api/activity?project={project}&actor=notifier")
                             ).json()["items"]
        assert [a["action"] for a in activity] == ["notification.failed"]
        assert activity[0]["taskId"] == task["id"]
        logs = admin.get(host.url(f"/api/tasks/{task['id']}/logs")).json()["items"]
        assert any("rule 'broken' failed after 3 attempts" in line["text"] for line in logs)
    finally:
        sink.close()


def test_schedules_api_and_the_timer_submitting_a_backup_as_scheduler(
        host: RunningHost, admin: Any) -> None:
    sink = WebhookSink()
    try:
        project = make_project(admin, host)
        add_rule(admin, host, project, name="backups", events=["backup.failed"],
                 channel="teams", webhookUrl=sink.url)
        url = host.url(f"/api/projects/{project}/environments/dev/backup-schedules")
        for body, field in (({"cron": "0 0 25 * * *"}, "cron"),
                            ({"cron": "0 0 2 * * *", "timeZone": "Mars/Base"}, "timeZone"),
                            ({"cron": "0 0 2 * * *", "retainCount": 0}, "retainCount"),
                            ({"cron": "* * * * * *"}, "cron")):
            r = admin.post(url, json=body)
            assert r.status_code in (400, 422) and r.json()["field"] == field, r.text
        reader = host.session("rita", ("reader",))
        assert reader.post(url, json={"cron": "0 0 * * * *"}).status_code == 403
        created = admin.post(url, json={"cron": "0 0 * * * *", "timeZone": "Europe/Amsterdam",
                                        "retainCount": 3})
        assert created.status_code == 201, created.text
        schedule = created.json()
        assert schedule["nextSlotAt"] and schedule["retainCount"] == 3
        with psycopg.connect(host.database_url) as conn:  # as if created two hours ago
            conn.execute("UPDATE backup_schedules SET created_at = now() - interval '2 hours'"
                         " WHERE id = %s", (schedule["id"],))
        runs = timer_runs_finished(host, "scheduled_backups")
        for _ in range(2):
            fire_timer(host, "scheduled_backups")
        # both runs are over (the barrier): the second found the slot taken
        wait_until(lambda: timer_runs_finished(host, "scheduled_backups") >= runs + 2,
                   "both timer runs to end")
        tasks = admin.get(host.url(f"/api/tasks?project={project}")).json()["items"]
        assert [(t["operation"], t["requestedBy"]) for t in tasks] == [("backup", "scheduler")]
        # a noop environment has no agent pool: the backup fails → backup.failed
        assert finished(admin, host, tasks[0]["id"])["status"] == "failed"
        wait_until(lambda: sink.delivered, "the backup.failed card")
        assert facts_of(validate_teams_message(sink.delivered[0]))["Operation"] == "backup"
        assert admin.delete(f"{url}/{schedule['id']}").status_code == 204
        assert admin.get(url).json()["items"] == []
    finally:
        sink.close()


def test_an_expired_sandbox_is_torn_down_through_the_pipeline(
        host: RunningHost, admin: Any) -> None:
    project = make_project(admin, host)
    env_url = host.url(f"/api/projects/{project}/environments")
    create = admin.post(f"{env_url}/dev/sandboxes", json={"name": "try", "ttlHours": 2})
    assert create.status_code == 202, create.text
    assert finished(admin, host, create.json()["id"])["status"] == "succeeded"
    sandbox = admin.get(f"{env_url}/try").json()
    parent = admin.get(f"{env_url}/dev").json()
    extended = admin.post(f"{env_url}/try/extend", json={"hours": 3})
    assert extended.status_code == 200, extended.text
    assert extended.json()["expiresAt"] > sandbox["expiresAt"]
    too_long = admin.post(f"{env_url}/try/extend", json={"hours": 166})
    assert too_long.status_code == 422 and too_long.json()["field"] == "hours"
    reader = host.session("rita", ("reader",))
    assert reader.post(f"{env_url}/try/extend", json={"hours": 1}).status_code == 403
    with psycopg.connect(host.database_url) as conn:  # time passes: the TTL runs out
        conn.execute("UPDATE environments SET expires_at = now() - interval '1 minute'"
                     " WHERE id = %s", (sandbox["id"],))
    fire_timer(host, "sandbox_expiry")
    teardown = wait_until(lambda: [t for t in admin.get(host.url(
        f"/api/tasks?project={project}")).json()["items"]
        if t["operation"] == "sandbox_delete"], "the teardown task")[0]
    done = finished(admin, host, teardown["id"])
    assert done["status"] == "succeeded", done
    assert done["requestedBy"] == "sandbox-expiry"
    assert done["environmentId"] == parent["id"]  # the history moved to the parent
    assert admin.get(f"{env_url}/try").status_code == 404
    activity = admin.get(host.url(f"/api/activity?project={project}&actor=sandbox-expiry")
                         ).json()["items"]
    actions = {a["action"]: a for a in activity}
    assert {"sandbox.expired", "task.created", "environment.deleted"} <= set(actions)
    assert actions["sandbox.expired"]["details"]["reason"].startswith("expired at")
    assert actions["environment.deleted"]["details"]["slug"] == "try"
    logs = admin.get(host.url(f"/api/tasks/{teardown['id']}/logs")).json()["items"]
    assert any("requested by sandbox-expiry: expired at" in line["text"] for line in logs)


def test_teardown_of_an_agent_run_sandbox_drops_its_database_through_an_agent_job(
        host: RunningHost, admin: Any) -> None:
    from tests.pipeline.test_cancel_and_failures import FakeAgent

    agent = FakeAgent(host, admin, ["linux"])
    project = f"n-{uuid.uuid4().hex[:8]}"
    assert admin.post(host.url("/api/projects"), json={"slug": project, "name": "Shop"}
                      ).status_code == 201
    env_url = host.url(f"/api/projects/{project}/environments")
    r = admin.post(env_url, json={"slug": "dev", "name": "Dev", "database": {
        "connection": "main"}, "target": {"type": "agent", "pool": agent.pool,
                                          "labels": ["linux"]}})
    assert r.status_code == 201, r.text
    create = admin.post(f"{env_url}/dev/sandboxes", json={"name": "tmp", "ttlHours": 1})
    # seeded from a fresh backup of dev: the backup job, then the restore into the sandbox
    job = agent.next_job(wait=20)
    assert job is not None and job["kind"] == "backup", job
    dump = b"dump"  # uploaded as a real agent does: a backup without its artifact is forgotten
    assert requests.put(job["payload"]["uploadUrl"], data=dump, timeout=30,
                        headers={"x-ms-blob-type": "BlockBlob"}).status_code < 300
    agent.result(job["id"], "succeeded", result={
        "artifact": job["payload"]["artifact"], "sizeBytes": len(dump),
        "sha256": hashlib.sha256(dump).hexdigest()})
    job = agent.next_job(wait=20)
    assert job is not None and job["kind"] == "restore", job
    agent.result(job["id"], "succeeded", result={})
    assert finished(admin, host, create.json()["id"])["status"] == "succeeded"
    sandbox = admin.get(f"{env_url}/tmp").json()
    database = sandbox["database"]["databaseName"]
    with psycopg.connect(host.database_url) as conn:
        conn.execute("UPDATE environments SET expires_at = now() - interval '1 minute'"
                     " WHERE id = %s", (sandbox["id"],))
    fire_timer(host, "sandbox_expiry")
    job = agent.next_job(wait=20)
    assert job is not None and job["kind"] == "drop_database"
    assert {k: job["payload"][k] for k in ("connection", "database")} == {
        "connection": "main", "database": database}
    assert admin.get(f"{env_url}/tmp").status_code == 200  # not gone before the drop
    agent.result(job["id"], "succeeded", result={"database": database, "dropped": True})
    done = finished(admin, host, job["taskId"])
    assert done["status"] == "succeeded" and done["operation"] == "sandbox_delete"
    assert admin.get(f"{env_url}/tmp").status_code == 404


def test_approval_requested_is_announced_once_while_the_task_waits(
        host: RunningHost, admin: Any) -> None:
    sink = WebhookSink()
    try:
        project = make_project(admin, host)
        add_rule(admin, host, project, name="approvals", events=["approval.requested"],
                 channel="teams", webhookUrl=sink.url)
        r = admin.put(host.url(f"/api/projects/{project}/environments/dev/protection"),
                      json={"operations": ["deploy"],
                            "approvers": [{"type": "user", "id": "ann"}]})
        assert r.status_code == 200, r.text
        task = admin.post(host.url(f"/api/projects/{project}/environments/dev/deployments"),
                          json={"version": "7"}).json()
        wait_until(lambda: sink.delivered, "the approval card")
        card = validate_teams_message(sink.delivered[0])
        facts = facts_of(card)
        assert facts["Outcome"] == "awaiting approval" and facts["Approvers"] == "user ann"
        assert card["actions"][0]["url"] == f"{PUBLIC_URL}/task/?id={task['id']}"
        assert admin.get(host.url(f"/api/tasks/{task['id']}")).json()["status"] == "waiting"
        (row,) = deliveries(admin, host, task["id"])
        assert (row["event"], row["status"]) == ("approval.requested", "delivered")
    finally:
        sink.close()


def test_bad_rules_get_a_problem_naming_the_field_and_readers_cannot_add_them(
        host: RunningHost, admin: Any) -> None:
    project = make_project(admin, host)
    url = host.url(f"/api/projects/{project}/notification-rules")
    base = {"name": "r", "events": ["task.failed"], "channel": "teams",
            "webhookUrl": "https://example.com/hook"}
    for change, field in (({"events": ["task.exploded"]}, "events.0"),
                          ({"webhookUrl": None}, "webhookUrl"),
                          ({"webhookUrl": "ftp://x/y"}, "webhookUrl"),
                          ({"channel": "email", "recipients": ["not-an-address"]},
                           "recipients"),
                          ({"environments": ["nope"]}, "environments.0")):
        r = admin.post(url, json={**base, **change})
        assert r.status_code in (400, 404, 422) and r.json()["field"] == field, r.text
    assert host.session("rita", ("reader",)).post(url, json=base).status_code == 403
    assert admin.post(url, json=base).status_code == 201
    duplicate = admin.post(url, json=base)
    assert duplicate.status_code == 409 and duplicate.json()["field"] == "name"
    assert admin.get(url).json()["items"][0]["webhookUrl"] == "https://example.com/…"


def test_an_edited_rule_keeps_its_hidden_webhook_and_send_a_test_reports_the_outcome(
        host: RunningHost, admin: Any) -> None:
    good, bad = WebhookSink(), WebhookSink(always_fail=True)
    try:
        project = make_project(admin, host)
        rule = add_rule(admin, host, project, name="ops", events=["task.failed"],
                        channel="teams", webhookUrl=good.url)
        url = host.url(f"/api/projects/{project}/notification-rules/{rule['id']}")
        edited = admin.put(url, json={"name": "ops-renamed", "events": ["task.succeeded"],
                                      "environments": ["dev"], "channel": "teams"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["webhookUrl"] == "http://127.0.0.1/…"
        assert edited.json()["environments"] == ["dev"]
        assert "SECRET" not in edited.text

        tested = admin.post(f"{url}/test", json={})
        assert tested.status_code == 200, tested.text
        assert tested.json() == {"ruleId": rule["id"], "channel": "teams",
                                 "delivered": True, "error": None}
        NotificationTestOut.model_validate(tested.json())
        RuleOut.model_validate(edited.json())
        [card] = good.delivered  # the kept URL received it
        assert "ops-renamed" in json.dumps(card)

        assert admin.put(url, json={"name": "ops-renamed", "events": ["task.failed"],
                                    "channel": "teams", "webhookUrl": bad.url}
                         ).status_code == 200
        failed = admin.post(f"{url}/test", json={}).json()
        assert failed["delivered"] is False and "500" in failed["error"]
        assert "SECRET" not in failed["error"]
        switched = admin.put(url, json={"name": "ops-renamed", "events": ["task.failed"],
                                        "channel": "email"})
        assert switched.status_code == 422 and switched.json()["field"] == "recipients"
        operator = host.session("otto", ())
        assert admin.post(host.url(f"/api/projects/{project}/roles"), json={
            "principalType": "user", "principalId": "otto", "role": "operator"}
        ).status_code == 201
        assert operator.post(f"{url}/test", json={}).status_code == 403
        activity = admin.get(host.url(f"/api/activity?project={project}")).json()["items"]
        assert [a["details"]["delivered"] for a in activity
                if a["action"] == "notification_rule.tested"] == [False, True]
    finally:
        good.close()
        bad.close()


def test_an_edited_schedule_lists_its_next_runs_and_starts_no_backup_at_once(
        host: RunningHost, admin: Any) -> None:
    project = make_project(admin, host)
    url = host.url(f"/api/projects/{project}/environments/dev/backup-schedules")
    schedule = admin.post(url, json={"cron": "0 0 3 * * *", "timeZone": "UTC"}).json()
    with psycopg.connect(host.database_url) as conn:  # as if created two days ago
        conn.execute("UPDATE backup_schedules SET created_at = now() - interval '2 days'"
                     " WHERE id = %s", (schedule["id"],))
    edited = admin.put(f"{url}/{schedule['id']}", json={
        "cron": "0 30 * * * *", "timeZone": "Asia/Kolkata", "retainDays": 7})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    ScheduleOut.model_validate(body)  # as documented
    assert (body["cron"], body["timeZone"], body["retainDays"], body["retainCount"]) == (
        "0 30 * * * *", "Asia/Kolkata", 7, None)
    assert len(body["nextSlots"]) == 5 and body["nextSlots"][0] == body["nextSlotAt"]
    # half past in Kolkata (UTC+5:30) is on the hour in UTC
    assert all(slot.endswith(":00:00Z") or slot.endswith(":00:00+00:00")
               for slot in body["nextSlots"]), body["nextSlots"]
    with psycopg.connect(host.database_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM backup_schedules WHERE id = %s",
                           (schedule["id"],)).fetchone()
    # the half-past slot that passed before the edit counts as fired: nothing is due
    assert due_slot(BackupSchedule.from_row(row), datetime.now(UTC)) is None
    paused = admin.put(f"{url}/{schedule['id']}", json={"cron": "0 30 * * * *",
                                                        "enabled": False}).json()
    assert paused["enabled"] is False and paused["nextSlots"] == []
    bad = admin.put(f"{url}/{schedule['id']}", json={"cron": "0 0 * * * *",
                                                     "retainCount": 0})
    assert bad.status_code == 422 and bad.json()["field"] == "retainCount"
    reader = host.session("rita", ("reader",))
    assert reader.put(f"{url}/{schedule['id']}", json={"cron": "0 0 * * * *"}
                      ).status_code == 403
