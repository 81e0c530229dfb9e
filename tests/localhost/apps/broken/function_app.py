"""A test-only app whose functions are partly misconfigured: the host must still start."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="fine")
def fine(req: func.HttpRequest) -> str:
    return "fine"


@app.route(route="bad/{id:nosuchconstraint}")
def bad_route(req: func.HttpRequest) -> str:
    return "never"


@app.service_bus_queue_trigger(arg_name="msg", queue_name="%UNSET_QUEUE_SETTING%",
                               connection="ServiceBusConnection")
def unnamed_queue(msg: func.ServiceBusMessage) -> None:
    return None


@app.timer_trigger(arg_name="timer", schedule="not a schedule")
def bad_timer(timer: func.TimerRequest) -> None:
    return None


@app.generic_trigger(arg_name="item", type="cosmosDBTrigger", connection="x",
                     database_name="d", container_name="c")
def unsupported(item: str) -> None:
    return None
