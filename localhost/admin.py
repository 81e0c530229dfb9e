"""The host's admin API for functions, as the real host exposes it (master key only).

``POST /admin/functions/{name}`` with ``{"input": "..."}`` runs a non-HTTP function now
(timer: a ``TimerRequest``; Service Bus: a message whose body is ``input``) and answers
``202 Accepted`` at once, like the Functions host. ``GET /admin/functions/{name}`` returns
the function's binding JSON and (an emulator extra, for tests that must know a fired run is
over) ``adminRunsFinished``: how many admin-started runs of it have ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localhost.functions import FunctionInfo
from localhost.problems import problem, read_json_object

if TYPE_CHECKING:
    from localhost.host import Host

log = logging.getLogger("localhost.admin")
# Admin-started runs answer 202 at once; the tasks are kept so they are not collected.
_background: set[asyncio.Task[None]] = set()
# Admin-started runs that have ended (succeeded or failed), by function name.
_finished: Counter[str] = Counter()


class NotInvocable(ValueError):
    """The function's trigger type cannot be started through the admin API."""


def trigger_value_for(host: Host, fn: FunctionInfo, input_text: str | None) -> Any:
    """The trigger argument for an admin-started invocation of ``fn``."""
    if fn.trigger_type == "timerTrigger":
        from localhost.timers import timer_request

        return timer_request(past_due=False)
    if fn.trigger_type == "serviceBusTrigger":
        from localhost.servicebus.extension import admin_message

        return admin_message(fn, input_text or "")
    raise NotInvocable(f"function {fn.name} has a {fn.trigger_type}; the admin API starts "
                       "only timer and Service Bus functions")


async def fire_function(host: Host, request: web.Request) -> web.StreamResponse:
    if not host.keys.is_master(request.headers.get("x-functions-key")
                               or request.query.get("code")):
        return problem(401, "Unauthorized", "the admin API requires the master key")
    try:
        fn = host.function(request.match_info["name"])
    except KeyError:
        return problem(404, "Not found", f"no function named {request.match_info['name']!r}")
    if request.method == "GET":
        return web.json_response({"name": fn.name, "bindings": fn.bindings,
                                  "adminRunsFinished": _finished[fn.name]})
    if request.method != "POST":
        return problem(405, "Method not allowed", "use GET or POST",
                       headers={"Allow": "GET, POST"})
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    raw_input = body.get("input")
    if raw_input is not None and not isinstance(raw_input, str):
        return problem(400, "Bad request", "field 'input' must be a string")
    try:
        value = trigger_value_for(host, fn, raw_input)
    except NotInvocable as exc:
        return problem(400, "Bad request", str(exc))
    if host.stopping:
        return problem(503, "Service unavailable", "the host is stopping")

    async def run() -> None:
        try:
            await host.invoke(fn, value)
        except Exception:
            log.exception("admin-started invocation of %s failed", fn.name)
        finally:
            _finished[fn.name] += 1

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return web.Response(status=202)

