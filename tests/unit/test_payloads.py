"""Orchestrator↔activity payloads keep the wire shape history already holds: camelCase,
only the keys the sender set, and every older shape still readable on replay."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.payloads import (
    ApprovalOutcome,
    AppServiceAnswer,
    AppServiceRef,
    DispatchJob,
    EnvironmentDecision,
    Finished,
    FinishTask,
    NoArguments,
    NotifyPolicy,
    OtherJob,
    RestartJob,
    RestoreJob,
    SandboxDeleted,
    ScriptJob,
    StartStep,
    TaskPlan,
)

# the plan acquire_environment has written since sandboxes learned their kind
PLAN = {"taskId": "t", "operation": "deploy", "parameters": {"version": "1.2"},
        "requestedBy": "user:ann", "project": "shop", "environment": "staging",
        "environmentId": "e1", "environmentKind": "shared",
        "target": {"type": "agent", "pool": "p"}, "database": {"connection": "db"},
        "url": None}


def test_to_json_writes_camel_case_and_only_the_keys_set() -> None:
    assert EnvironmentDecision(acquired=False, ended=False, approval="pending",
                               timeout_minutes=60.0).to_json() == {
        "acquired": False, "ended": False, "approval": "pending", "timeoutMinutes": 60.0}
    # an explicit None is part of the shape (the plan's refusal: none)
    assert EnvironmentDecision(acquired=True, ended=False, reason="holds the environment",
                               task=TaskPlan.from_json(PLAN), refused=None).to_json() == {
        "acquired": True, "ended": False, "reason": "holds the environment",
        "task": PLAN, "refused": None}


def test_the_dicts_written_before_the_models_read_back_unchanged() -> None:
    written = {"taskId": "t", "status": "failed", "reason": "boom", "error": "boom: x",
               "log": ["failed: boom"]}
    assert FinishTask.from_json(written).to_json() == written
    step = {"taskId": "t", "reason": "deploying", "progress": 10, "log": []}
    assert StartStep.from_json(step).to_json() == step
    done = {"finished": True, "notify": {"attempts": 3, "firstRetryMs": 2000}}
    parsed = Finished.from_json(done)
    assert parsed.notify == NotifyPolicy(attempts=3, first_retry_ms=2000)
    assert parsed.to_json() == done


def test_open_payloads_carry_their_other_keys_along() -> None:
    health = {"healthy": False, "where": "slot", "url": None, "detail": "503", "log": ["x"]}
    answer = AppServiceAnswer.from_json(health)
    assert answer.healthy is False and answer.field("where") == "slot"
    assert answer.to_json() == health
    snapshot = {"state": "rejected", "required": 1, "approvals": 0,
                "decisions": [{"by": "Ann", "byId": "user:1", "decision": "reject",
                               "comment": "not now"}]}
    state = ApprovalOutcome.from_json(snapshot)
    assert [d.comment for d in state.decisions] == ["not now"]
    assert state.to_json() == snapshot
    assert SandboxDeleted(deleted=True, sandbox="s1", backupsDeleted=2).to_json() == {
        "deleted": True, "sandbox": "s1", "backupsDeleted": 2}


def test_a_copy_with_one_more_key_sends_it() -> None:
    ref = AppServiceRef(task_id="t", target={"type": "appservice"}, version="1.0")
    assert ref.model_copy(update={"where": "slot"}).to_json() == {
        "taskId": "t", "target": {"type": "appservice"}, "version": "1.0", "where": "slot"}


def test_a_payload_missing_a_required_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        FinishTask.from_json({"taskId": "t", "reason": "no status"})


def test_the_task_plan_reads_every_shape_history_holds() -> None:
    plan = TaskPlan.from_json(PLAN)
    assert (plan.task_id, plan.environment, plan.parameters["version"]) == (
        "t", "staging", "1.2")
    assert plan.to_json() == PLAN
    # plans written before environmentKind (and before the plan was a model) still replay
    older = {k: v for k, v in PLAN.items() if k != "environmentKind"}
    assert TaskPlan.from_json(older).environment_kind is None
    assert TaskPlan.from_json(older).to_json() == older
    with pytest.raises(ValidationError):
        TaskPlan.from_json({"taskId": "t"})


def test_a_job_overridden_by_its_success_is_noted_on_the_plan() -> None:
    plan = TaskPlan.from_json(PLAN)
    plan.cancel_overridden_by = "cancel was requested by ann"
    assert plan.to_json() == {**PLAN, "cancelOverriddenBy": "cancel was requested by ann"}
    with pytest.raises(ValidationError):
        plan.environment_id = None  # type: ignore[assignment]  # the assignment is checked


@pytest.mark.parametrize(("kind", "request_", "model"), [
    ("backup", {}, NoArguments),
    ("drop_database", {}, NoArguments),
    ("restore", {"backupId": "b1", "targetEnvironmentId": "e2"}, RestoreJob),
    ("script", {"script": "migrate", "parameters": {"version": "1.2"}}, ScriptJob),
    ("restart", {"cluster": "aks", "namespace": "shop", "workload": "web",
                 "kind": "deployment"}, RestartJob),
    ("restart", {"kind": "service", "service": "api", "environment": "staging"}, RestartJob),
    ("future_kind", {"anything": 1}, OtherJob),
])
def test_a_job_request_reads_as_its_kind_and_writes_back_unchanged(
        kind: str, request_: dict[str, object], model: type) -> None:
    written = {"taskId": "t", "kind": kind, "payload": request_,
               "deadlineAt": "2026-01-01T01:00:00+00:00"}
    asked = DispatchJob.from_json(written)
    assert type(asked.payload) is model
    assert asked.to_json() == written


def test_a_job_request_built_in_code_sends_only_what_it_names() -> None:
    assert DispatchJob(task_id="t", kind="restore",
                       payload=RestoreJob(backup_id="b1")).to_json() == {
        "taskId": "t", "kind": "restore", "payload": {"backupId": "b1"}}
    assert DispatchJob(task_id="t", kind="backup", payload=NoArguments()).to_json() == {
        "taskId": "t", "kind": "backup", "payload": {}}


def test_a_job_request_missing_what_its_kind_needs_is_refused() -> None:
    with pytest.raises(ValidationError):
        DispatchJob.from_json({"taskId": "t", "kind": "restore", "payload": {}})
    with pytest.raises(ValidationError):
        DispatchJob.from_json({"taskId": "t", "kind": "script", "payload": {"parameters": {}}})
