"""The host core: load the app, index its functions, serve one port, run extensions.

``Host(app_dir, port=..., extensions=[...])`` is the whole API; ``await host.start()``
binds the port, sets the environment the app expects, imports ``function_app.py``, lets
every extension bind (routes, trigger types, input bindings), then starts them.
``await host.stop()`` stops taking work, lets in-flight invocations finish and closes the
port. Built-in emulations (Service Bus, timers, Easy Auth, static web) are extensions
like the others; see ``localhost/extension.py`` for the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from localhost.extension import HostExtension
from localhost.functions import (
    FunctionInfo,
    extension_config,
    find_function_app,
    index_functions,
    load_app_module,
    read_host_json,
    resolve_setting,
)
from localhost.http_trigger import HttpTriggerDispatcher, build_routes
from localhost.invocation import InputProvider, InvocationResult, Invoker
from localhost.keys import HostKeys
from localhost.problems import problem
from localhost.workers import WorkerPool, worker_count

log = logging.getLogger("localhost")

TriggerStarter = Callable[[FunctionInfo], Awaitable[None] | None]
DEFAULT_MAX_BODY = 100 * 1024 * 1024  # the Functions host's request length limit


class Host:
    """A Functions host for one app folder, serving HTTP and emulations on one port."""

    def __init__(self, app_dir: str | Path, *, port: int = 7071, bind: str = "127.0.0.1",
                 extensions: Sequence[HostExtension] = (), state_dir: str | Path | None = None,
                 web_dir: str | Path | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY,
                 builtins: bool = True,
                 worker_processes: int | None = None,
                 on_bound: Callable[[Host], None] | None = None) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.port = port
        self.bind_address = bind
        self.state_dir = Path(state_dir) if state_dir else self.app_dir / ".cloudops"
        self.web_dir = Path(web_dir) if web_dir else None
        self.max_body_bytes = max_body_bytes
        self.host_json = read_host_json(self.app_dir)
        self.functions: list[FunctionInfo] = []
        self.web = web.Application(client_max_size=max_body_bytes)
        self.keys = HostKeys.load_or_create(self.state_dir)
        self.invoker = Invoker(str(self.app_dir))
        # FUNCTIONS_WORKER_PROCESS_COUNT (env, else local.settings.json); 1 runs every
        # function in this process, more start that many worker processes at start().
        self.worker_processes = worker_processes if worker_processes is not None \
            else worker_count(app_dir=self.app_dir)
        self.workers: WorkerPool | None = None
        # An explicit extension replaces the built-in of the same name (e.g. a configured
        # ServiceBusExtension with a shorter duplicate window).
        explicit = {e.name for e in extensions}
        self.executions: Counter[str] = Counter()  # invocations by trigger type
        self.extensions: list[HostExtension] = [
            e for e in (self._builtins() if builtins else []) if e.name not in explicit]
        self.extensions.extend(extensions)
        self._triggers: dict[str, TriggerStarter] = {}
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._stopping = False
        self._started_extensions: list[HostExtension] = []
        self.http: HttpTriggerDispatcher | None = None
        self.unclaimed: list[FunctionInfo] = []
        self.broken: dict[str, str] = {}
        self.interrupted = 0  # invocations still running when stop()'s grace ran out
        # Called once the port is known and before the app is imported, so a composition
        # root can put URLs that depend on the port into the app's environment.
        self._on_bound = on_bound
        self._env_before: dict[str, str | None] = {}
        self.module: Any = None

    # -- the API extensions use ------------------------------------------------------

    @property
    def base_url(self) -> str:
        host = self.bind_address if self.bind_address not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def stopping(self) -> bool:
        return self._stopping

    def register_trigger(self, trigger_type: str, starter: TriggerStarter) -> None:
        """Claim functions whose trigger has ``trigger_type``; ``starter(fn)`` runs at start."""
        self._triggers[trigger_type] = starter

    def register_input_binding(self, binding_type: str, provider: InputProvider) -> None:
        self.invoker.register_input_binding(binding_type, provider)

    async def invoke(self, fn: FunctionInfo, trigger_value: Any) -> Any:
        """Run ``fn`` as the worker would; returns its ``$return`` value."""
        return (await self.invoke_full(fn, trigger_value)).return_value

    async def invoke_full(self, fn: FunctionInfo, trigger_value: Any, *,
                          shield: bool = True) -> InvocationResult:
        """Like ``invoke`` but also returns values set on ``func.Out`` parameters.

        Shielded by default: cancelling the caller leaves the invocation running (stop()
        waits for it). ``shield=False`` lets the caller's cancellation stop it.
        """
        started = time.perf_counter()
        self.executions[fn.trigger_type] += 1
        task = asyncio.ensure_future(self._run(fn, trigger_value))
        # Tracked so stop() can let in-flight invocations finish instead of dropping them.
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            result = await (asyncio.shield(task) if shield else task)
        except BaseException:
            log.debug("Executed 'Functions.%s' (Failed, Duration=%.0fms)", fn.name,
                      (time.perf_counter() - started) * 1000)
            raise
        log.debug("Executed 'Functions.%s' (Succeeded, Duration=%.0fms)", fn.name,
                  (time.perf_counter() - started) * 1000)
        return result

    async def _run(self, fn: FunctionInfo, trigger_value: Any) -> InvocationResult:
        pool = self.workers
        if pool is None or not pool.serves(fn):
            return await self.invoker.invoke(fn, trigger_value)
        return await pool.invoke(fn, await self.invoker.bind_inputs(fn, trigger_value))

    def report_broken(self, fn: FunctionInfo, reason: str) -> None:
        """A handler could not set ``fn`` up (e.g. an unset ``%SETTING%``); it will not run.

        Like the Functions host, the other functions still start; the summary lists it.
        """
        self.broken[fn.name] = reason
        log.error("function %s will not run: %s", fn.name, reason)

    def set_env(self, name: str, value: str) -> None:
        """Set an app setting for the app; ``stop()`` restores the previous value."""
        self._env_before.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def resolve_setting(self, value: Any) -> Any:
        return resolve_setting(value)

    def function(self, name: str) -> FunctionInfo:
        for fn in self.functions:
            if fn.name.lower() == name.lower():
                return fn
        raise KeyError(name)

    def extension_config(self, name: str) -> dict[str, Any]:
        """``host.json`` ``extensions.<name>`` section."""
        return extension_config(self.host_json, name)

    def extension(self, name: str) -> HostExtension | None:
        return next((e for e in self.extensions if e.name == name), None)

    # -- lifecycle -------------------------------------------------------------------

    def _builtins(self) -> list[HostExtension]:
        from localhost.easyauth import StaticWebExtension
        from localhost.servicebus.extension import ServiceBusExtension
        from localhost.timers import TimerExtension

        return [ServiceBusExtension(), TimerExtension(), StaticWebExtension(self.web_dir)]

    async def start(self) -> None:
        self._socket = _listen(self.bind_address, self.port)
        self.port = self._socket.getsockname()[1]
        self.set_env("WEBSITE_HOSTNAME", f"127.0.0.1:{self.port}")
        self.set_env("FUNCTIONS_WORKER_RUNTIME", "python")
        if self._on_bound is not None:
            self._on_bound(self)
        self.module = load_app_module(self.app_dir)
        self.functions = index_functions(find_function_app(self.module))

        http_config = self.extension_config("http")
        prefix = str(http_config.get("routePrefix", "api"))
        self.http = HttpTriggerDispatcher(build_routes(self.functions, on_error=self.report_broken),
                                          self.keys,
                                          functools.partial(self.invoke_full, shield=False),
                                          prefix,
                                          dict(http_config.get("customHeaders") or {}))
        self.register_trigger("httpTrigger", lambda fn: None)
        for extension in self.extensions:
            extension.bind(self)
        self.web.router.add_route("*", "/admin/functions/{name}", self._admin_function)
        self.web.router.add_route("GET", "/admin/host/status", self._admin_status)
        if prefix:
            self.web.router.add_route("*", f"/{prefix}", self._serve_http)
            self.web.router.add_route("*", f"/{prefix}/{{tail:.*}}", self._serve_http)
        # Static files (or an empty-prefix API) answer whatever nobody else routed.
        self.web.router.add_route("*", "/{tail:.*}", self._fallback)

        for fn in self.functions:
            starter = self._triggers.get(fn.trigger_type)
            if starter is None:
                self.unclaimed.append(fn)
                log.warning("function %s: no handler for trigger type %s; it will not run",
                            fn.name, fn.trigger_type)
                continue
            result = starter(fn)
            if asyncio.iscoroutine(result):
                await result

        if self.worker_processes > 1:
            # after bind(): extensions may set app settings the workers must inherit
            self.workers = WorkerPool(self.app_dir, self.worker_processes)
            await self.workers.start()
            log.info("%d worker processes (pids %s)", self.worker_processes,
                     ", ".join(map(str, self.workers.pids)))

        self._runner = web.AppRunner(self.web, handle_signals=False, access_log=None,
                                     shutdown_timeout=5.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        for extension in self.extensions:
            await extension.start()
            self._started_extensions.append(extension)
        log.info("host listening on %s", self.base_url)

    async def stop(self, grace: float = 30.0, http_grace: float = 10.0) -> None:
        """Stop taking work, let in-flight invocations finish (up to ``grace`` s), close.

        HTTP requests get ``http_grace`` seconds, then async ones are cancelled (503).
        """
        if self._stopping:
            return
        self._stopping = True
        # HTTP first: callers get 503 from now on, and requests being served may still
        # use the extensions (e.g. start an orchestration), so those stop afterwards.
        if self.http is not None:
            await self.http.drain(http_grace)
        for extension in reversed(self._started_extensions):
            try:
                await extension.stop()
            except Exception:
                log.exception("extension %s failed to stop", extension.name)
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                log.error("invocation still running after %.0fs at shutdown; interrupted",
                          grace)
                task.cancel()
            self.interrupted = len(pending)
        if self._runner is not None:
            await self._runner.cleanup()
        elif self._socket is not None:
            self._socket.close()
        if self.workers is not None:
            await self.workers.stop(grace)
        self.invoker.shutdown()
        for name, value in self._env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def summary(self) -> str:
        """One line: how many functions of each trigger type, and which run nowhere."""
        counts: dict[str, int] = {}
        for fn in self.functions:
            counts[fn.trigger_type] = counts.get(fn.trigger_type, 0) + 1
        parts = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
        line = f"{len(self.functions)} functions ({parts})"
        if self.unclaimed:
            line += "; not run (no handler): " + ", ".join(f.name for f in self.unclaimed)
        if self.broken:
            line += "; not run (errors): " + ", ".join(
                f"{name} ({reason})" for name, reason in self.broken.items())
        return line

    # -- routes ----------------------------------------------------------------------

    async def _serve_http(self, request: web.Request) -> web.StreamResponse:
        static = self.extension("staticweb")
        guard = getattr(static, "guard_api", None)
        if guard is not None:
            guarded = await guard(request)
            if isinstance(guarded, web.StreamResponse):
                return guarded
            request = guarded
        assert self.http is not None
        return await self.http.handle(request)

    async def _fallback(self, request: web.Request) -> web.StreamResponse:
        assert self.http is not None
        tail = self.http.route_path(request.path)  # e.g. /API/..., matched in any case
        if tail is not None and (self.http.prefix or self.http.match(request.method, tail)):
            return await self._serve_http(request)
        static = self.extension("staticweb")
        serve = getattr(static, "serve", None)
        if serve is None:
            return problem(404, "Not found", f"nothing serves {request.path}")
        response: web.StreamResponse = await serve(request)
        return response

    async def _admin_status(self, request: web.Request) -> web.StreamResponse:
        if not self.keys.is_master(request.headers.get("x-functions-key")
                                   or request.query.get("code")):
            return problem(401, "Unauthorized", "the admin API requires the master key")
        return web.json_response({"state": "Stopping" if self._stopping else "Running",
                                  "functions": [f.name for f in self.functions],
                                  "metrics": self.metrics()})

    def metrics(self) -> dict[str, Any]:
        """Operation counts since start, for the Azure bill estimate: function executions
        by trigger type, plus what each extension reports (``metrics()``)."""
        out: dict[str, Any] = {"executions": dict(self.executions)}
        if self.workers is not None:
            out["workers"] = {"processes": self.worker_processes,
                              "started": self.workers.started,
                              "crashed": self.workers.crashed}
        for extension in self.extensions:
            report = getattr(extension, "metrics", None)
            if report is not None:
                out[extension.name] = report()
        return out

    async def _admin_function(self, request: web.Request) -> web.StreamResponse:
        from localhost.admin import fire_function

        return await fire_function(self, request)

    async def run_function_now(self, name: str, input_text: str | None = None) -> Any:
        """Invoke a non-HTTP function at once (what ``POST /admin/functions/{name}`` does)."""
        from localhost.admin import trigger_value_for

        fn = self.function(name)
        return await self.invoke(fn, trigger_value_for(self, fn, input_text))


def _listen(address: str, port: int) -> socket.socket:
    """Bind the port ourselves so ``port=0`` gives a free port known before the app loads."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock
