"""Agent keys: registration, what authenticates where, rotation, revocation."""

from __future__ import annotations

from datetime import timedelta

from tests.agents.conftest import ControlPlane


def test_registration_returns_key_once_and_it_authenticates_heartbeats(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    agent = control_plane.register(pool, ["linux", "pg"])
    assert agent["key"].startswith("coa_") and agent["pool"] == pool
    assert agent["labels"] == ["linux", "pg"]
    resp = control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=control_plane.as_agent(agent["key"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["cancel"] == []
    listed = control_plane.request("GET", f"/api/pools/{pool}/agents",
                                   headers=control_plane.admin)
    assert listed.status_code == 200
    assert agent["key"] not in listed.text and "keyHash" not in listed.text
    (entry,) = listed.json()["items"]
    assert entry["status"] == "online" and entry["name"] == agent["name"]


def test_wrong_missing_and_malformed_keys_get_401(control_plane: ControlPlane) -> None:
    for headers in ({}, {"Authorization": "Bearer coa_not-a-real-key-at-all"},
                    {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        resp = control_plane.request("POST", "/api/agent/heartbeat", json={}, headers=headers)
        assert resp.status_code == 401, headers
        assert resp.headers["content-type"].startswith("application/problem+json")


def test_user_credentials_do_not_reach_agent_endpoints(control_plane: ControlPlane) -> None:
    resp = control_plane.request("GET", "/api/agent/jobs/next?wait=0",
                                 headers=control_plane.admin)
    assert resp.status_code == 401


def test_agent_keys_do_not_reach_user_endpoints(control_plane: ControlPlane) -> None:
    agent = control_plane.register(control_plane.pool())
    for headers in (control_plane.as_agent(agent["key"]), {"x-functions-key": agent["key"]}):
        resp = control_plane.request("GET", "/api/pools", headers=headers)
        assert resp.status_code == 401, headers


def test_registration_token_is_single_use_unless_multi_use(control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    token = control_plane.token(pool)
    first = control_plane.request("POST", "/api/agent/register",
                                  json={"token": token, "name": "a1"})
    assert first.status_code == 201
    again = control_plane.request("POST", "/api/agent/register",
                                  json={"token": token, "name": "a2"})
    assert again.status_code == 401
    multi = control_plane.token(pool, multiUse=True, maxUses=2)
    codes = [control_plane.request("POST", "/api/agent/register",
                                   json={"token": multi, "name": f"m{i}"}).status_code
             for i in range(3)]
    assert codes == [201, 201, 401]


def test_expired_registration_token_and_expired_key_get_401(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    token = control_plane.token(pool)
    control_plane.sql("UPDATE registration_tokens SET expires_at = now()"
                               " - interval '1 second' WHERE pool_id = (SELECT id FROM"
                               " agent_pools WHERE name = %s)", (pool,))
    resp = control_plane.request("POST", "/api/agent/register",
                                 json={"token": token, "name": "late"})
    assert resp.status_code == 401
    agent = control_plane.register(pool)
    control_plane.sql("UPDATE agents SET key_expires_at = now() - %s WHERE id = %s",
                               (timedelta(seconds=1), agent["agentId"]))
    resp = control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=control_plane.as_agent(agent["key"]))
    assert resp.status_code == 401


def test_rotation_keeps_old_key_for_grace_then_it_is_rotated_out(
        control_plane: ControlPlane) -> None:
    agent = control_plane.register(control_plane.pool())
    old = control_plane.as_agent(agent["key"])
    rotated = control_plane.request("POST", "/api/agent/key", headers=old)
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["key"]
    assert new_key != agent["key"]
    new = control_plane.as_agent(new_key)
    assert control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=new).status_code == 200
    # within the grace period the old key still works, but may not mint new keys
    assert control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=old).status_code == 200
    assert control_plane.request("POST", "/api/agent/key", headers=old).status_code == 401
    control_plane.sql("UPDATE agents SET previous_key_expires_at = now()"
                               " WHERE id = %s", (agent["agentId"],))
    assert control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=old).status_code == 401
    assert control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=new).status_code == 200


def test_revoked_agent_gets_401_and_disabled_agent_gets_no_work(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    agent = control_plane.register(pool)
    headers = control_plane.as_agent(agent["key"])
    disabled = control_plane.request("POST", f"/api/pools/{pool}/agents/{agent['name']}/disable",
                                     headers=control_plane.admin)
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    task = control_plane.task()
    other = control_plane.register(pool)  # keeps the pool capable so dispatch succeeds
    job = control_plane.dispatch(task, pool=pool, payload={"argv": ["true"]})
    resp = control_plane.request("GET", "/api/agent/jobs/next?wait=0", headers=headers)
    assert resp.status_code == 204
    assert control_plane.job(job).status == "pending"
    revoked = control_plane.request("POST", f"/api/pools/{pool}/agents/{agent['agentId']}/revoke",
                                    headers=control_plane.admin)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert control_plane.request("POST", "/api/agent/heartbeat", json={},
                                 headers=headers).status_code == 401
    assert other["key"] not in revoked.text


def test_admin_endpoints_need_admin_and_validate_input(control_plane: ControlPlane) -> None:
    assert control_plane.request("GET", "/api/pools").status_code == 401
    bad = control_plane.request("POST", "/api/pools", json={"name": "Not Valid"},
                                headers=control_plane.admin)
    assert bad.status_code == 422 and bad.json()["field"] == "name"
    missing = control_plane.request("POST", "/api/pools/nope/registration-tokens", json={},
                                    headers=control_plane.admin)
    assert missing.status_code == 404
    long_lived = control_plane.request("POST", f"/api/pools/{control_plane.pool()}"
                                       "/registration-tokens",
                                       json={"expiresInMinutes": 10**7},
                                       headers=control_plane.admin)
    assert long_lived.status_code == 422
    listed = control_plane.request("GET", "/api/pools", headers=control_plane.admin)
    assert listed.status_code == 200 and "token" not in listed.text


def test_keys_and_tokens_are_stored_hashed_and_never_in_the_activity_log(
        control_plane: ControlPlane) -> None:
    pool = control_plane.pool()
    token = control_plane.token(pool)
    resp = control_plane.request("POST", "/api/agent/register",
                                 json={"token": token, "name": "audited"})
    key = resp.json()["key"]
    rotated = control_plane.request("POST", "/api/agent/key",
                                    headers=control_plane.as_agent(key)).json()["key"]
    dump = control_plane.db.fetch_all(
        "SELECT row_to_json(t)::text AS r FROM (SELECT * FROM activity_log) t"
        " UNION ALL SELECT row_to_json(a)::text FROM agents a"
        " UNION ALL SELECT row_to_json(r)::text FROM registration_tokens r")
    text = "\n".join(row["r"] for row in dump)
    for secret in (token, key, rotated):
        assert secret not in text
    assert "agent.key_rotated" in text and "agent.registered" in text
