"""Protected environments: which operations need approval, who approves, how many.

A protected operation's task waits *before* it joins the environment queue ("awaiting
approval from …"); approvals and rejections are recorded one per approver; enough
approvals put the task in the queue (behind whatever joined meanwhile), a rejection or
the timeout ends it cancelled with the reason. Runs of a schedule created by someone
allowed to approve are pre-approved, and say so.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from psycopg import Connection
from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from shared.auth import Principal
from shared.auth.principal import BUILTIN_ROLES
from shared.domain.models import Environment, Task
from shared.domain.task_states import TaskStatus
from shared.errors import Conflict, Forbidden, NotFound
from shared.store import activity
from shared.store import approvals as store
from shared.store import tasks as task_store
from shared.store._paging import Key
from shared.tasks.requests import Body

Operation = Literal["deploy", "backup", "restore", "refresh", "restart", "sandbox_create",
                    "script_run"]


class Approver(Body):
    type: Literal["user", "group"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=200,
                                         pattern=r"^[^\x00-\x1f\x7f]+$")]

    @field_validator("id")
    @classmethod
    def _not_everyone(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("type") == "group" and value.lower() in BUILTIN_ROLES:
            raise ValueError(f"{value} is everyone, not a group: it cannot approve")
        return value


class Protection(Body):
    operations: list[Operation] = Field(min_length=1, max_length=7)
    approvers: list[Approver] = Field(min_length=1, max_length=50)
    required_approvals: int = Field(default=1, ge=1, le=10)
    allow_self_approval: bool = False
    timeout_minutes: float = Field(default=1440, ge=0.05, le=43200,
                                   description="minutes; fractions allowed")


class Decision(Body):
    decision: Literal["approve", "reject"]
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


def get_protection(conn: Connection[Any], environment_id: UUID) -> Protection | None:
    row = store.protection_row(conn, environment_id)
    return None if row is None else _protection(row)


def _protection(row: dict[str, Any]) -> Protection:
    return Protection.model_validate({
        "operations": row["operations"], "approvers": row["approvers"],
        "requiredApprovals": row["required_approvals"],
        "allowSelfApproval": row["allow_self_approval"],
        "timeoutMinutes": float(row["timeout_minutes"])})


def protection_json(conn: Connection[Any], environment_id: UUID) -> dict[str, Any] | None:
    """The environment's own approval rule as the API shows it; None: not protected."""
    rule = get_protection(conn, environment_id)
    return None if rule is None else rule.model_dump(mode="json", by_alias=True)


# In a sandbox these still run on what it shares with its parent (the agents, the
# deploy script, the site): the parent's rules follow. Backups and restores act on the
# sandbox's own database.
INHERITED_BY_SANDBOXES = frozenset({"deploy", "restart", "script_run"})


def protection_for(conn: Connection[Any], environment_id: UUID) -> Protection | None:
    """The rule that holds for an environment: its own, or — for a sandbox without one —
    its protected parent's, for the operations that could still touch shared resources."""
    found = store.protection_row_for(conn, environment_id)
    if found is None:
        return None
    row, inherited = found
    if not inherited:
        return _protection(row)
    parent = _protection(row)
    operations = [o for o in parent.operations if o in INHERITED_BY_SANDBOXES]
    return parent.model_copy(update={"operations": operations}) if operations else None


def set_protection(conn: Connection[Any], env: Environment, protection: Protection, *,
                   actor: str) -> Protection:
    data = protection.model_dump(mode="json")
    store.upsert_protection(
        conn, env.id, operations=data["operations"], approvers=data["approvers"],
        required_approvals=protection.required_approvals,
        allow_self_approval=protection.allow_self_approval,
        timeout_minutes=protection.timeout_minutes, actor=actor)
    activity.record(conn, actor=actor, action="environment.protected",
                    project_id=env.project_id, environment_id=env.id,
                    details=protection.model_dump(mode="json", by_alias=True))
    return protection


def remove_protection(conn: Connection[Any], env: Environment, *, actor: str) -> None:
    store.delete_protection(conn, env.id)
    activity.record(conn, actor=actor, action="environment.unprotected",
                    project_id=env.project_id, environment_id=env.id)


def may_approve(principal: Principal, protection: Protection) -> bool:
    """User approvers match the stable id only (a display name can be shared or changed);
    groups match the principal's groups and roles, never the built-in ones."""
    memberships = (principal.groups | principal.roles) - BUILTIN_ROLES
    return any((a.type == "user" and principal.kind == "user" and a.id == principal.id) or
               (a.type == "group" and a.id in memberships) for a in protection.approvers)


# Rows written before users were keyed by id carry ``name:<display name>`` (migration
# 0012): a name is never an identity, but it may still refuse (never grant) a decision.
LEGACY_PREFIX = "name:"


def is_requester(principal: Principal, requested_by: str) -> bool:
    return requested_by in (principal.actor, LEGACY_PREFIX + principal.name)


def _who(protection: Protection) -> str:
    return ", ".join(f"{a.type} {a.id}" for a in protection.approvers)


def awaiting_reason(protection: Protection, approvals: int) -> str:
    return (f"awaiting approval from {_who(protection)} "
            f"({approvals}/{protection.required_approvals})")


def hold_for_approval(conn: Connection[Any], task: Task, env: Environment,
                      pre_approved_by: str | None = None) -> Task:
    """Keep a new task out of the queue if its operation is protected here."""
    protection = protection_for(conn, env.id)
    if protection is None or task.operation not in protection.operations:
        return task
    if pre_approved_by is not None:
        store.set_task_approval(conn, task.id, {
            "state": "pre-approved", "by": pre_approved_by,
            "required": protection.required_approvals})
        return task_store.get_task(conn, task.id)
    store.set_task_approval(conn, task.id, {
        "state": "pending", "required": protection.required_approvals, "approvals": 0,
        "approvers": [a.model_dump() for a in protection.approvers],
        "timeoutMinutes": protection.timeout_minutes}, leave_queue=True)
    return task_store.transition(conn, task.id, TaskStatus.WAITING, actor="system",
                                 reason=awaiting_reason(protection, 0))


def decide(conn: Connection[Any], task_id: UUID, principal: Principal,
           decision: Decision) -> dict[str, Any]:
    """Record one approver's decision; returns the task's approval state."""
    task = task_store.get_task(conn, task_id, for_update=True)
    state = store.task_approval(conn, task_id) or {}
    if state.get("state") != "pending" or TaskStatus(task.status).terminal:
        raise Conflict(f"task {task_id} is not awaiting approval", field="task")
    protection = protection_for(conn, task.environment_id)
    if protection is None or not may_approve(principal, protection):
        raise Forbidden(f"{principal.actor} is not an approver of this environment",
                        actor=principal.actor, project_id=task.project_id, task_id=task.id)
    if not protection.allow_self_approval and is_requester(principal, task.requested_by):
        raise Forbidden("requesters may not approve their own operations here",
                        actor=principal.actor, project_id=task.project_id, task_id=task.id)
    if store.has_decided(conn, task_id, LEGACY_PREFIX + principal.name):
        raise Conflict(f"{principal.actor} already decided on this task (before ids were "
                       "used)", field="decision")
    if not store.record_decision(conn, task_id, approver=principal.actor,
                                 approver_name=principal.name, decision=decision.decision,
                                 comment=decision.comment):
        raise Conflict(f"{principal.actor} already decided on this task", field="decision")
    activity.record(conn, actor=principal.actor, action=f"approval.{decision.decision}",
                    project_id=task.project_id, environment_id=task.environment_id,
                    task_id=task.id, details={"comment": decision.comment})
    return _refresh(conn, task, protection)


def _refresh(conn: Connection[Any], task: Task, protection: Protection) -> dict[str, Any]:
    rows = store.decisions_of(conn, task.id)
    approvals = [r for r in rows if r["decision"] == "approve"]
    rejections = [r for r in rows if r["decision"] == "reject"]
    state = "pending"
    if rejections:
        state = "rejected"
    elif len(approvals) >= protection.required_approvals:
        state = "approved"
    snapshot = {"state": state, "required": protection.required_approvals,
                "approvals": len(approvals),
                "approvers": [a.model_dump() for a in protection.approvers],
                "timeoutMinutes": protection.timeout_minutes,
                "decisions": [{"by": r["approver_name"], "byId": r["approver"],
                               "decision": r["decision"],
                               "comment": r["comment"]} for r in rows]}
    store.set_task_approval(conn, task.id, snapshot)
    if state == "pending":
        task_store.transition(conn, task.id, TaskStatus.WAITING, actor="system",
                              reason=awaiting_reason(protection, len(approvals)))
    return snapshot


def approval_state(conn: Connection[Any], task_id: UUID) -> dict[str, Any]:
    approval = store.task_approval(conn, task_id)
    if approval is None:
        raise NotFound(f"task {task_id} not found", field="task")
    return approval or {"state": "none"}



def pending_key(task: Task) -> Key:
    return (task.seq,)


def pending_for(conn: Connection[Any], principal: Principal,
                project_ids: list[UUID] | None, *, after: Key | None = None,
                limit: int | None = None) -> list[Task]:
    """Tasks awaiting an approval this principal may give, by sequence number.

    Whether the principal may approve is decided here, after the query, so a page reads
    batches of candidates until it holds ``limit`` tasks or the candidates run out."""
    out: list[Task] = []
    seq = after[0] if after else 0
    batch = max(limit or 0, 200)
    while True:
        rows = store.pending_candidates(conn, project_ids, after_seq=seq, limit=batch)
        for row in rows:
            protection = Protection.model_validate({"operations": ["deploy"],
                                                    "approvers": row["approvers"]})
            if may_approve(principal, protection) and (
                    row["allow_self_approval"]
                    or not is_requester(principal, row["requested_by"])):
                out.append(Task.from_row(row))
                if limit is not None and len(out) == limit:
                    return out
        if len(rows) < batch:
            return out
        seq = rows[-1]["seq"]


