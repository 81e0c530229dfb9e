"""Fuzzing the agent protocol endpoints over real HTTP on the local host: malformed JSON
bodies, wrong types, odd headers (Authorization, Content-Type) and hostile ids in paths
and query strings. Every answer is a 4xx (or a 2xx for what happens to be valid) — never
a 5xx, never a dropped connection — and a registered agent keeps working afterwards."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningHost

ENDPOINTS = [("POST", "/api/agent/register"), ("POST", "/api/agent/heartbeat"),
             ("POST", "/api/agent/key"), ("GET", "/api/agent/jobs/next"),
             ("POST", "/api/agent/jobs/{job}/logs"), ("POST", "/api/agent/jobs/{job}/result"),
             ("POST", "/api/agent/jobs/{job}/release")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=15)
shaped = st.fixed_dictionaries({}, optional={
    "token": json_values, "name": json_values, "labels": json_values, "capacity": json_values,
    "running": json_values, "status": st.sampled_from(["succeeded", "failed", "cancelled",
                                                       "weird"]) | json_values,
    "result": json_values, "error": json_values, "lines": json_values, "progress": json_values,
    "version": json_values})
bodies = st.one_of(shaped.map(lambda b: json.dumps(b).encode()),
                   json_values.map(lambda v: json.dumps(v).encode()),
                   st.binary(max_size=300),
                   st.just(b"{" * 5000), st.just(b'{"a":' * 3000))
ids = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=60),
                st.sampled_from(["..", "%00", "0" * 500, "null", "-1", "' OR 1=1 --"]))
waits = st.one_of(st.none(), st.sampled_from(["", "nan", "inf", "-1", "1e999", "0x10", "0.01",
                                              "abc", "9" * 400]))


@pytest.fixture(scope="module")
def agent_key(running_host: RunningHost) -> str:
    admin = running_host.session("alice", ("admin",))
    pool = f"fuzz-{uuid.uuid4().hex[:6]}"
    assert admin.post(running_host.url("/api/pools"), json={"name": pool}).status_code == 201
    token = admin.post(running_host.url(f"/api/pools/{pool}/registration-tokens"),
                       json={}).json()["token"]
    r = requests.post(running_host.url("/api/agent/register"),
                      json={"token": token, "name": "fuzzed", "labels": ["x"]}, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


@given(endpoint=st.sampled_from(ENDPOINTS), body=bodies, job=ids, wait=waits,
       auth=st.sampled_from(["valid", "none", "garbage", "bearer-empty", "basic"]),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/x"]))
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_agent_endpoints_answer_malformed_requests_without_a_server_error(
        running_host: RunningHost, agent_key: str, endpoint: tuple[str, str], body: bytes,
        job: str, wait: str | None, auth: str, content_type: str) -> None:
    method, path = endpoint
    path = path.replace("{job}", quote(job, safe=""))
    if wait is not None:
        path += f"?wait={quote(wait, safe='')}"
    headers = {"Content-Type": content_type,
               "Authorization": {"valid": f"Bearer {agent_key}", "none": "",
                                 "garbage": "Bearer \u00ff" + "x" * 300,
                                 "bearer-empty": "Bearer ", "basic": "Basic Zm9vOmJhcg=="}[auth]}
    headers = {k: v for k, v in headers.items() if v}
    if method == "GET" and auth == "valid":  # keep real long polls short
        path += ("&" if "?" in path else "?") + "wait=0"
    r = requests.request(method, running_host.url(path), data=body if method == "POST" else None,
                         headers={k: v.encode("latin-1", "replace").decode("latin-1")
                                  for k, v in headers.items()}, timeout=30)
    assert r.status_code < 500, (method, path, body[:200], auth, r.status_code, r.text[:300],
                                 "".join(running_host.output[-25:]))


def test_a_registered_agent_still_works_after_the_fuzzing(running_host: RunningHost,
                                                          agent_key: str) -> None:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {agent_key}"
    r = http.post(running_host.url("/api/agent/heartbeat"), json={"running": []})
    assert r.status_code == 200, r.text
    r = http.get(running_host.url("/api/agent/jobs/next?wait=0"))
    assert r.status_code == 204, r.text
    health: Any = requests.get(running_host.url("/api/health"), timeout=10)
    assert health.status_code == 200
