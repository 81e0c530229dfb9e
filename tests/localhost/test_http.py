"""HTTP triggers through the local host: routes, methods, keys, request/response mapping."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.localhost.conftest import RunningHost, start_host
from tests.waiting import wait_until


def test_int_constraint_picks_the_int_route_and_alpha_the_name_route(basic: RunningHost) -> None:
    assert basic.get("/api/items/42").json() == {"id": 42, "kind": "int"}
    assert basic.get("/api/items/widget").json() == {"name": "widget"}


def test_value_failing_every_constraint_is_404(basic: RunningHost) -> None:
    reply = basic.get("/api/items/4x2")
    assert reply.status == 404
    assert reply.headers["content-type"].startswith("application/problem+json")


def test_catch_all_route_receives_the_rest_of_the_path(basic: RunningHost) -> None:
    reply = basic.get("/api/files/a/b/c.txt")
    assert reply.status == 200 and reply.body == b"a/b/c.txt"


def test_route_literals_match_case_insensitively(basic: RunningHost) -> None:
    assert basic.get("/API/Items/7").json()["id"] == 7


def test_unknown_route_is_404_problem(basic: RunningHost) -> None:
    reply = basic.get("/api/no/such/thing")
    assert reply.status == 404
    assert reply.json()["status"] == 404


def test_wrong_method_is_405_with_allow_header(basic: RunningHost) -> None:
    reply = basic.post("/api/items/1", b"{}")
    assert reply.status == 405
    assert reply.headers["allow"] == "GET"


def test_request_is_mapped_faithfully_and_response_keeps_status_headers_mimetype(
        basic: RunningHost) -> None:
    reply = basic.post("/api/echo?a=1&b=two", json.dumps({"x": [1, 2]}),
                       headers={"Content-Type": "application/json", "X-Test": "hello"})
    assert reply.status == 201
    assert reply.headers["x-echo"] == "yes"
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {"body": {"x": [1, 2]}, "method": "POST",
                            "query": {"a": "1", "b": "two"}, "header": "hello",
                            "principal": None}


def test_malformed_json_reaches_the_function_which_answers_400(basic: RunningHost) -> None:
    reply = basic.post("/api/echo", b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status == 400


def test_oversize_body_is_413_and_the_host_keeps_serving(basic: RunningHost) -> None:
    reply = basic.post("/api/echo", b"x" * (200 * 1024))
    assert reply.status == 413
    assert basic.get("/api/items/1").status == 200


def test_function_level_route_needs_a_key(basic: RunningHost) -> None:
    keys = basic.host.keys
    assert basic.get("/api/secure").status == 401
    assert basic.get("/api/secure?code=wrong").status == 401
    header = basic.get("/api/secure", headers={"x-functions-key": keys.function_keys["default"]})
    assert header.status == 200 and header.body == b"function-level ok"
    assert basic.get(f"/api/secure?code={keys.master_key}").status == 200


def test_admin_level_route_accepts_only_the_master_key(basic: RunningHost) -> None:
    keys = basic.host.keys
    function_key = {"x-functions-key": keys.function_keys["default"]}
    assert basic.get("/api/admin-only", headers=function_key).status == 401
    assert basic.get("/api/admin-only", headers={"x-functions-key": keys.master_key}).status == 200


def test_keys_are_persisted_in_keys_json(basic: RunningHost) -> None:
    data = json.loads((basic.host.state_dir / "keys.json").read_text())
    assert data["functionKeys"]["default"] == basic.host.keys.function_keys["default"]
    assert data["masterKey"] == basic.host.keys.master_key


def test_unhandled_exception_is_500_without_leaking_details(basic: RunningHost) -> None:
    reply = basic.get("/api/boom")
    assert reply.status == 500
    assert b"secret detail" not in reply.body
    assert basic.get("/api/items/1").status == 200


def test_http_out_binding_sets_the_response(basic: RunningHost) -> None:
    reply = basic.get("/api/out-binding")
    assert reply.status == 202 and reply.body == b"via out"


def test_sync_functions_run_off_the_event_loop_concurrently(basic: RunningHost) -> None:
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: basic.get(f"/api/items/{i}"), range(40)))
    assert [r.json()["id"] for r in replies] == list(range(40))


def test_admin_status_requires_master_key(basic: RunningHost) -> None:
    assert basic.get("/admin/host/status").status == 401
    reply = basic.get("/admin/host/status",
                      headers={"x-functions-key": basic.host.keys.master_key})
    assert reply.json()["state"] == "Running"


def test_stop_lets_a_request_in_flight_finish_and_refuses_new_ones(
        basic: RunningHost, tmp_path: Path) -> None:
    running = start_host("basic", tmp_path)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(running.get, "/api/slow?s=1")
        wait_until(lambda: bool(running.host.http and running.host.http.active),
                   "the slow request to be in flight")
        stopped = asyncio.run_coroutine_threadsafe(running.host.stop(), running.loop)
        wait_until(lambda: running.host.http is not None and running.host.http.closed,
                   "the HTTP listener to close")
        refused = running.get("/api/items/1")
        reply = pending.result(timeout=30)
    stopped.result(timeout=30)
    running.loop.call_soon_threadsafe(running.loop.stop)
    running.thread.join(10)
    running.loop.close()
    assert reply.status == 200 and reply.body == b"finished"
    assert refused.status == 503


def test_host_json_custom_headers_are_added_to_api_responses(basic: RunningHost) -> None:
    assert basic.get("/api/items/1").headers["x-content-type-options"] == "nosniff"
    assert basic.get("/api/nope").headers["x-content-type-options"] == "nosniff"


def test_stop_cancels_a_long_running_async_request_after_the_http_grace(
        basic: RunningHost, tmp_path: Path) -> None:
    running = start_host("basic", tmp_path)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(running.get, "/api/slow?s=60")
        wait_until(lambda: bool(running.host.http and running.host.http.active),
                   "the slow request to be in flight")
        running.call(running.host.stop(http_grace=0.2))
        reply = pending.result(timeout=30)
    running.loop.call_soon_threadsafe(running.loop.stop)
    running.thread.join(10)
    running.loop.close()
    assert reply.status == 503
