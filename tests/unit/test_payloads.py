"""Orchestrator↔activity payloads keep the wire shape history already holds: camelCase,
only the keys the sender set, and every older shape still readable on replay."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.payloads import (
    ApprovalOutcome,
    AppServiceAnswer,
    AppServiceRef,
    EnvironmentDecision,
    Finished,
    FinishTask,
    NotifyPolicy,
    SandboxDeleted,
    StartStep,
)


def test_to_json_writes_camel_case_and_only_the_keys_set() -> None:
    assert EnvironmentDecision(acquired=False, ended=False, approval="pending",
                               timeout_minutes=60.0).to_json() == {
        "acquired": False, "ended": False, "approval": "pending", "timeoutMinutes": 60.0}
    # an explicit None is part of the shape (the plan's refusal: none)
    assert EnvironmentDecision(acquired=True, ended=False, reason="holds the environment",
                               task={"taskId": "t"}, refused=None).to_json() == {
        "acquired": True, "ended": False, "reason": "holds the environment",
        "task": {"taskId": "t"}, "refused": None}


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
