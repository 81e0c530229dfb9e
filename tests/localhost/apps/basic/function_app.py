"""A test-only function app exercising the local host: HTTP routes and auth levels,
Service Bus sessions, timers. Records what it saw in module-level lists the tests read."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

seen_messages: list[dict[str, object]] = []
timer_runs: list[dict[str, object]] = []
failures: dict[str, int] = {}
active_sessions: set[str] = set()
max_active_sessions = [0]
_lock = threading.Lock()


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"id": int(req.route_params["id"]), "kind": "int"}),
                             mimetype="application/json")


@app.route(route="items/{name:alpha}", methods=["GET"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"name": req.route_params["name"]}),
                             mimetype="application/json")


@app.route(route="files/{*path}", methods=["GET"])
async def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("path", ""))


@app.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = req.get_json()
    except ValueError:
        return func.HttpResponse('{"title": "Malformed JSON"}', status_code=400,
                                 mimetype="application/problem+json")
    return func.HttpResponse(
        json.dumps({"body": body, "method": req.method, "query": dict(req.params),
                    "header": req.headers.get("x-test"),
                    "principal": req.headers.get("x-ms-client-principal")}),
        status_code=201, headers={"x-echo": "yes"}, mimetype="application/json")


@app.route(route="secure", auth_level=func.AuthLevel.FUNCTION)
def secure(req: func.HttpRequest) -> str:
    return "function-level ok"


@app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin ok")


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret detail that must not leak")


@app.route(route="out-binding")
@app.generic_output_binding(arg_name="res", type="http")
def out_binding(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    res.set(func.HttpResponse("via out", status_code=202))


@app.route(route="noop", methods=["GET"])
async def noop(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.service_bus_queue_trigger(arg_name="msg", queue_name="%BASIC_QUEUE%",
                               connection="ServiceBusConnection", is_sessions_enabled=True)
async def ordered(msg: func.ServiceBusMessage) -> None:
    body = json.loads(msg.get_body())
    active_sessions.add(msg.session_id or "")
    max_active_sessions[0] = max(max_active_sessions[0], len(active_sessions))
    try:
        await asyncio.sleep(body.get("sleep", 0))
    finally:
        active_sessions.discard(msg.session_id or "")
    if body.get("fail_times"):
        with _lock:
            failures[msg.message_id] = failures.get(msg.message_id, 0) + 1
            if failures[msg.message_id] <= body["fail_times"]:
                raise RuntimeError("asked to fail")
    seen_messages.append({
        "session": msg.session_id, "seq": body.get("seq"), "id": msg.message_id,
        "delivery_count": msg.delivery_count, "sequence_number": msg.sequence_number,
        "enqueued": msg.enqueued_time_utc.isoformat() if msg.enqueued_time_utc else None,
        "props": msg.application_properties, "content_type": msg.content_type,
        "scheduled": msg.scheduled_enqueue_time_utc.isoformat()
        if msg.scheduled_enqueue_time_utc else None})


@app.timer_trigger(arg_name="timer", schedule="%BASIC_SCHEDULE%", run_on_startup=False)
def ticker(timer: func.TimerRequest) -> None:
    timer_runs.append({"past_due": timer.past_due, "status": timer.schedule_status,
                       "pid": os.getpid()})


@app.route(route="secure-area/{*rest}", methods=["GET"])
def secure_area(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.headers.get("x-ms-client-principal") or "")


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("s", "0.5")))
    return func.HttpResponse("finished")


topic_messages: list[tuple[str, str]] = []


@app.service_bus_topic_trigger(arg_name="msg", topic_name="events", subscription_name="audit",
                               connection="ServiceBusConnection")
def audit(msg: func.ServiceBusMessage) -> None:
    topic_messages.append(("audit", msg.get_body().decode()))


@app.service_bus_topic_trigger(arg_name="body", topic_name="events", subscription_name="mail",
                               connection="ServiceBusConnection")
def mail(body: str) -> None:
    topic_messages.append(("mail", body))
