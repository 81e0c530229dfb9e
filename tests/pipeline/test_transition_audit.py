"""A task's transition writes its audit entry in the same statement (no secrets to mask),
or masks the task's secret values from the row and the entry first; either way one
entry per change, with the same details."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.domain.task_states import TaskStatus
from shared.services import Services
from shared.store import activity, projects
from shared.store import tasks as task_store

SECRET = "s3cret-value-123456"


def _task(svc: Services, secrets: dict[str, Any] | None) -> Any:
    with svc.db.transaction() as conn:
        project = projects.create_project(conn, slug=f"a-{uuid.uuid4().hex[:8]}", name="A",
                                          actor="t")
        env = projects.create_environment(conn, project_id=project.id, slug="dev",
                                          name="Dev", target={"type": "noop"}, actor="t")
        task, _ = task_store.create_task(conn, project_id=project.id, environment_id=env.id,
                                         operation="deploy", parameters={"version": "1"},
                                         requested_by="t", secrets=secrets)
    return task


def _entries(svc: Services, task_id: Any) -> list[Any]:
    with svc.db.transaction() as conn:
        return [e for e in activity.list_activity(conn, task_id=task_id)
                if e.action.startswith("task.") and e.action != "task.created"]


def test_each_change_is_audited_once_with_what_it_changed(svc: Services) -> None:
    task = _task(svc, None)
    with svc.db.transaction() as conn:
        task_store.transition(conn, task.id, TaskStatus.WAITING, actor="system",
                              reason="position 1")
        task_store.transition(conn, task.id, TaskStatus.WAITING, actor="system",
                              reason="position 1")  # no change of status: no entry
        moved = task_store.transition(conn, task.id, TaskStatus.FAILED, actor="system",
                                      reason="see https://x.example/?sig=abc", error="boom")
    assert moved.status == "failed" and "abc" not in (moved.reason or "")
    failed, waiting = _entries(svc, task.id)  # newest first
    assert (waiting.action, waiting.details) == (
        "task.waiting", {"from": "queued", "reason": "position 1", "error": None})
    assert failed.action == "task.failed" and failed.details["from"] == "waiting"
    assert failed.details["error"] == "boom" and "abc" not in failed.details["reason"]


def test_a_tasks_secret_values_are_masked_in_its_row_and_its_entry(svc: Services) -> None:
    task = _task(svc, {"token": SECRET})
    with svc.db.transaction() as conn:
        moved = task_store.transition(conn, task.id, TaskStatus.FAILED, actor="system",
                                      reason=f"ran --token={SECRET}",
                                      error=f"exit 1: --token={SECRET}")
        stored = task_store.get_task(conn, task.id)
    for row in (moved, stored):
        assert (row.reason, row.error) == ("ran --token=***", "exit 1: --token=***")
    (entry,) = _entries(svc, task.id)
    assert entry.details == {"from": "queued", "reason": "ran --token=***",
                             "error": "exit 1: --token=***"}


def test_a_transition_outside_a_transaction_is_refused_and_writes_nothing(
        svc: Services) -> None:
    """The texts are masked after the write, so an autocommit connection would publish
    the secret for a moment: refused before anything is written."""
    task = _task(svc, {"token": SECRET})
    with svc.db.statements() as conn, pytest.raises(RuntimeError, match="inside a transaction"):
        task_store.transition(conn, task.id, TaskStatus.FAILED, actor="system",
                              reason=f"ran --token={SECRET}")
    with svc.db.transaction() as conn:
        assert task_store.get_task(conn, task.id).status == "queued"
    assert _entries(svc, task.id) == []
