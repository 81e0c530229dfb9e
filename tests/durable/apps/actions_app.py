"""A test-only function app exercising every action the Durable SDK emits.

Idiomatic v2-model code (``df.DFApp`` decorators, generator orchestrators). ``make_app``
builds a fresh app each time because ``get_functions()`` may be called only once per app.
Activities record their calls in ``CALLS`` so tests can count attempts.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

CALLS: Counter[str] = Counter()
_lock = threading.Lock()


def record(key: str) -> int:
    with _lock:
        CALLS[key] += 1
        return CALLS[key]


def make_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.activity_trigger(input_name="value")
    def double(value: int) -> int:
        record("double")
        return value * 2

    @app.activity_trigger(input_name="value")
    async def shout(value: str) -> str:
        return value.upper() + "!"

    @app.activity_trigger(input_name="spec")
    def flaky(spec: dict) -> str:
        n = record(f"flaky:{spec['key']}")
        if n < spec["succeed_on"]:
            raise RuntimeError(f"attempt {n} failed")
        return f"ok after {n}"

    @app.activity_trigger(input_name="message")
    def boom(message: str) -> None:
        raise ValueError(message)

    @app.orchestration_trigger(context_name="context")
    def chain(context: df.DurableOrchestrationContext):
        value = context.get_input()
        for _ in range(3):
            value = yield context.call_activity("double", value)
        shouted = yield context.call_activity("shout", "done")
        return {"value": value, "shouted": shouted}

    @app.orchestration_trigger(context_name="context")
    def sequence(context: df.DurableOrchestrationContext):
        count = 0
        for _ in range(context.get_input()):
            count += (yield context.call_activity("double", 1)) // 2
        return count

    @app.orchestration_trigger(context_name="context")
    def fan_out(context: df.DurableOrchestrationContext):
        tasks = [context.call_activity("double", i) for i in range(context.get_input())]
        results = yield context.task_all(tasks)
        return sum(results)

    @app.orchestration_trigger(context_name="context")
    def with_retry(context: df.DurableOrchestrationContext):
        spec = context.get_input()
        options = df.RetryOptions(first_retry_interval_in_milliseconds=spec["interval_ms"],
                                  max_number_of_attempts=spec["max"])
        try:
            result = yield context.call_activity_with_retry("flaky", options, spec)
        except Exception as exc:  # the last attempt's error after every retry
            return {"failed": str(exc)}
        after = yield context.call_activity("double", 21)
        return {"result": result, "after": after}

    @app.orchestration_trigger(context_name="context")
    def catches_failure(context: df.DurableOrchestrationContext):
        try:
            yield context.call_activity("boom", "kaput")
        except Exception as exc:
            return {"caught": str(exc)}
        return {"caught": None}

    @app.orchestration_trigger(context_name="context")
    def fails(context: df.DurableOrchestrationContext):
        yield context.call_activity("double", 1)
        raise ValueError("orchestrator gave up")

    @app.orchestration_trigger(context_name="context")
    def timer_then_value(context: df.DurableOrchestrationContext):
        start = context.current_utc_datetime
        yield context.create_timer(start + timedelta(milliseconds=context.get_input()))
        return (context.current_utc_datetime - start).total_seconds()

    @app.orchestration_trigger(context_name="context")
    def wait_event(context: df.DurableOrchestrationContext):
        context.set_custom_status("waiting")
        payload = yield context.wait_for_external_event("approval")
        context.set_custom_status("approved")
        return payload

    @app.orchestration_trigger(context_name="context")
    def event_or_timeout(context: df.DurableOrchestrationContext):
        spec = context.get_input()
        deadline = context.current_utc_datetime + timedelta(milliseconds=spec["timeout_ms"])
        timer = context.create_timer(deadline)
        event = context.wait_for_external_event(spec["event"])
        winner = yield context.task_any([event, timer])
        if winner == event:
            timer.cancel()
            return {"event": event.result}
        return {"timeout": True}

    @app.orchestration_trigger(context_name="context")
    def parent(context: df.DurableOrchestrationContext):
        child = yield context.call_sub_orchestrator("chain", context.get_input())
        return {"child": child}

    @app.orchestration_trigger(context_name="context")
    def parent_of_failure(context: df.DurableOrchestrationContext):
        try:
            yield context.call_sub_orchestrator("fails", None, "child-of-" + context.instance_id)
        except Exception as exc:
            return {"child_failed": str(exc)}
        return {"child_failed": None}

    @app.orchestration_trigger(context_name="context")
    def parent_retry(context: df.DurableOrchestrationContext):
        options = df.RetryOptions(first_retry_interval_in_milliseconds=10,
                                  max_number_of_attempts=2)
        try:
            yield context.call_sub_orchestrator_with_retry("fails", options, None)
        except Exception as exc:
            return {"attempts_failed": str(exc)}
        return None

    @app.orchestration_trigger(context_name="context")
    def counter(context: df.DurableOrchestrationContext):
        state = context.get_input()
        n = state["n"] + 1
        if n < state["until"]:
            context.continue_as_new({"n": n, "until": state["until"]})
            return None
        return n

    @app.orchestration_trigger(context_name="context")
    def event_counter(context: df.DurableOrchestrationContext):
        seen = context.get_input() or []
        if len(seen) == 3:
            return seen
        value = yield context.wait_for_external_event("add")
        context.continue_as_new([*seen, value])
        return None

    @app.orchestration_trigger(context_name="context")
    def deterministic(context: df.DurableOrchestrationContext):
        first = context.new_uuid()
        now = context.current_utc_datetime.isoformat()
        yield context.call_activity("double", 1)
        second = context.new_uuid()
        return {"first": first, "second": second, "now": now,
                "replaying_after_yield": context.is_replaying}

    @app.orchestration_trigger(context_name="context")
    def mixed_retries(context: df.DurableOrchestrationContext):
        key = context.get_input()
        fast = df.RetryOptions(first_retry_interval_in_milliseconds=20,
                               max_number_of_attempts=4)
        start = context.current_utc_datetime
        first = yield context.task_all([
            context.call_activity_with_retry("flaky", fast, {"key": f"{key}-a",
                                                             "succeed_on": 3}),
            context.call_activity("double", 1),
            context.create_timer(start + timedelta(milliseconds=30)),
            context.call_activity_with_retry("flaky", fast, {"key": f"{key}-b",
                                                             "succeed_on": 2}),
        ])
        racing = context.call_activity_with_retry("flaky", fast, {"key": f"{key}-c",
                                                                  "succeed_on": 2})
        timeout = context.create_timer(context.current_utc_datetime
                                       + timedelta(milliseconds=5))
        winner = yield context.task_any([racing, timeout])
        late = yield racing  # the retry goes on after losing the race
        last = yield context.call_activity("double", 5)
        return {"first": [first[0], first[1], first[3]], "timer_won": winner == timeout,
                "late": late, "last": last}

    @app.orchestration_trigger(context_name="context")
    def uses_entity(context: df.DurableOrchestrationContext):
        entity = df.EntityId("Counter", "one")
        result = yield context.call_entity(entity, "add", 1)
        return result

    @app.orchestration_trigger(context_name="context")
    def calls_http(context: df.DurableOrchestrationContext):
        response = yield context.call_http("GET", context.get_input())
        return response["statusCode"]

    return app
