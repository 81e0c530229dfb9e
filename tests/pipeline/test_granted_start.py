"""The environment handed on at finish: the next task starts in the finishing task's
activity and its orchestration receives the decision with ``environment_granted``
(issue #21: one activity and one episode fewer per queued task), and what is published."""

from __future__ import annotations

import uuid
from typing import Any

from functions.activities.tasks import decide, granted_decision
from functions.payloads import EnvironmentDecision
from shared.api.views import task_json
from shared.domain.task_states import TaskStatus
from shared.realtime.events import publish_new_task
from shared.realtime.fake import InMemoryRealtime
from shared.services import Services
from shared.store import projects
from shared.store import tasks as task_store
from shared.tasks.service import TaskService


def _queue(svc: Services, n: int) -> list[Any]:
    with svc.db.transaction() as conn:
        project = projects.create_project(conn, slug=f"g-{uuid.uuid4().hex[:8]}", name="G",
                                          actor="t")
        env = projects.create_environment(conn, project_id=project.id, slug="dev",
                                          name="Dev", target={"type": "noop"}, actor="t")
        made = []
        for _ in range(n):
            task, _ = task_store.create_task(conn, project_id=project.id,
                                             environment_id=env.id, operation="deploy",
                                             parameters={"version": "1"}, requested_by="t")
            made.append(task)
    return made


def _status(svc: Services, task_id: uuid.UUID) -> str:
    with svc.db.transaction() as conn:
        return str(task_store.get_task(conn, task_id).status)


def test_the_finishing_task_starts_the_waiting_one_and_hands_over_its_plan(
        svc: Services) -> None:
    first, second = _queue(svc, 2)
    assert decide(first.id).acquired
    waiting = decide(second.id)
    assert not waiting.acquired and waiting.position == 1
    done = TaskService(svc).finish(first.id, TaskStatus.SUCCEEDED, reason="ok")
    assert done.granted == second.id

    carried = EnvironmentDecision.from_json(granted_decision(second.id))

    assert carried.acquired and carried.task is not None
    assert carried.task.task_id == str(second.id) and carried.task.environment == "dev"
    assert _status(svc, second.id) == "running"
    # the poll that follows a lost event asks again and gets the same answer
    again = decide(second.id)
    assert again.acquired and again.task == carried.task


def test_a_granted_task_not_yet_waiting_is_left_for_its_orchestration(
        svc: Services) -> None:
    first, second = _queue(svc, 2)
    assert decide(first.id).acquired
    done = TaskService(svc).finish(first.id, TaskStatus.SUCCEEDED, reason="ok")
    assert done.granted == second.id

    assert granted_decision(second.id) == {}  # its message may still be on the way
    assert _status(svc, second.id) == "queued"  # so the sweeper can still re-send it


def test_a_started_task_asked_to_stop_before_its_steps_is_ended_by_its_orchestration(
        svc: Services) -> None:
    first, second = _queue(svc, 2)
    assert decide(first.id).acquired
    assert not decide(second.id).acquired
    TaskService(svc).finish(first.id, TaskStatus.SUCCEEDED, reason="ok")
    assert granted_decision(second.id)["acquired"]
    TaskService(svc).request_cancel(second.id, actor="ana")

    answer = decide(second.id)  # its orchestration took the cancel event first

    assert answer.cancelled and not answer.ended and not answer.acquired
    assert _status(svc, second.id) == "running"  # still open: the orchestration ends it


def test_refreshed_queue_positions_reach_a_project_page_as_one_message(
        svc: Services) -> None:
    tasks = _queue(svc, 4)
    for task in tasks:
        decide(task.id)
    rt = svc.realtime
    assert isinstance(rt, InMemoryRealtime)
    rt.sent.clear()

    TaskService(svc).finish(tasks[0].id, TaskStatus.SUCCEEDED, reason="ok")

    project = f"project:{tasks[0].project_id}"
    to_project = [s for s in rt.messages("group", project) if s.target == "taskUpdated"]
    assert [[a["id"] for a in s.args] for s in to_project] == [
        [str(tasks[0].id)], [str(tasks[2].id), str(tasks[3].id)]]
    assert [a["reason"][:10] for a in to_project[1].args] == ["position 1", "position 2"]
    for task in tasks[2:]:  # and each task's own page still gets its new position
        (own,) = rt.messages("group", f"task:{task.id}")
        assert own.args[0]["reason"].startswith("position")


def test_a_new_task_is_announced_to_its_project_only(svc: Services) -> None:
    (task,) = _queue(svc, 1)
    rt = svc.realtime
    assert isinstance(rt, InMemoryRealtime)

    publish_new_task(rt, task_json(task))

    assert [(s.name, s.target) for s in rt.sent] == [
        (f"project:{task.project_id}", "taskUpdated")]


def test_the_closing_log_line_travels_in_the_terminal_snapshot_to_the_task_page(
        svc: Services) -> None:
    (task,) = _queue(svc, 1)
    decide(task.id)
    rt = svc.realtime
    assert isinstance(rt, InMemoryRealtime)
    rt.sent.clear()
    tasks = TaskService(svc)

    closing = tasks.log(task, ["succeeded: done"], publish=False)
    tasks.finish(task.id, TaskStatus.SUCCEEDED, reason="done", closing_log=closing)

    assert [line.text for line in svc.logs.read(str(task.id))][-1] == "succeeded: done"
    (to_project,) = rt.messages("group", f"project:{task.project_id}")
    assert to_project.args[0]["status"] == "succeeded" and "log" not in to_project.args[0]
    (to_task,) = rt.messages("group", f"task:{task.id}")  # no taskLog beside it
    assert to_task.target == "taskUpdated" and to_task.args[0]["status"] == "succeeded"
    log = to_task.args[0]["log"]
    assert log["taskId"] == str(task.id) and log["from"] == closing[0].seq
    assert [line["text"] for line in log["lines"]] == ["succeeded: done"]


def test_closing_lines_of_a_task_that_had_already_ended_still_reach_its_page(
        svc: Services) -> None:
    (task,) = _queue(svc, 1)
    decide(task.id)
    tasks = TaskService(svc)
    tasks.finish(task.id, TaskStatus.SUCCEEDED, reason="done")
    rt = svc.realtime
    assert isinstance(rt, InMemoryRealtime)
    rt.sent.clear()

    closing = tasks.log(task, ["late line"], publish=False)
    done = tasks.finish(task.id, TaskStatus.FAILED, reason="late", closing_log=closing)

    assert done.task is None
    (sent,) = rt.sent
    assert (sent.name, sent.target) == (f"task:{task.id}", "taskLog")
    assert [line["text"] for line in sent.args[0]["lines"]] == ["late line"]
