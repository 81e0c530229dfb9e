"""Job dispatch over the HTTP protocol: routing by pool and labels, fail fast, the long
poll's wake-up, results waking the orchestration, logs, progress and cancel."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.agents.dispatch import NoCapableAgent, waiting_reason
from tests.agents.conftest import ControlPlane, held_polls
from tests.waiting import wait_until


def _poll(plane: ControlPlane, key: str, wait: float = 0) -> Any:
    return plane.request("GET", f"/api/agent/jobs/next?wait={wait:g}",
                         headers=plane.as_agent(key))


def test_job_no_enabled_agent_can_take_fails_fast_with_reason(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    control_plane.register(pool, ["linux"])
    task = control_plane.task()
    with pytest.raises(NoCapableAgent) as err:
        control_plane.dispatch(task, pool=pool, demands=["pg", "linux"])
    assert err.value.detail == f"no enabled agent in pool '{pool}' has labels linux, pg"
    with pytest.raises(NoCapableAgent, match="does not exist"):
        control_plane.dispatch(task, pool="no-such-pool")


def test_jobs_reach_only_agents_of_their_pool_with_every_demanded_label(
        control_plane: ControlPlane) -> None:
    pool, other_pool = control_plane.pool(), control_plane.pool()
    pg = control_plane.register(pool, ["linux", "pg"])
    plain = control_plane.register(pool, ["linux"])
    elsewhere = control_plane.register(other_pool, ["linux", "pg"])
    task = control_plane.task()
    job = control_plane.dispatch(task, pool=pool, demands=["pg"], payload={"argv": ["true"]})
    assert _poll(control_plane, plain["key"]).status_code == 204
    assert _poll(control_plane, elsewhere["key"]).status_code == 204
    got = _poll(control_plane, pg["key"])
    assert got.status_code == 200 and got.json()["id"] == str(job)
    assert got.json()["payload"] == {"argv": ["true"]}
    row = control_plane.task_row(task)
    assert row.status == "running" and row.reason == f"running on agent {pg['name']}"


def test_long_poll_answers_when_a_job_appears_and_one_agent_gets_it(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    agents = [control_plane.register(pool, ["linux"]) for _ in range(3)]
    answers: list[Any] = []

    def poll(key: str) -> None:
        answers.append(_poll(control_plane, key, wait=30))

    threads = [threading.Thread(target=poll, args=(a["key"],)) for a in agents]
    for t in threads:
        t.start()
    wait_until(lambda: held_polls() >= 3, "all three polls to be held")
    task = control_plane.task()
    job = control_plane.dispatch(task, pool=pool, payload={"argv": ["true"]})
    wait_until(lambda: answers, "one poll to answer with the job", timeout=20)
    assert answers[0].status_code == 200
    assert answers[0].json()["id"] == str(job)
    # the two other polls stay held (a job is never given twice); end them with another
    for _ in range(2):
        control_plane.dispatch(control_plane.task(), pool=pool, payload={"argv": ["true"]})
    for t in threads:
        t.join(30)
    ids = [a.json()["id"] for a in answers]
    assert len(ids) == 3 and len(set(ids)) == 3


def test_long_poll_without_work_ends_empty_and_bad_wait_is_400(
        control_plane: ControlPlane) -> None:
    agent = control_plane.register(control_plane.pool())
    started = time.monotonic()
    assert _poll(control_plane, agent["key"], wait=0.3).status_code == 204
    assert time.monotonic() - started >= 0.3
    for bad in ("abc", "-1", "nan"):  # a wait above the host's bound is capped, not refused
        resp = control_plane.request("GET", f"/api/agent/jobs/next?wait={bad}",
                                     headers=control_plane.as_agent(agent["key"]))
        assert resp.status_code == 400 and resp.json()["field"] == "wait"


def test_waiting_reason_says_busy_or_offline(control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    agent = control_plane.register(pool, ["linux"])
    first = control_plane.dispatch(control_plane.task(), pool=pool)
    second = control_plane.dispatch(control_plane.task(), pool=pool)
    with control_plane.db.transaction() as conn:
        reason = waiting_reason(conn, control_plane.job(second), now=datetime.now(UTC))
    assert reason.endswith("none online (1 capable, offline)")
    assert reason.startswith(f"waiting for an agent in pool {pool} with labels (none)")
    control_plane.request("POST", "/api/agent/heartbeat", json={},
                          headers=control_plane.as_agent(agent["key"]))
    assert _poll(control_plane, agent["key"]).json()["id"] == str(first)
    with control_plane.db.transaction() as conn:
        reason = waiting_reason(conn, control_plane.job(second), now=datetime.now(UTC))
    assert reason.endswith(": 1 capable agent busy")


def test_logs_progress_and_result_reach_task_and_wake_the_orchestration(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    agent = control_plane.register(pool)
    headers = control_plane.as_agent(agent["key"])
    task = control_plane.task()
    job = control_plane.dispatch(task, pool=pool)
    assert _poll(control_plane, agent["key"]).status_code == 200
    resp = control_plane.request("POST", f"/api/agent/jobs/{job}/logs", headers=headers,
                                 json={"lines": ["hello", "world"], "progress": 40})
    assert resp.status_code == 202, resp.text
    assert control_plane.task_row(task).progress == 40
    done = control_plane.request("POST", f"/api/agent/jobs/{job}/result", headers=headers,
                                 json={"status": "succeeded", "result": {"exitCode": 0}})
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    row = control_plane.job(job)
    assert row.status == "succeeded" and row.result == {"exitCode": 0}
    # no orchestration instance has this task id here, so the event stays in the outbox
    assert row.event_attempts == 1 and row.event_delivered_at is None
    assert "hello\nworld" in control_plane.log_text(task)
    again = control_plane.request("POST", f"/api/agent/jobs/{job}/result", headers=headers,
                                  json={"status": "failed", "error": "late"})
    assert again.status_code == 409


def test_an_agent_cannot_touch_another_agents_job(control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    owner, intruder = control_plane.register(pool), control_plane.register(pool)
    job = control_plane.dispatch(control_plane.task(), pool=pool)
    assert _poll(control_plane, owner["key"]).status_code == 200
    for path, body in ((f"/api/agent/jobs/{job}/result", {"status": "succeeded"}),
                       (f"/api/agent/jobs/{job}/logs", {"lines": ["x"]})):
        resp = control_plane.request("POST", path, json=body,
                                     headers=control_plane.as_agent(intruder["key"]))
        assert resp.status_code == 404
    bad = control_plane.request("POST", "/api/agent/jobs/not-a-uuid/result",
                                json={"status": "succeeded"},
                                headers=control_plane.as_agent(owner["key"]))
    assert bad.status_code == 404
    invalid = control_plane.request("POST", f"/api/agent/jobs/{job}/result",
                                    json={"status": "done"},
                                    headers=control_plane.as_agent(owner["key"]))
    assert invalid.status_code == 422


def test_cancel_reaches_the_agent_on_its_heartbeat(control_plane: ControlPlane) -> None:
    from shared.agents.work import cancel_jobs_for_task

    pool = control_plane.pool()
    agent = control_plane.register(pool)
    headers = control_plane.as_agent(agent["key"])
    running_task, pending_task = control_plane.task(), control_plane.task()
    running = control_plane.dispatch(running_task, pool=pool)
    pending = control_plane.dispatch(pending_task, pool=pool)
    assert _poll(control_plane, agent["key"]).json()["id"] == str(running)
    with control_plane.db.transaction() as conn:
        cancel_jobs_for_task(conn, running_task, _now())
        effects = cancel_jobs_for_task(conn, pending_task, _now())
    assert [j.status for j in effects.finished] == ["cancelled"]
    assert control_plane.job(pending).status == "cancelled"
    beat = control_plane.request("POST", "/api/agent/heartbeat", headers=headers,
                                 json={"running": [str(running)]})
    assert beat.json()["cancel"] == [str(running)]


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_concurrent_agents_never_receive_the_same_job(control_plane: ControlPlane) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool = control_plane.pool()
    agents = [control_plane.register(pool, capacity=64) for _ in range(8)]
    jobs = {str(control_plane.dispatch(control_plane.task(), pool=pool)) for _ in range(40)}

    def drain(key: str) -> list[str]:
        got = []
        while (resp := _poll(control_plane, key)).status_code == 200:
            got.append(resp.json()["id"])
        return got

    with ThreadPoolExecutor(len(agents)) as ex:
        results = list(ex.map(drain, [a["key"] for a in agents]))
    received = [job for got in results for job in got]
    assert sorted(received) == sorted(jobs)  # every job once, none twice
