"""A test-only app with a function-based entity, in the shape of the SDK's entity samples.

``Counter`` keeps an int (``get_state`` with an initializer, ``operation_name``,
``get_input``, ``set_state``, ``set_result``, ``destruct_on_exit``); orchestrators signal
and call it (``signal_entity``, ``call_entity``, also in parallel through ``task_all``).
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func


def make_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.entity_trigger(context_name="context")
    def Counter(context: df.DurableEntityContext) -> None:
        value = context.get_state(lambda: 0)
        op = context.operation_name
        if op == "add":
            value += context.get_input()
        elif op == "reset":
            value = 0
        elif op == "delete":
            context.destruct_on_exit()
            return
        elif op == "fail":
            raise ValueError(f"cannot {op} at {value}")
        context.set_state(value)
        context.set_result(value)

    @app.orchestration_trigger(context_name="context")
    def signal_then_get(context: df.DurableOrchestrationContext):
        key = context.get_input()
        counter = df.EntityId("Counter", key)
        context.signal_entity(counter, "add", 3)
        context.signal_entity(counter, "add", 4)
        total = yield context.call_entity(counter, "get")
        after = yield context.call_entity(counter, "add", 10)
        return [total, after]

    @app.orchestration_trigger(context_name="context")
    def call_failing(context: df.DurableOrchestrationContext):
        counter = df.EntityId("Counter", context.get_input())
        try:
            yield context.call_entity(counter, "fail")
        except Exception as exc:
            value = yield context.call_entity(counter, "get")
            return {"error": str(exc), "value": value}
        return "no error"

    @app.orchestration_trigger(context_name="context")
    def add_in_parallel(context: df.DurableOrchestrationContext):
        spec = context.get_input()
        counter = df.EntityId("Counter", spec["key"])
        results = yield context.task_all(
            [context.call_entity(counter, "add", 1) for _ in range(spec["n"])])
        return sorted(results)

    @app.orchestration_trigger(context_name="context")
    def add_one(context: df.DurableOrchestrationContext):
        value = yield context.call_entity(df.EntityId("Counter", context.get_input()), "add", 1)
        return value

    return app
