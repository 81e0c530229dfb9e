"""A local stand-in of the Azure Resource Manager endpoints the App Service deploy calls.

ARM cannot run offline, so this aiohttp server (in a background thread) answers exactly
the requests azure-mgmt-web sends for the deploy: get site / slot (for
``properties.defaultHostName``), list and replace app settings, patch the slot's site
config, restart the site or the slot, create (``PUT .../slots/{slot}``) and delete a slot
(a sandbox's own; each created slot gets its own host serving the health path), and the
slot swap as a long-running operation (``202`` with
``Azure-AsyncOperation`` and ``Location``, polled ``InProgress`` → ``Succeeded``, then the
``Location`` result). It checks the bearer token and ``api-version`` on every call and
records each request. Two more small servers play the production and slot hosts, serving
the health path for whatever version their slot holds; the swap really exchanges the
content of the slot and production, as App Service does.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PRODUCTION = "production"
LOCATION = "westeurope"

HealthRule = Callable[[str, "str | None"], int]


@dataclass
class SlotState:
    """What one slot holds: app settings and site config swap; the host name stays."""

    app_settings: dict[str, str]
    linux_fx_version: str = ""
    restarts: int = 0
    host: str = ""

    @property
    def version(self) -> str | None:
        return self.app_settings.get("CLOUDOPS_VERSION")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any


@dataclass
class Failure:
    status: int
    code: str
    message: str


@dataclass
class ArmStandIn:
    subscription_id: str
    resource_group: str
    site: str
    slot: str
    token: str
    production: SlotState
    staging: SlotState
    # How many times the swap operation reports InProgress before Succeeded.
    swap_polls: int = 2
    health_path: str = "/health"
    # (where, version) → HTTP status of the health endpoint; 200 for all by default.
    health_rule: HealthRule = field(default=lambda where, version: 200)
    requests: list[Recorded] = field(default_factory=list)
    health_requests: list[tuple[str, str]] = field(default_factory=list)
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)
    swaps: int = 0
    base_url: str = ""
    # slots created through ARM (a sandbox's own), by name
    slots: dict[str, SlotState] = field(default_factory=dict)
    deleted_slots: list[str] = field(default_factory=list)
    _operations: dict[str, int] = field(default_factory=dict)
    _serve: Callable[[web.Application], Any] | None = None

    @property
    def site_path(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.Web/sites/{self.site}")

    @property
    def plan_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                "/providers/Microsoft.Web/serverfarms/plan")

    def fail(self, method: str, suffix: str, status: int, code: str, message: str) -> None:
        """Answer ``method`` on ``site_path + suffix`` with an ARM error from now on."""
        self.failures[(method, self.site_path + suffix)] = Failure(status, code, message)

    def arm_calls(self) -> list[tuple[str, str]]:
        """(method, path relative to the site, or the full path outside it) per request."""
        out = []
        for r in self.requests:
            path = r.path.removeprefix(self.site_path) if r.path.startswith(self.site_path) \
                else r.path
            out.append((r.method, path or "/"))
        return out

    def slot_state(self, name: str) -> SlotState:
        if name == PRODUCTION:
            return self.production
        if name == self.slot:
            return self.staging
        if name in self.slots:
            return self.slots[name]
        raise web.HTTPNotFound(text=_error("ResourceNotFound", f"slot {name} not found"),
                               content_type="application/json")

    # -- ARM ---------------------------------------------------------------------------
    def arm_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_and_authorize])
        s = self.site_path
        app.router.add_get(s, self._get_site)
        app.router.add_get(s + "/slots/{slot}", self._get_site)
        app.router.add_put(s + "/slots/{slot}", self._create_slot)
        app.router.add_delete(s + "/slots/{slot}", self._delete_slot)
        app.router.add_post(s + "/config/appsettings/list", self._list_settings)
        app.router.add_post(s + "/slots/{slot}/config/appsettings/list", self._list_settings)
        app.router.add_put(s + "/slots/{slot}/config/appsettings", self._put_settings)
        app.router.add_get(s + "/slots/{slot}/config/web", self._get_config)
        app.router.add_patch(s + "/slots/{slot}/config/web", self._patch_config)
        app.router.add_post(s + "/restart", self._restart)
        app.router.add_post(s + "/slots/{slot}/restart", self._restart)
        app.router.add_post(s + "/slots/{slot}/slotsswap", self._swap)
        ops = (f"/subscriptions/{self.subscription_id}/providers/Microsoft.Web/locations/"
               f"{LOCATION}")
        app.router.add_get(ops + "/operations/{op}", self._operation_status)
        app.router.add_get(ops + "/operationResults/{op}", self._operation_result)
        return app

    @web.middleware
    async def _record_and_authorize(self, request: web.Request,
                                    handler: Callable[..., Any]) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      request.headers.get("Authorization"), body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if "api-version" not in request.query:
            return _arm_error(400, "MissingApiVersionParameter",
                              "The api-version query parameter (?api-version=) is required.")
        failure = self.failures.get((request.method, request.path))
        if failure is not None:
            return _arm_error(failure.status, failure.code, failure.message)
        return await handler(request)

    def _slot_of(self, request: web.Request) -> str:
        return request.match_info.get("slot", PRODUCTION)

    async def _get_site(self, request: web.Request) -> web.Response:
        name = self._slot_of(request)
        state = self.slot_state(name)
        full = self.site if name == PRODUCTION else f"{self.site}/{name}"
        kind = "Microsoft.Web/sites" if name == PRODUCTION else "Microsoft.Web/sites/slots"
        return web.json_response({
            "id": request.path, "name": full, "type": kind, "location": "West Europe",
            "kind": "app,linux", "properties": {"state": "Running",
                                                "defaultHostName": state.host,
                                                "serverFarmId": self.plan_id}})

    async def _create_slot(self, request: web.Request) -> web.Response:
        """Create (or update) a slot: starts empty, with its own host."""
        name = request.match_info["slot"]
        body = await request.json()
        if body.get("location") != "West Europe" or \
                body.get("properties", {}).get("serverFarmId") != self.plan_id:
            return _arm_error(400, "BadRequest", f"a slot lives in its site's location and "
                              f"plan, got {body!r}")
        if name in (PRODUCTION, self.slot):
            return _arm_error(409, "Conflict", f"slot {name} exists and is not new")
        if name not in self.slots:
            state = SlotState({})
            assert self._serve is not None
            state.host = await self._serve(self.host_app(name))
            self.slots[name] = state
        return await self._get_site(request)

    async def _delete_slot(self, request: web.Request) -> web.Response:
        name = request.match_info["slot"]
        if name in (PRODUCTION, self.slot):
            return _arm_error(400, "BadRequest", f"refusing to delete {name} in the stand-in")
        if name not in self.slots:
            return _arm_error(404, "ResourceNotFound", f"slot {name} not found")
        del self.slots[name]
        self.deleted_slots.append(name)
        return web.Response(status=200)

    async def _list_settings(self, request: web.Request) -> web.Response:
        state = self.slot_state(self._slot_of(request))
        return web.json_response(self._settings_resource(request, state))

    async def _put_settings(self, request: web.Request) -> web.Response:
        state = self.slot_state(self._slot_of(request))
        body = await request.json()
        state.app_settings = dict(body["properties"])
        return web.json_response(self._settings_resource(request, state))

    def _settings_resource(self, request: web.Request, state: SlotState) -> dict[str, Any]:
        return {"id": request.path.removesuffix("/list"), "name": "appsettings",
                "type": "Microsoft.Web/sites/config", "properties": dict(state.app_settings)}

    async def _get_config(self, request: web.Request) -> web.Response:
        state = self.slot_state(self._slot_of(request))
        return web.json_response(self._config_resource(request, state))

    async def _patch_config(self, request: web.Request) -> web.Response:
        state = self.slot_state(self._slot_of(request))
        body = await request.json()
        fx = body.get("properties", {}).get("linuxFxVersion")
        if fx is not None:
            state.linux_fx_version = fx
        return web.json_response(self._config_resource(request, state))

    def _config_resource(self, request: web.Request, state: SlotState) -> dict[str, Any]:
        return {"id": request.path, "name": "web", "type": "Microsoft.Web/sites/config",
                "properties": {"linuxFxVersion": state.linux_fx_version,
                               "alwaysOn": True}}

    async def _restart(self, request: web.Request) -> web.Response:
        self.slot_state(self._slot_of(request)).restarts += 1
        return web.Response(status=200)

    async def _swap(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body != {"targetSlot": PRODUCTION, "preserveVnet": True}:
            return _arm_error(400, "BadRequest", f"unexpected swap body {body!r}")
        op = str(uuid.uuid4())
        self._operations[op] = 0
        api = request.query["api-version"]
        ops = (f"{self.base_url}/subscriptions/{self.subscription_id}/providers/Microsoft.Web/"
               f"locations/{LOCATION}")
        return web.Response(status=202, headers={
            "Azure-AsyncOperation": f"{ops}/operations/{op}?api-version={api}",
            "Location": f"{ops}/operationResults/{op}?api-version={api}"})

    async def _operation_status(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        if op not in self._operations:
            return _arm_error(404, "OperationNotFound", f"operation {op} not found")
        polls = self._operations[op]
        if polls < self.swap_polls:
            self._operations[op] = polls + 1
            return web.json_response({"id": op, "status": "InProgress"})
        if polls == self.swap_polls:
            # The swap completes when ARM says so, not when it was requested.
            self._operations[op] = polls + 1
            self._exchange()
        return web.json_response({"id": op, "status": "Succeeded"})

    async def _operation_result(self, request: web.Request) -> web.Response:
        if request.match_info["op"] not in self._operations:
            return _arm_error(404, "OperationNotFound", "operation not found")
        return web.Response(status=200)

    def _exchange(self) -> None:
        prod, slot = self.production, self.staging
        prod.app_settings, slot.app_settings = slot.app_settings, prod.app_settings
        prod.linux_fx_version, slot.linux_fx_version = slot.linux_fx_version, \
            prod.linux_fx_version
        self.swaps += 1

    # -- the two app hosts -----------------------------------------------------------------
    def host_app(self, where: str) -> web.Application:
        async def health(request: web.Request) -> web.Response:
            self.health_requests.append((where, request.path))
            if request.path != self.health_path:
                return web.Response(status=404)
            state = (self.production if where == PRODUCTION else self.staging
                     if where == "slot" else self.slots.get(where, SlotState({})))
            status = self.health_rule(where, state.version)
            return web.json_response({"version": state.version}, status=status)

        app = web.Application()
        app.router.add_get("/{tail:.*}", health)
        return app


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def _arm_error(status: int, code: str, message: str) -> web.Response:
    return web.Response(status=status, text=_error(code, message),
                        content_type="application/json")


@contextmanager
def run_standin(standin: ArmStandIn) -> Iterator[ArmStandIn]:
    """Serve ARM, the production host and the slot host on loopback ports."""
    loop = asyncio.new_event_loop()
    runners: list[web.AppRunner] = []
    ready = threading.Event()
    failure: list[BaseException] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"{host}:{port}"

    async def start() -> None:
        standin._serve = serve
        standin.base_url = "http://" + await serve(standin.arm_app())
        standin.production.host = await serve(standin.host_app(PRODUCTION))
        standin.staging.host = await serve(standin.host_app("slot"))

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="arm-standin", daemon=True)
    thread.start()
    ready.wait(10)
    if failure:
        thread.join()
        loop.close()
        raise RuntimeError("ARM stand-in failed to start") from failure[0]
    try:
        yield standin
    finally:
        async def stop() -> None:
            for runner in runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
