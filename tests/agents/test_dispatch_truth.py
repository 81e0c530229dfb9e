"""Dispatch that never lies, driven over the agent protocol by hand (issue #22): a job is
handed over only on a poll that is still there and to an agent still allowed to have it;
heartbeats keep only the jobs they name; results and logs carry any characters; a lost
rotation answer can be asked for again; reasons name who and what."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tests.agents.conftest import ControlPlane, held_polls
from tests.waiting import wait_until


def _poll(plane: ControlPlane, key: str, wait: float = 0) -> Any:
    return plane.request("GET", f"/api/agent/jobs/next?wait={wait:g}",
                         headers=plane.as_agent(key))


def _held_polls(plane: ControlPlane) -> int:
    return held_polls()


def _raw_poll(plane: ControlPlane, key: str) -> socket.socket:
    """A long poll sent over a bare socket, so the test can walk away from it."""
    url = urlsplit(plane.base_url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall((f"GET /api/agent/jobs/next?wait=30 HTTP/1.1\r\nHost: {url.netloc}\r\n"
                  f"Authorization: Bearer {key}\r\n\r\n").encode())
    return sock


def test_a_poll_whose_caller_left_never_takes_the_job(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    live, dead = plane.register(pool), plane.register(pool)
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(_poll(plane, live["key"], 30)))
    thread.start()
    wait_until(lambda: _held_polls(plane) >= 1, "the live poll is held")
    # the dead poll is the most recent one, so it would be preferred if it were still there
    sock = _raw_poll(plane, dead["key"])
    wait_until(lambda: _held_polls(plane) >= 2, "the dead poll is held")
    sock.close()  # its agent was stopped (or a proxy cut it)
    wait_until(lambda: _held_polls(plane) == 1, "the host noticed the caller left")
    task = plane.task()
    job = plane.dispatch(task, pool=pool)
    thread.join(30)
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].json()["id"] == str(job)
    row = plane.job(job)
    assert row.agent_id is not None and str(row.agent_id) == live["agentId"]
    assert row.attempts == 1
    assert plane.task_row(task).reason == f"running on agent {live['name']}"


def test_a_claim_whose_answer_cannot_be_delivered_is_undone_untouched(
        control_plane: ControlPlane) -> None:
    from shared.agents import work
    from shared.store import agents as agent_store

    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    task = plane.task()
    job = plane.dispatch(task, pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    with plane.db.transaction() as conn:
        row = agent_store.get_agent(conn, agent["agentId"])
        work.unclaim(conn, row, plane.job(job))
    back = plane.job(job)
    assert back.status == "pending" and back.agent_id is None and back.attempts == 0
    waiting = plane.task_row(task)
    assert waiting.status == "waiting"
    assert waiting.reason.startswith(f"agent {agent['name']} went away before the script job")


def test_an_agent_revoked_during_its_poll_gets_401_and_no_job(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    revoked, other = plane.register(pool), plane.register(pool)
    answers: list[Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(_poll(plane, revoked["key"], 30)))
    thread.start()
    wait_until(lambda: _held_polls(plane) >= 1, "the poll is held")
    resp = plane.request("POST", f"/api/pools/{pool}/agents/{revoked['name']}/revoke",
                         headers=plane.admin)
    assert resp.status_code == 200, resp.text
    job = plane.dispatch(plane.task(), pool=pool, payload={"uploadUrl": "http://secret"})
    thread.join(30)
    assert answers[0].status_code == 401
    assert "secret" not in answers[0].text
    assert plane.job(job).status == "pending"
    assert _poll(plane, other["key"]).json()["id"] == str(job)


def test_a_disabled_agent_s_held_poll_ends_empty(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    disabled, other = plane.register(pool), plane.register(pool)
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(_poll(plane, disabled["key"], 3)))
    thread.start()
    wait_until(lambda: _held_polls(plane) >= 1, "the poll is held")
    assert plane.request("POST", f"/api/pools/{pool}/agents/{disabled['name']}/disable",
                         headers=plane.admin).status_code == 200
    job = plane.dispatch(plane.task(), pool=pool)
    thread.join(30)
    assert answers[0].status_code == 204
    assert _poll(plane, other["key"]).json()["id"] == str(job)


def test_revoking_an_agent_ends_its_job_naming_who_revoked_it(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    task = plane.task()
    job = plane.dispatch(task, pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    plane.request("POST", f"/api/pools/{pool}/agents/{agent['name']}/revoke",
                  headers=plane.admin)
    row = plane.job(job)
    assert row.status == "failed"
    assert row.error == (f"agent {agent['name']} was revoked by service:agents-admin while it held"
                         " the script job")
    late = plane.request("POST", f"/api/agent/jobs/{job}/result",
                         json={"status": "succeeded"}, headers=plane.as_agent(agent["key"]))
    assert late.status_code == 401


def test_a_heartbeat_keeps_only_the_jobs_it_names(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool, capacity=2)
    kept = plane.dispatch(plane.task(), pool=pool)
    dropped_task = plane.task()
    dropped = plane.dispatch(dropped_task, pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    assert _poll(plane, agent["key"]).status_code == 200
    # both claims were made long enough ago not to be on their way to the agent any more
    plane.sql("UPDATE jobs SET claimed_at = claimed_at - interval '1 minute'"
              " WHERE id = ANY(%s)", ([kept, dropped],))
    beat = plane.request("POST", "/api/agent/heartbeat", json={"running": [str(kept)]},
                         headers=plane.as_agent(agent["key"])).json()
    assert beat["abandon"] == [str(dropped)]
    assert plane.job(kept).status == "leased"
    row = plane.job(dropped)
    assert row.status == "failed"
    assert row.error == (f"agent {agent['name']} no longer runs the script job (its"
                         " heartbeat did not list it)")
    wait_until(lambda: "no longer runs the script job" in plane.log_text(dropped_task),
               "the reason is in the task log")


def test_a_job_claimed_just_now_survives_a_heartbeat_sent_before_it_arrived(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    beat = plane.request("POST", "/api/agent/heartbeat", json={"running": []},
                         headers=plane.as_agent(agent["key"])).json()
    assert beat["abandon"] == [] and plane.job(job).status == "leased"


def test_a_re_registered_agent_does_not_inherit_its_old_leases(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    name = f"agent-{secrets.token_hex(3)}"
    first = plane.register(pool, name=name)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, first["key"]).status_code == 200
    plane.register(pool, name=name)
    row = plane.job(job)
    assert row.status == "failed"
    assert row.error == (f"agent {name} registered again; its previous run held the script"
                         " job and is gone")


def test_nul_and_lone_surrogates_are_stored_escaped_never_refused(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    task = plane.task()
    job = plane.dispatch(task, pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    headers = {**plane.as_agent(agent["key"]), "Content-Type": "application/json"}
    # a lone surrogate can only travel as a JSON escape: send the raw text
    logs = plane.request("POST", f"/api/agent/jobs/{job}/logs", headers=headers,
                         data='{"lines": ["before \\ud800 after", "nul \\u0000 here"]}')
    assert logs.status_code == 202, logs.text
    result = plane.request("POST", f"/api/agent/jobs/{job}/result", headers=headers,
                           data=json.dumps({"status": "failed",
                                            "error": "deploy.sh: bad byte \x00 in config",
                                            "result": {"k\x00": "v\udc80"}}))
    assert result.status_code == 200, result.text
    row = plane.job(job)
    assert row.status == "failed" and row.error == "deploy.sh: bad byte \\x00 in config"
    assert row.result == {"k\\x00": "v\\udc80"}
    text = wait_until(lambda: (t := plane.log_text(task)) and "nul" in t and t, "logs stored")
    assert "before \\ud800 after" in text and "nul \\x00 here" in text


def test_the_same_result_sent_again_is_200_and_a_different_one_409(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    body = {"status": "succeeded", "result": {"exitCode": 0}}
    first = plane.request("POST", f"/api/agent/jobs/{job}/result", json=body,
                          headers=plane.as_agent(agent["key"]))
    again = plane.request("POST", f"/api/agent/jobs/{job}/result", json=body,
                          headers=plane.as_agent(agent["key"]))
    assert first.status_code == again.status_code == 200
    assert again.json() == {"jobId": str(job), "status": "succeeded"}
    other = plane.request("POST", f"/api/agent/jobs/{job}/result",
                          json={"status": "failed", "error": "x"},
                          headers=plane.as_agent(agent["key"]))
    assert other.status_code == 409


def test_a_body_over_the_limit_is_413_naming_the_body(control_plane: ControlPlane) -> None:
    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    resp = plane.request("POST", f"/api/agent/jobs/{job}/logs",
                         json={"lines": ["x" * 15000] * 20},
                         headers=plane.as_agent(agent["key"]))
    assert resp.status_code == 413
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["field"] == "body"


def test_a_rotation_whose_answer_was_lost_returns_the_same_key_again(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    agent = plane.register(plane.pool())
    old = plane.as_agent(agent["key"])
    request = {"requestId": secrets.token_urlsafe(24)}
    first = plane.request("POST", "/api/agent/key", json=request, headers=old)
    assert first.status_code == 200, first.text
    again = plane.request("POST", "/api/agent/key", json=request, headers=old)
    assert again.status_code == 200 and again.json()["key"] == first.json()["key"]
    beat = plane.request("POST", "/api/agent/heartbeat", json={},
                         headers=plane.as_agent(first.json()["key"]))
    assert beat.status_code == 200
    other = plane.request("POST", "/api/agent/key",
                          json={"requestId": secrets.token_urlsafe(24)}, headers=old)
    assert other.status_code == 401  # a rotated-out key cannot mint a different key


def test_a_cancel_names_who_asked(control_plane: ControlPlane) -> None:
    from shared.agents.work import cancel_jobs_for_task

    plane = control_plane
    pool = plane.pool()
    plane.register(pool)
    task = plane.task()
    job = plane.dispatch(task, pool=pool)
    with plane.db.transaction() as conn:
        cancel_jobs_for_task(conn, task, datetime.now(UTC), by="user:alice")
    row = plane.job(job)
    assert row.status == "cancelled"
    assert row.error == "cancelled by user:alice before an agent picked it up"


def test_lost_names_when_that_agent_last_renewed_this_job(
        control_plane: ControlPlane) -> None:
    from shared.agents.reaper import reap_expired_leases

    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    # the agent keeps polling (other requests), which must not count as renewing the job
    plane.request("POST", "/api/agent/heartbeat", json={"running": [str(job)]},
                  headers=plane.as_agent(agent["key"]))
    renewed = plane.job(job).renewed_at
    wait_until(lambda: datetime.now(UTC) > renewed, "the clock to pass the last renewal")
    _poll(plane, agent["key"])
    plane.sql("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
              (job,))
    with plane.db.transaction() as conn:
        reap_expired_leases(conn, datetime.now(UTC))
    from shared.api.views import iso

    assert plane.job(job).error == (f"agent lost: no heartbeat since {iso(renewed)}"
                                    f" (agent {agent['name']})")


def test_after_the_control_plane_was_away_leases_get_a_fresh_term(
        control_plane: ControlPlane) -> None:
    from shared.agents.reaper import reap_expired_leases

    plane = control_plane
    pool = plane.pool()
    agent = plane.register(pool)
    job = plane.dispatch(plane.task(), pool=pool)
    assert _poll(plane, agent["key"]).status_code == 200
    now = datetime.now(UTC)
    with plane.db.transaction() as conn:  # one transaction: the host's own reaper waits
        conn.execute("UPDATE jobs SET lease_expires_at = %s WHERE id = %s",
                     (now - timedelta(seconds=30), job))
        # nobody reaped for a minute: the control plane itself was paused or down
        conn.execute("INSERT INTO agent_reaper_runs (id, last_run_at) VALUES (1, %s)"
                     " ON CONFLICT (id) DO UPDATE SET last_run_at = EXCLUDED.last_run_at",
                     (now - timedelta(minutes=1),))
        reap_expired_leases(conn, now, lease=timedelta(seconds=2))
    row = plane.job(job)
    assert row.status == "leased" and row.lease_expires_at >= now + timedelta(seconds=2)
