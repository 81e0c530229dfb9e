"""Activities of the approval gate that protected operations pass before queueing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import azure.durable_functions as df

from functions.payloads import ApprovalOutcome, TaskRef
from shared.domain.task_states import TaskStatus
from shared.services import services
from shared.store import approvals as approval_store
from shared.store import tasks as task_store
from shared.tasks import approvals
from shared.tasks.service import TaskService

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def approval_outcome(payload: dict[str, Any]) -> dict[str, Any]:
    """The current decision; an approved task joins the back of the environment queue."""
    task_id = UUID(TaskRef.from_json(payload).task_id)
    svc = TaskService(services())
    with services().db.transaction() as conn:
        state = ApprovalOutcome.from_json(approvals.approval_state(conn, task_id))
        if state.state == "approved":
            approval_store.join_queue(conn, task_id)
            task = task_store.transition(conn, task_id, TaskStatus.WAITING, actor="system",
                                         reason="approved; joining the environment queue")
        else:
            task = None
    if task is not None:
        svc.publish(task)
        who = ", ".join(d.by or "?" for d in state.decisions if d.decision == "approve")
        svc.log(task, [f"approved by {who}"])
    return state.to_json()
