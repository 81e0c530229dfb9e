"""Every action type of the Durable SDK, run by the engine over ``apps/actions_app.py``.

Each test runs twice: with extended sessions (the live SDK executor is kept between
episodes) and with full replay through the invoker every episode (the Functions worker
protocol: context JSON in, state JSON out).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from localhost.durable import history as h
from localhost.durable.engine import InstanceExists, InstanceGone
from tests.durable.apps import actions_app
from tests.durable.harness import (
    holds_back,
    outputs,
    run_to_end,
    running_engine,
    status_is,
    until,
)


@pytest.fixture(params=[True, False], ids=["extended-sessions", "full-replay"])
def sessions(request: pytest.FixtureRequest) -> bool:
    return request.param


def run(coro):
    return asyncio.run(coro)


def events_of(inst, event_type: int) -> list[dict]:
    return [ev for ev in inst.history.events if ev["EventType"] == event_type]


def test_activity_chain_passes_each_result_on(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "chain", 3)
            assert outputs(inst) == {"value": 24, "shouted": "DONE!"}
            assert len(events_of(inst, h.TASK_SCHEDULED)) == 4
            assert len(events_of(inst, h.TASK_COMPLETED)) == 4
            assert inst.history.events[1]["EventType"] == h.EXECUTION_STARTED
            assert "Version" in inst.history.events[1]
    run(main())


def test_fan_out_of_100_activities_gathers_every_result(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "fan_out", 100)
            assert outputs(inst) == sum(2 * i for i in range(100))
            ids = sorted(ev["EventId"] for ev in events_of(inst, h.TASK_SCHEDULED))
            assert ids == list(range(100))
    run(main())


@pytest.mark.parametrize("succeed_on", [1, 3])
def test_retry_runs_attempts_with_the_configured_interval(sessions: bool,
                                                          succeed_on: int) -> None:
    key = f"ok-{sessions}-{succeed_on}"
    spec = {"key": key, "succeed_on": succeed_on, "max": 5, "interval_ms": 30}

    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "with_retry", spec)
            assert outputs(inst) == {"result": f"ok after {succeed_on}", "after": 42}
            assert actions_app.CALLS[f"flaky:{key}"] == succeed_on
            timers = events_of(inst, h.TIMER_CREATED)
            assert len(timers) == succeed_on - 1
            for timer in timers:  # each retry waits exactly first_retry_interval
                delay = h.parse_iso(timer["FireAt"]) - h.parse_iso(timer["Timestamp"])
                assert delay.total_seconds() * 1000 == pytest.approx(30)
            # ids follow the SDK: attempt n, timer n+1, attempt n+2, then the next call
            scheduled = [ev["EventId"] for ev in events_of(inst, h.TASK_SCHEDULED)]
            assert scheduled == [*range(0, 2 * succeed_on, 2), 2 * succeed_on - 1]
    run(main())


def test_retry_gives_up_after_max_attempts_with_the_last_error(sessions: bool) -> None:
    key = f"never-{sessions}"
    spec = {"key": key, "succeed_on": 99, "max": 3, "interval_ms": 10}

    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "with_retry", spec)
            assert actions_app.CALLS[f"flaky:{key}"] == 3
            assert "attempt 3 failed" in outputs(inst)["failed"]
            assert len(events_of(inst, h.TASK_FAILED)) == 3
    run(main())


def test_activity_exception_reaches_the_orchestrator_as_task_failed(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "catches_failure")
            assert "ValueError: kaput" in outputs(inst)["caught"]
            (failed,) = events_of(inst, h.TASK_FAILED)
            assert "kaput" in failed["Reason"]
            assert "Traceback" in failed["Details"]
    run(main())


def test_orchestrator_exception_fails_the_instance_with_its_message(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "fails")
            assert inst.status == "Failed"
            assert "orchestrator gave up" in outputs(inst)
    run(main())


def test_timer_resumes_with_time_taken_from_history(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "timer_then_value", 150)
            assert outputs(inst) >= 0.15
            (fired,) = events_of(inst, h.TIMER_FIRED)
            assert h.parse_iso(fired["Timestamp"]) >= h.parse_iso(fired["FireAt"])
    run(main())


def test_external_event_raised_after_the_orchestrator_waits(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            iid = await eng.start_new("wait_event")
            await until(lambda: _custom(eng, iid, "waiting"))
            await eng.raise_event(iid, "approval", json.dumps({"by": "ann"}))
            inst = await eng.wait_for(iid, 10)
            assert outputs(inst) == {"by": "ann"}
            assert json.loads(inst.custom_status) == "approved"
    run(main())


async def _custom(eng, iid: str, value: str) -> bool:
    inst = await eng.get(iid)
    return inst is not None and inst.custom_status == json.dumps(value)


def test_external_event_raised_before_the_wait_is_buffered(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            iid = await eng.start_new("wait_event")
            await eng.raise_event(iid, "approval", json.dumps("early"))  # before episode 1
            inst = await eng.wait_for(iid, 10)
            assert outputs(inst) == "early"
    run(main())


def test_task_any_returns_the_timer_when_no_event_comes(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "event_or_timeout",
                                    {"event": "job:1", "timeout_ms": 100})
            assert outputs(inst) == {"timeout": True}
    run(main())


def test_task_any_returns_the_event_when_it_wins_the_race(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            iid = await eng.start_new("event_or_timeout", None, json.dumps(
                {"event": "job:2", "timeout_ms": 60_000}))
            await eng.raise_event(iid, "job:2", json.dumps({"exit": 0}))
            inst = await eng.wait_for(iid, 10)
            assert outputs(inst) == {"event": {"exit": 0}}
    run(main())


def test_sub_orchestration_returns_the_child_output(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "parent", 1, instance_id="p1")
            assert outputs(inst) == {"child": {"value": 8, "shouted": "DONE!"}}
            child = await eng.get("p1:0")
            assert child is not None and child.status == "Completed"
            assert child.parent["instance_id"] == "p1"
    run(main())


def test_sub_orchestration_failure_propagates_to_the_parent(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "parent_of_failure", instance_id="p2")
            assert "orchestrator gave up" in outputs(inst)["child_failed"]
            child = await eng.get("child-of-p2")
            assert child is not None and child.status == "Failed"
    run(main())


def test_sub_orchestration_retry_starts_a_new_child_per_attempt(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "parent_retry", instance_id="p3")
            assert "orchestrator gave up" in outputs(inst)["attempts_failed"]
            attempts = [await eng.get(i) for i in ("p3:0", "p3:2")]
            assert [a.status for a in attempts] == ["Failed", "Failed"]
    run(main())


def test_terminate_while_waiting_ends_the_instance(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            iid = await eng.start_new("wait_event")
            await until(lambda: _custom(eng, iid, "waiting"))
            await eng.terminate(iid, "operator said stop")
            inst = await eng.wait_for(iid, 10)
            assert inst.status == "Terminated"
            assert outputs(inst) == "operator said stop"
            with pytest.raises(InstanceGone):
                await eng.raise_event(iid, "approval", "1")
    run(main())


def test_suspended_instance_holds_events_until_resumed(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            iid = await eng.start_new("wait_event")
            await until(lambda: _custom(eng, iid, "waiting"))
            await eng.suspend(iid, "maintenance")
            await until(lambda: status_is(eng, iid, "Suspended"))
            await eng.raise_event(iid, "approval", json.dumps(1))
            # barrier: the engine has looked at the event and held it back
            await until(lambda: holds_back(eng, iid), what="the event to be held back")
            assert (await eng.get(iid)).status == "Suspended"
            await eng.resume(iid, "done")
            inst = await eng.wait_for(iid, 10)
            assert outputs(inst) == 1
    run(main())


def test_continue_as_new_restarts_with_the_new_input(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "counter", {"n": 0, "until": 5})
            assert outputs(inst) == 5
            assert inst.history.events[1]["EventType"] == h.EXECUTION_STARTED
            assert json.loads(inst.input) == {"n": 4, "until": 5}
    run(main())


def test_continue_as_new_carries_unprocessed_events_over(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            iid = await eng.start_new("event_counter")
            for value in ("a", "b", "c"):
                await eng.raise_event(iid, "add", json.dumps(value))
            inst = await eng.wait_for(iid, 10)
            assert outputs(inst) == ["a", "b", "c"]
    run(main())


def test_continue_as_new_can_drop_unprocessed_events(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions,
                                  preserve_unprocessed_events=False) as eng:
            iid = await eng.start_new("event_counter")
            for value in ("a", "b", "c"):
                await eng.raise_event(iid, "add", json.dumps(value))
            await until(lambda: _waiting_with_input(eng, iid, ["a"]))
            await eng.raise_event(iid, "add", json.dumps("d"))
            await until(lambda: _waiting_with_input(eng, iid, ["a", "d"]))
            await eng.raise_event(iid, "add", json.dumps("e"))
            inst = await eng.wait_for(iid, 10)
            assert outputs(inst) == ["a", "d", "e"]
    run(main())


async def _waiting_with_input(eng, iid: str, expected: list) -> bool:
    inst = await eng.get(iid)
    return (inst is not None and inst.input == json.dumps(expected)
            and inst.book.waits.get("add") == 1 and not inst.inbox)


def test_new_uuid_and_current_time_are_deterministic_on_replay(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "deterministic")
            out = outputs(inst)
            started = events_of(inst, h.ORCHESTRATOR_STARTED)[0]["Timestamp"]
            assert h.parse_iso(out["now"]) == h.parse_iso(started)
            assert out["first"] != out["second"]
            assert out["replaying_after_yield"] is False
            return inst
    inst = run(main())
    # replaying the stored history through the SDK again yields the very same output
    from azure.durable_functions.models.DurableOrchestrationContext import (
        DurableOrchestrationContext,
    )
    from azure.durable_functions.orchestrator import Orchestrator

    app = actions_app.make_app()
    fn = next(f for f in app.get_functions() if f.get_function_name() == "deterministic")
    replay = inst.history.events[:-1]  # without ExecutionCompleted
    ctx = DurableOrchestrationContext.from_json(json.dumps({
        "history": replay, "instanceId": inst.instance_id, "isReplaying": True,
        "parentInstanceId": None, "input": inst.input, "upperSchemaVersion": 1}))
    state = json.loads(Orchestrator(fn.get_user_function().orchestrator_function).handle(ctx))
    assert state["output"] == outputs(inst)


def test_calling_an_entity_with_no_function_fails_the_instance_clearly(sessions: bool
                                                                      ) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "uses_entity")
            assert inst.status == "Failed"
            assert "The entity function 'counter' doesn't exist" in outputs(inst)
    run(main())


def test_starting_a_running_id_is_refused_and_a_finished_one_replaced(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            await eng.start_new("wait_event", "same")
            with pytest.raises(InstanceExists):
                await eng.start_new("wait_event", "same")
            await eng.raise_event("same", "approval", json.dumps(1))
            await eng.wait_for("same", 10)
            await eng.start_new("chain", "same", json.dumps(1))
            inst = await eng.wait_for("same", 10)
            assert (inst.name, outputs(inst)) == ("chain", {"value": 8, "shouted": "DONE!"})
    run(main())


def test_call_http_runs_the_request_and_returns_the_response(sessions: bool) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def main():
        hits = []

        async def hello(request: web.Request) -> web.Response:
            hits.append(request.method)
            return web.json_response({"hello": "world"}, status=201)

        web_app = web.Application()
        web_app.router.add_get("/hello", hello)
        server = TestServer(web_app, host="127.0.0.1")
        await server.start_server()
        try:
            async with running_engine(actions_app.make_app(),
                                      extended_sessions=sessions) as eng:
                inst = await run_to_end(eng, "calls_http", str(server.make_url("/hello")))
        finally:
            await server.close()
        assert outputs(inst) == 201
        assert hits == ["GET"]
    run(main())


def test_function_names_are_matched_case_insensitively(sessions: bool) -> None:
    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "CHAIN", 1)
            assert outputs(inst) == {"value": 8, "shouted": "DONE!"}
            assert inst.name == "CHAIN"
    run(main())


def test_retries_interleaved_with_other_tasks_keep_sdk_task_ids(sessions: bool) -> None:
    """Retry timers and re-attempts take ids while other tasks complete around them;
    replaying the stored history through the SDK again must reach the same end."""
    key = f"mixed-{sessions}"

    async def main():
        async with running_engine(actions_app.make_app(), extended_sessions=sessions) as eng:
            inst = await run_to_end(eng, "mixed_retries", key)
            return inst
    inst = run(main())
    out = outputs(inst)
    assert out["first"] == ["ok after 3", 2, "ok after 2"]
    assert out["late"] == "ok after 2" and out["last"] == 10
    assert [actions_app.CALLS[f"flaky:{key}-{x}"] for x in "abc"] == [3, 2, 2]

    from azure.durable_functions.models.DurableOrchestrationContext import (
        DurableOrchestrationContext,
    )
    from azure.durable_functions.orchestrator import Orchestrator

    app = actions_app.make_app()
    fn = next(f for f in app.get_functions() if f.get_function_name() == "mixed_retries")
    ctx = DurableOrchestrationContext.from_json(json.dumps({
        "history": inst.history.events[:-1], "instanceId": inst.instance_id,
        "isReplaying": True, "parentInstanceId": None, "input": inst.input,
        "upperSchemaVersion": 1}))
    state = json.loads(Orchestrator(fn.get_user_function().orchestrator_function).handle(ctx))
    assert state["isDone"] and state["output"] == out
