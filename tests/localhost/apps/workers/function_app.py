"""A test-only app for worker processes (FUNCTIONS_WORKER_PROCESS_COUNT > 1).

Its functions run in other processes than the test, so they record what they saw as JSON
lines in ``$WORKERS_RECORD_DIR/records.jsonl`` (one ``write`` per line, ``O_APPEND``), with
the pid that ran them. A function asked to ``block`` writes ``blocked-<key>`` holding its
pid and waits for the test to kill its process; the next attempt (a Service Bus
redelivery, an activity retry) finds that file and goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _dir() -> Path:
    return Path(os.environ["WORKERS_RECORD_DIR"])


def record(kind: str, **fields: Any) -> None:
    line = json.dumps({"kind": kind, "pid": os.getpid(), **fields}) + "\n"
    fd = os.open(_dir() / "records.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def block_once(key: str) -> None:
    """The first call for ``key`` never returns (until its process is killed)."""
    marker = _dir() / f"blocked-{key}"
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise TimeoutError("nobody killed this worker")


@app.route(route="pid", methods=["GET"])
def pid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"pid": os.getpid(), "q": req.params.get("q"),
                                         "route": req.url}),
                             mimetype="application/json", headers={"x-worker": "yes"})


@app.route(route="fail", methods=["GET"])
def fail(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("failed in the worker")


@app.route(route="unsendable", methods=["GET"])
def unsendable(req: func.HttpRequest) -> Any:
    import threading

    return threading.Lock()  # no process boundary can carry this


@app.service_bus_queue_trigger(arg_name="msg", queue_name="ordered",
                               connection="ServiceBusConnection", is_sessions_enabled=True)
async def ordered(msg: func.ServiceBusMessage) -> None:
    body = json.loads(msg.get_body())
    if body.get("block"):
        await asyncio.to_thread(block_once, f"msg-{msg.message_id}")
    record("message", session=msg.session_id, seq=body.get("seq"), id=msg.message_id,
           delivery_count=msg.delivery_count)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return func.HttpResponse(json.dumps({"id": instance_id, "pid": os.getpid()}),
                             mimetype="application/json")


@app.orchestration_trigger(context_name="context")
def fragile_flow(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=100,
                            max_number_of_attempts=3)
    result = yield context.call_activity_with_retry("fragile", retry, context.get_input())
    return {"result": result, "orchestrator_pid": os.getpid()}


@app.activity_trigger(input_name="payload")
def fragile(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("block"):
        block_once(f"activity-{payload['key']}")
    record("activity", key=payload.get("key"))
    return {"pid": os.getpid()}
