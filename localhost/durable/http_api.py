"""The Durable Functions HTTP API, as ``DurableOrchestrationClient`` and webhooks call it.

Served under ``/durabletask/`` (the client's ``rpcBaseUrl``) and under
``/runtime/webhooks/durabletask/`` (the public management URLs), with the status codes of
the Durable extension's ``HttpApiHandler``: 202 while running, 200 when finished, 404
unknown, 409 start of an id that is still running, 410 operating on a finished instance,
412 purging an unfinished one, 400 for bad input.

Inputs: the Python client posts ``json=df_dumps(value)``, i.e. a JSON string holding the
JSON text; other clients post the JSON value itself. Both are accepted (a body that is a
string of valid JSON is taken as that JSON), so the orchestrator sees the value sent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from localhost.durable import history as h
from localhost.durable.engine import Engine
from localhost.durable.entities import split as split_entity
from localhost.durable.store import ALL_STATUSES, TERMINAL, DurableError, Instance, Query

RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
CONNECTION = "Storage"


def client_binding(base_url: str, task_hub: str) -> dict[str, Any]:
    """The ``durableClient`` binding value (a JSON object; the host passes it as text)."""
    hooks = base_url.rstrip("/") + WEBHOOK_PREFIX
    query = f"taskHub={quote(task_hub)}&connection={CONNECTION}"
    inst = hooks + "instances/INSTANCEID"
    return {
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": hooks + "orchestrators/{functionName}[/{instanceId}]?"
            + query,
            "createAndWaitOnNewInstancePostUri": hooks + "orchestrators/{functionName}"
            "[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval="
            "{intervalInSeconds}&" + query,
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{inst}?{query}",
            "sendEventPostUri": f"{inst}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{inst}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{inst}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{inst}?{query}",
            "restartPostUri": f"{inst}/restart?{query}",
            "suspendPostUri": f"{inst}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{inst}/resume?reason={{text}}&{query}",
        },
        "baseUrl": hooks.rstrip("/"),
        "requiredQueryStringParameters": query,
        "rpcBaseUrl": base_url.rstrip("/") + RPC_PREFIX,
        "httpBaseUrl": "",
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"Message": message, "ExceptionMessage": message}, status=status)


def _value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _stamp(moment: datetime) -> str:
    return h.iso(moment)[:19] + "Z"


def _flag(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    return default if raw is None else raw.strip().lower() == "true"


def _date(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return h.parse_iso(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{name} is not an ISO-8601 date: {raw!r}") from exc


def status_json(inst: Instance, *, show_input: bool = True, show_history: bool = False,
                show_history_output: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": inst.name, "instanceId": inst.instance_id, "runtimeStatus": inst.status,
        "input": _value(inst.input) if show_input else None,
        "customStatus": _value(inst.custom_status), "output": _value(inst.output),
        "createdTime": _stamp(inst.created_at), "lastUpdatedTime": _stamp(inst.updated_at)}
    if show_history:
        body["historyEvents"] = [_summary(ev, show_history_output)
                                 for ev in inst.history.events
                                 if ev["EventType"] not in (h.ORCHESTRATOR_STARTED,
                                                            h.ORCHESTRATOR_COMPLETED)]
    return body


def _summary(ev: dict[str, Any], with_output: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"EventType": h.EVENT_NAMES.get(ev["EventType"], ev["EventType"]),
                           "EventId": ev["EventId"], "Timestamp": ev["Timestamp"]}
    for key in ("Name", "InstanceId", "TaskScheduledId", "TimerId", "FireAt", "Reason",
                "OrchestrationStatus"):
        if ev.get(key) is not None:
            out["FunctionName" if key == "Name" else key] = ev[key]
    if with_output:
        for key in ("Input", "Result", "Details"):
            if ev.get(key) is not None:
                out[key] = ev[key]
    return out


async def _accept_input(request: web.Request,
                        send: Callable[[str | None], Awaitable[object]]) -> web.Response:
    """Hand the request's JSON input on: 202, or the engine's refusal."""
    try:
        await send(await _input_text(request))
    except DurableError as exc:
        return _error(exc.status, str(exc))
    except web.HTTPBadRequest as exc:
        return _error(400, exc.text or "bad request")
    return web.Response(status=202)


async def _input_text(request: web.Request) -> str | None:
    raw = await request.text()
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(text="Invalid JSON content") from exc
    if isinstance(value, str):
        try:
            json.loads(value)
            return value  # the Python client's JSON text, sent as a JSON string
        except ValueError:
            pass
    return json.dumps(value)


class DurableHttpApi:
    def __init__(self, engine: Engine, base_url: str, task_hub: str) -> None:
        self.engine = engine
        self.base_url = base_url
        self.task_hub = task_hub

    def add_routes(self, app: web.Application) -> None:
        for prefix in (RPC_PREFIX, WEBHOOK_PREFIX):
            app.router.add_post(prefix + "orchestrators/{name}", self.start)
            app.router.add_post(prefix + "orchestrators/{name}/{id}", self.start)
            app.router.add_get(prefix + "instances", self.list)
            app.router.add_get(prefix + "instances/", self.list)
            app.router.add_delete(prefix + "instances", self.purge_by)
            app.router.add_delete(prefix + "instances/", self.purge_by)
            app.router.add_get(prefix + "instances/{id}", self.status)
            app.router.add_delete(prefix + "instances/{id}", self.purge)
            app.router.add_post(prefix + "instances/{id}/raiseEvent/{event}", self.raise_event)
            app.router.add_post(prefix + "instances/{id}/{op}", self.operate)
            app.router.add_get(prefix + "entities", self.list_entities)
            app.router.add_get(prefix + "entities/", self.list_entities)
            app.router.add_get(prefix + "entities/{name}", self.list_entities)
            app.router.add_get(prefix + "entities/{name}/{key}", self.read_entity)
            app.router.add_post(prefix + "entities/{name}/{key}", self.signal_entity)

    def _payload(self, request: web.Request, iid: str) -> dict[str, Any]:
        links = client_binding(f"{request.scheme}://{request.host}", self.task_hub)
        return {"id": iid, **{k: v.replace("INSTANCEID", quote(iid, safe=""))
                              for k, v in links["managementUrls"].items() if k != "id"}}

    def _accepted(self, request: web.Request, iid: str) -> web.Response:
        payload = self._payload(request, iid)
        return web.json_response(payload, status=202, headers={
            "Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def start(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        iid = request.match_info.get("id") or None
        try:
            input_text = await _input_text(request)
            iid = await self.engine.start_new(name, iid, input_text,
                                              request.query.get("version", ""))
        except DurableError as exc:
            return _error(exc.status, str(exc))
        except web.HTTPBadRequest as exc:
            return _error(400, exc.text or "bad request")
        timeout = request.query.get("timeout")
        if timeout:
            try:
                await self.engine.wait_for(iid, float(timeout))
            except (TimeoutError, ValueError):
                return self._accepted(request, iid)
            return await self.status(request, iid)
        return self._accepted(request, iid)

    async def status(self, request: web.Request, iid: str | None = None) -> web.Response:
        iid = iid or request.match_info["id"]
        inst = await self.engine.get(iid)
        if inst is None:
            return _error(404, f"No instance with ID '{iid}' found.")
        body = status_json(inst, show_input=_flag(request, "showInput", True),
                           show_history=_flag(request, "showHistory", False),
                           show_history_output=_flag(request, "showHistoryOutput", False))
        if inst.status not in TERMINAL:
            return web.json_response(body, status=202, headers={
                "Location": str(request.url), "Retry-After": "5"})
        failed_500 = _flag(request, "returnInternalServerErrorOnFailure", False)
        return web.json_response(body, status=500 if failed_500 and inst.status == "Failed"
                                 else 200)

    def _query(self, request: web.Request) -> Query:
        statuses = tuple(s for part in request.query.getall("runtimeStatus", [])
                         for s in part.split(",") if s)
        unknown = [s for s in statuses if s not in ALL_STATUSES]
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown runtimeStatus {unknown}")
        return Query(created_from=_date(request, "createdTimeFrom"),
                     created_to=_date(request, "createdTimeTo"), statuses=statuses,
                     id_prefix=request.query.get("instanceIdPrefix") or None)

    async def list(self, request: web.Request) -> web.Response:
        try:
            found = await self.engine.query(self._query(request))
        except web.HTTPBadRequest as exc:
            return _error(400, exc.text or "bad request")
        found.sort(key=lambda i: (i.created_at, i.instance_id))
        start = int(request.headers.get("x-ms-continuation-token") or 0)
        top = int(request.query.get("top") or 0) or len(found)
        page = found[start:start + top]
        more = start + top < len(found)
        show_input = _flag(request, "showInput", True)
        return web.json_response([status_json(i, show_input=show_input) for i in page],
                                 headers={"x-ms-continuation-token":
                                          str(start + top) if more else ""})

    async def purge(self, request: web.Request) -> web.Response:
        try:
            deleted = await self.engine.purge(request.match_info["id"])
        except DurableError as exc:
            return _error(exc.status, str(exc))
        if not deleted:
            return _error(404, "No instance found.")
        return web.json_response({"instancesDeleted": deleted})

    async def purge_by(self, request: web.Request) -> web.Response:
        try:
            q = self._query(request)
        except web.HTTPBadRequest as exc:
            return _error(400, exc.text or "bad request")
        if q.created_from is None:
            return _error(400, "Please provide value for 'createdTimeFrom' parameter.")
        deleted = await self.engine.purge_by(q)
        if not deleted:
            return _error(404, "No instances matched.")
        return web.json_response({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _error(400, "Only application/json request content is supported")
        return await _accept_input(request, lambda data: self.engine.raise_event(
            request.match_info["id"], request.match_info["event"], data))

    async def operate(self, request: web.Request) -> web.Response:
        iid, op = request.match_info["id"], request.match_info["op"].lower()
        reason = request.query.get("reason")
        actions = {"terminate": self.engine.terminate, "suspend": self.engine.suspend,
                   "resume": self.engine.resume}
        try:
            if op in actions:
                await actions[op](iid, reason)
                return web.Response(status=202)
            if op == "restart":
                return await self._restart(request, iid)
        except DurableError as exc:
            return _error(exc.status, str(exc))
        if op == "rewind":
            inst = await self.engine.get(iid)
            if inst is None:
                return _error(404, f"No instance with ID '{iid}' found.")
            if inst.status != "Failed":
                return _error(412, f"This orchestration has status {inst.status}, but only "
                                   "orchestrations in the \"Failed\" state can be rewound.")
            return _error(501, "Rewind is not supported by the local host.")
        return _error(404, f"unknown operation '{op}'")

    async def signal_entity(self, request: web.Request) -> web.Response:
        """``POST entities/{name}/{key}?op=`` (the client's ``signal_entity``): 202."""
        name, key = request.match_info["name"], request.match_info["key"]
        op = request.query.get("op")
        if not op:
            return _error(400, "The 'op' query parameter is required.")
        return await _accept_input(
            request, lambda data: self.engine.signal_entity(name, key, op, data))

    async def read_entity(self, request: web.Request) -> web.Response:
        """``GET entities/{name}/{key}``: the state as JSON, 404 if the entity has none."""
        name, key = request.match_info["name"], request.match_info["key"]
        inst = await self.engine.read_entity(name, key)
        if inst is None or inst.output is None:
            return _error(404, f"No entity with ID '@{name.lower()}@{key}' found.")
        return web.Response(text=inst.output, content_type="application/json")

    async def list_entities(self, request: web.Request) -> web.Response:
        """``GET entities[/{name}]``: ``[{entityId, lastOperationTime, state?}]``, paged."""
        found = await self.engine.list_entities(request.match_info.get("name"))
        since = _date(request, "lastOperationTimeFrom")
        until = _date(request, "lastOperationTimeTo")
        found = [i for i in found if (since is None or i.updated_at >= since)
                 and (until is None or i.updated_at <= until)]
        found.sort(key=lambda i: i.instance_id)
        start = int(request.headers.get("x-ms-continuation-token") or 0)
        top = int(request.query.get("top") or 0) or len(found)
        page = found[start:start + top]
        more = start + top < len(found)
        with_state = _flag(request, "fetchState", False)
        body = []
        for inst in page:
            ename, ekey = split_entity(inst.instance_id)
            item: dict[str, Any] = {"entityId": {"name": ename, "key": ekey},
                                    "lastOperationTime": _stamp(inst.updated_at)}
            if with_state:
                item["state"] = _value(inst.output)
            body.append(item)
        return web.json_response(body, headers={
            "x-ms-continuation-token": str(start + top) if more else ""})

    async def _restart(self, request: web.Request, iid: str) -> web.Response:
        inst = await self.engine.get(iid)
        if inst is None:
            return _error(404, f"No instance with ID '{iid}' found.")
        new_id = None if _flag(request, "restartWithNewInstanceId", True) else iid
        started = await self.engine.start_new(inst.name, new_id, inst.input, inst.version)
        return self._accepted(request, started)

