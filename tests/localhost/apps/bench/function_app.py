"""A test-only app for the local host benchmarks: no-op HTTP and Service Bus functions."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

processed = [0]


@app.route(route="noop", methods=["GET"])
async def noop(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.route(route="noop-sync", methods=["GET"])
def noop_sync(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.service_bus_queue_trigger(arg_name="msg", queue_name="bench",
                               connection="ServiceBusConnection", is_sessions_enabled=True)
async def drain(msg: func.ServiceBusMessage) -> None:
    processed[0] += 1
