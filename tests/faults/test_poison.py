"""A poison message on the task queue: every delivery fails, Service Bus dead-letters it
after maxDeliveryCount (``MaxDeliveryCountExceeded``), and the dead-letter trigger on
``<queue>/$DeadLetterQueue`` ends its task failed with that reason — not stuck queued.

The message is sent through the emulation's Service Bus REST send API (the same call the
app's local bus adapter makes), signed with the host's key from ``keys.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg.rows import dict_row

from shared.bus.local import sas_token
from shared.store import projects, tasks
from tests.conftest import RunningHost
from tests.faults._harness import make_env, settle
from tests.waiting import wait_until


def _queued_task_without_message(host: RunningHost, project: str) -> tuple[str, str]:
    """A task row as the API records it, whose real message has not been sent yet."""
    with psycopg.connect(host.database_url, row_factory=dict_row) as conn:
        p = projects.get_project(conn, project)
        e = projects.get_environment(conn, p.id, "dev")
        task, _ = tasks.create_task(conn, project_id=p.id, environment_id=e.id,
                                    operation="deploy", parameters={"version": "poison"},
                                    requested_by="alice")
    return str(task.id), str(e.id)


def _send_raw(host: RunningHost, queue: str, body: bytes, props: dict[str, Any]
              ) -> requests.Response:
    key = json.loads((Path(host.home) / "keys.json").read_text())["systemKeys"]["servicebus"]
    url = host.url(f"/servicebus/{queue}/messages")
    return requests.post(url, data=body, timeout=10, headers={
        "Authorization": sas_token(url, "localhost", key),
        "BrokerProperties": json.dumps(props), "Content-Type": "application/json"})


def _dead_letter_queue(host: RunningHost) -> dict[str, Any] | None:
    """The task queue's dead-letter sub-queue as the emulator reports it (None: not yet)."""
    stats = requests.get(host.url("/admin/servicebus"), timeout=10,
                         headers={"x-functions-key": host.master_key}).json()
    sub = [e for e in stats["entities"] if e["name"].lower() == "tasks/$deadletterqueue"]
    return sub[0] if sub else None


def test_a_poison_message_is_dead_lettered_and_its_task_fails_with_the_reason(
        running_host: RunningHost) -> None:
    host = running_host
    admin = host.session("alice", ("admin",))
    project, _ = make_env(admin, host)
    task_id, env_id = _queued_task_without_message(host, project)
    r = _send_raw(host, "tasks", b"{not json", {"SessionId": env_id, "MessageId": task_id})
    assert r.status_code == 201, r.text
    task = settle(host, [task_id], sweep_every=3600)[task_id]  # no sweeper: the DLQ did it
    assert task["status"] == "failed", task
    assert task["reason"] == "dead-lettered: MaxDeliveryCountExceeded"
    assert "delivery attempts" in task["error"]
    dead = requests.get(host.url("/admin/servicebus/tasks/deadletters"), timeout=10,
                        headers={"x-functions-key": host.master_key}).json()["messages"]
    mine = [m for m in dead if m["messageId"] == task_id]
    assert mine and mine[0]["deliveryCount"] == 10
    # the environment was handed on: the next operation runs
    r = admin.post(host.url(f"/api/projects/{project}/environments/dev/deployments"),
                   json={"version": "after"})
    assert settle(host, [r.json()["id"]])[r.json()["id"]]["status"] == "succeeded"


def test_the_dead_letter_sub_queue_refuses_sends(running_host: RunningHost) -> None:
    r = _send_raw(running_host, "tasks/$DeadLetterQueue", b"{}",
                  {"MessageId": "x", "SessionId": "y"})
    assert r.status_code == 400 and "dead-letter" in r.text


def test_a_dead_lettered_message_for_an_ended_task_changes_nothing(
        running_host: RunningHost) -> None:
    host = running_host
    admin = host.session("alice", ("admin",))
    project, _ = make_env(admin, host)
    r = admin.post(host.url(f"/api/projects/{project}/environments/dev/deployments"),
                   json={"version": "1"})
    done_id = r.json()["id"]
    assert settle(host, [done_id])[done_id]["status"] == "succeeded"
    with psycopg.connect(host.database_url) as conn:
        env_id = str(conn.execute("SELECT environment_id FROM tasks WHERE id = %s",
                                  (done_id,)).fetchone()[0])
    handled = (_dead_letter_queue(host) or {"completed": 0})["completed"]
    # poison (no operation) under another message id, whose body names the finished task
    r = _send_raw(host, "tasks", json.dumps({"taskId": done_id}).encode(),
                  {"SessionId": env_id, "MessageId": f"{done_id}-again"})
    assert r.status_code == 201
    wait_until(lambda: (d := _dead_letter_queue(host)) and d["completed"] >= handled + 1
               and d["activeMessages"] == 0, "the dead-letter sub-queue to drain", 20)
    after = admin.get(host.url(f"/api/tasks/{done_id}")).json()
    assert after["status"] == "succeeded" and after["finishedAt"]
