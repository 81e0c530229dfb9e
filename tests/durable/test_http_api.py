"""The Durable HTTP API, driven by the real ``DurableOrchestrationClient`` over loopback.

The client is built from the same ``durableClient`` binding JSON the extension hands to
functions; every call goes through aiohttp to the API on a real port.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import aiohttp
import azure.functions as func
import pytest
from azure.durable_functions.models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus,
)

from tests.durable.apps import actions_app
from tests.durable.harness import api_server, running_engine, until


def run(coro):
    return asyncio.run(coro)


def test_client_starts_with_an_id_and_reads_status_input_and_history() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, api_server(eng) as (_, client):
            iid = await client.start_new("chain", "order-1", 2)
            assert iid == "order-1"
            await eng.wait_for(iid, 10)
            status = await client.get_status(iid, show_history=True, show_history_output=True,
                                             show_input=True)
            assert status.runtime_status == OrchestrationRuntimeStatus.Completed
            assert status.output == {"value": 16, "shouted": "DONE!"}
            assert status.input_ == 2
            kinds = [e["EventType"] for e in status.historyEvents]
            assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
            assert any(e.get("Result") == "4" for e in status.historyEvents)
            bare = await client.get_status(iid)
            assert bare.input_ is None or bare.input_ == 2
            assert not hasattr(bare, "historyEvents")
            missing = await client.get_status("nope")
            assert not missing
    run(main())


def test_starting_a_running_instance_id_is_refused() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, api_server(eng) as (_, client):
            await client.start_new("wait_event", "task-7")
            with pytest.raises(Exception, match="already exists"):
                await client.start_new("wait_event", "task-7")
            with pytest.raises(Exception, match="doesn't exist"):
                await client.start_new("no_such_orchestrator")
    run(main())


def test_raise_event_terminate_suspend_and_resume_through_the_client() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, api_server(eng) as (_, client):
            await client.start_new("wait_event", "w1")
            await client.start_new("wait_event", "w2")
            await until(lambda: _running(client, "w1", "w2"))
            await client.suspend("w1", "pause")
            await until(lambda: _status(client, "w1", "Suspended"))
            await client.raise_event("w1", "approval", {"ok": True})
            await client.resume("w1", "go")
            await until(lambda: _status(client, "w1", "Completed"))
            assert (await client.get_status("w1")).output == {"ok": True}
            await client.terminate("w2", "no longer needed")
            await until(lambda: _status(client, "w2", "Terminated"))
            assert (await client.get_status("w2")).output == "no longer needed"
            with pytest.raises(Exception, match="gone"):
                await client.raise_event("w2", "approval", 1)
            with pytest.raises(Exception, match="found"):
                await client.raise_event("missing", "approval", 1)
    run(main())


async def _status(client, iid: str, status: str) -> bool:
    got = await client.get_status(iid)
    return got.runtime_status is not None and got.runtime_status.value == status


async def _running(client, *iids: str) -> bool:
    return all([await _status(client, i, "Running") for i in iids])


def test_status_queries_filter_by_status_prefix_and_time_then_purge() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, api_server(eng) as (_, client):
            for i in range(3):
                await client.start_new("chain", f"batch-{i}", i)
            await client.start_new("wait_event", "other-1")
            for i in range(3):
                await eng.wait_for(f"batch-{i}", 10)
            everything = await client.get_status_all()
            assert len(everything) == 4
            done = await client.get_status_by(
                runtime_status=[OrchestrationRuntimeStatus.Completed])
            assert sorted(s.instance_id for s in done) == ["batch-0", "batch-1", "batch-2"]
            prefixed = await client.get_status_by(instance_id_prefix="other")
            assert [s.instance_id for s in prefixed] == ["other-1"]
            later = await client.get_status_by(
                created_time_from=datetime.now(UTC) + timedelta(hours=1))
            assert later == []
            purged = await client.purge_instance_history("batch-0")
            assert purged.instances_deleted == 1
            assert not await client.get_status("batch-0")
            with pytest.raises(Exception, match="412"):
                await client.purge_instance_history("other-1")
            by_filter = await client.purge_instance_history_by(
                created_time_from=datetime.now(UTC) - timedelta(hours=1),
                runtime_status=[OrchestrationRuntimeStatus.Completed])
            assert by_filter.instances_deleted == 2
    run(main())


def test_check_status_response_urls_really_work() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, \
                api_server(eng) as (base, client):
            iid = await client.start_new("wait_event")
            request = func.HttpRequest("POST", f"{base}/api/start", body=b"")
            response = client.create_check_status_response(request, iid)
            assert response.status_code == 202
            links = json.loads(response.get_body())
            assert response.headers["Location"] == links["statusQueryGetUri"]
            async with aiohttp.ClientSession() as http:
                async with http.get(links["statusQueryGetUri"]) as got:
                    assert got.status == 202
                    assert (await got.json())["runtimeStatus"] in ("Pending", "Running")
                send = links["sendEventPostUri"].replace("{eventName}", "approval")
                async with http.post(send, json={"via": "webhook"}) as raised:
                    assert raised.status == 202
                await eng.wait_for(iid, 10)
                async with http.get(links["statusQueryGetUri"]) as got:
                    assert got.status == 200
                    assert (await got.json())["output"] == {"via": "webhook"}
                async with http.delete(links["purgeHistoryDeleteUri"]) as purged:
                    assert (await purged.json()) == {"instancesDeleted": 1}
    run(main())


def test_wait_for_completion_returns_the_output_or_the_check_status_links() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, \
                api_server(eng) as (base, client):
            request = func.HttpRequest("POST", f"{base}/api/start", body=b"")
            done = await client.start_new("chain", None, 1)
            response = await client.wait_for_completion_or_create_check_status_response(
                request, done, timeout_in_milliseconds=5000, retry_interval_in_milliseconds=20)
            assert response.status_code == 200
            assert json.loads(response.get_body()) == {"value": 8, "shouted": "DONE!"}
            waiting = await client.start_new("wait_event")
            response = await client.wait_for_completion_or_create_check_status_response(
                request, waiting, timeout_in_milliseconds=100, retry_interval_in_milliseconds=20)
            assert response.status_code == 202
            failed = await client.start_new("fails")
            response = await client.wait_for_completion_or_create_check_status_response(
                request, failed, timeout_in_milliseconds=5000, retry_interval_in_milliseconds=20)
            assert response.status_code == 500
    run(main())


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), [
    ("POST", "orchestrators/chain", "{not json", {"Content-Type": "application/json"}, 400),
    ("POST", "orchestrators/nope", "", {}, 400),
    ("GET", "instances/unknown-id", None, {}, 404),
    ("POST", "instances/unknown-id/terminate", None, {}, 404),
    ("POST", "instances/unknown-id/raiseEvent/x", "1", {"Content-Type": "text/plain"}, 400),
    ("GET", "instances/?runtimeStatus=Sleeping", None, {}, 400),
    ("GET", "instances/?createdTimeFrom=yesterday", None, {}, 400),
    ("DELETE", "instances/", None, {}, 400),
    ("POST", "instances/x/rewind", None, {}, 404),
    ("POST", "entities/Counter/one?op=add", "1", {}, 400),  # no such entity function
])
def test_bad_requests_get_clear_error_answers(method, path, body, headers, status) -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, \
                api_server(eng) as (base, _), aiohttp.ClientSession() as http, \
                http.request(method, f"{base}/durabletask/{path}", data=body,
                             headers=headers) as resp:
            assert resp.status == status
            assert "Message" in await resp.json()
    run(main())


def test_status_list_pages_with_top_and_the_continuation_token() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, \
                api_server(eng) as (base, _), aiohttp.ClientSession() as http:
            for i in range(5):
                await eng.start_new("wait_event", f"page-{i}")
            seen, token = [], ""
            for _ in range(5):
                async with http.get(f"{base}/durabletask/instances/?top=2",
                                    headers={"x-ms-continuation-token": token}) as resp:
                    seen += [s["instanceId"] for s in await resp.json()]
                    token = resp.headers["x-ms-continuation-token"]
                if not token:
                    break
            assert sorted(seen) == [f"page-{i}" for i in range(5)]
    run(main())


def test_restart_starts_the_same_orchestration_again_with_its_input() -> None:
    async def main():
        async with running_engine(actions_app.make_app()) as eng, \
                api_server(eng) as (_, client):
            await client.start_new("chain", "first", 1)
            await eng.wait_for("first", 10)
            # like the Durable extension, the API answers with the check-status payload,
            # which this SDK version hands back as is
            new_id = (await client.restart("first"))["id"]
            assert new_id != "first"
            again = await eng.wait_for(new_id, 10)
            assert json.loads(again.output) == {"value": 8, "shouted": "DONE!"}
            same = await client.restart("first", restart_with_new_instance_id=False)
            assert same["id"] == "first"
            assert json.loads((await eng.wait_for("first", 10)).output)["value"] == 8
    run(main())
