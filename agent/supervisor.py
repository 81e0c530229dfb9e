"""A small process supervisor for machines without systemd (the local demo, a dev box).

It runs web apps as real child processes and swaps versions without downtime, so Deploy
and Restart on such a machine do what they do on a server: start the new process,
health-check it, switch, and keep the old one serving when the new one is not healthy.
Run it as its own process::

    python -m agent.supervisor --state-dir DIR --config FILE

The config names *programs*; the API can only choose an app's version, never a command::

    {"programs": {"demo-web": {
        "command": ["{python}", "-m", "cli.demo_app", "--port", "{port}",
                    "--app", "{app}", "--version", "{version}"],
        "healthPath": "/health", "startSeconds": 20,
        "stopSeconds"?: 5, "cwd"?: "/path", "env"?: {"NAME": "value"}}}}

Apps are instances ``program@instance`` (like systemd template units): ``demo-web@dev``.
An app's argv is its program's template with ``{port}`` (the backend's port), ``{app}``
(the instance), ``{instance}``, ``{version}`` and ``{python}`` (this interpreter) filled in.

Each app has a stable *front*, a TCP forwarder on 127.0.0.1 whose port is chosen once and
kept in ``DIR/state.json`` with the app's version, so a restarted supervisor brings every
app back at the same URL and version. Behind it, *backends* are child processes on free
ports (their own process group; output to ``DIR/logs/<app>.log``), killed with the
supervisor (Linux parent-death signal) so none outlives it.

Control API on 127.0.0.1 (``Authorization: Bearer`` the token in ``DIR/control-token``;
its URL and pid in ``DIR/supervisor.json`` once ready):

- ``GET /apps`` → [app, ...]; ``GET /apps/{app}`` → {app, program, instance, version, url,
  pid, port, startedAt, state}
- ``PUT /apps/{app}`` {"version"} → deploy (creates the app if new); 422 {"detail"} if
  the new version is not healthy (the old one keeps serving)
- ``POST /apps/{app}/restart`` → a health-checked switch at the same version
- ``DELETE /apps/{app}`` → stop the backend and the front, forget the app
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import requests

from agent import process

log = logging.getLogger("cloudops.supervisor")

APP_RE = re.compile(r"^[a-z0-9-]+@[a-z0-9-]+$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
PROGRAM_RE = re.compile(r"^[a-z0-9-]+$")
TAIL_LINES = 15
HEALTH_POLL_SECONDS = 0.1
DEFAULT_STOP_SECONDS = 5.0
# a loopback health check must never go through a configured HTTP proxy
_DIRECT = requests.Session()
_DIRECT.trust_env = False


class BadRequest(Exception):
    """A request the API refuses with 400; ``field`` names what was wrong."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field_name


class NotFound(Exception):
    """The app is not known to the supervisor (404)."""


class Unhealthy(Exception):
    """The new backend did not become healthy; the message is the reason (422)."""


class Closing(Exception):
    """The supervisor is shutting down and starts nothing new (503)."""


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    health_path: str = "/health"
    start_seconds: float = 20.0
    stop_seconds: float = DEFAULT_STOP_SECONDS
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, *, port: int, instance: str, version: str) -> list[str]:
        """The program's command with the placeholders filled (plain replacement, so
        other braces in the template stay as they are)."""
        values = {"{port}": str(port), "{app}": instance, "{instance}": instance,
                  "{version}": version, "{python}": sys.executable}
        out = []
        for arg in self.command:
            for key, value in values.items():
                arg = arg.replace(key, value)
            out.append(arg)
        return out


def load_programs(path: Path) -> dict[str, Program]:
    """Read and check the config file; a bad config stops the supervisor at start."""
    data = json.loads(path.read_text())
    programs = data.get("programs") if isinstance(data, dict) else None
    if not isinstance(programs, dict) or not programs:
        raise ValueError(f"{path}: needs {{\"programs\": {{name: {{\"command\": [...]}}}}}}")
    out: dict[str, Program] = {}
    for name, spec in programs.items():
        if not PROGRAM_RE.match(name):
            raise ValueError(f"{path}: program name {name!r} must match {PROGRAM_RE.pattern}")
        command = spec.get("command") if isinstance(spec, dict) else None
        if not isinstance(command, list) or not command or not all(
                isinstance(a, str) for a in command):
            raise ValueError(f"{path}: program {name!r} needs a command (a list of strings)")
        health = str(spec.get("healthPath") or "/health")
        if not health.startswith("/"):
            raise ValueError(f"{path}: program {name!r}: healthPath must start with '/'")
        env = spec.get("env") or {}
        if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError(f"{path}: program {name!r}: env must map names to strings")
        out[name] = Program(
            name=name, command=command, health_path=health,
            start_seconds=float(spec.get("startSeconds") or 20),
            stop_seconds=float(spec.get("stopSeconds") or DEFAULT_STOP_SECONDS),
            cwd=spec.get("cwd"), env=env)
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def free_port() -> int:
    """A port nothing listens on now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temp file and rename, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the front: a TCP forwarder with a switchable backend -----------------------------

class Front:
    """127.0.0.1:<port> forwarding each new connection to the current backend port.

    Switching only changes where *new* connections go; open ones finish on the old
    backend until it is stopped."""

    def __init__(self) -> None:
        self.backend_port: int | None = None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        backend: asyncio.StreamWriter | None = None
        try:
            port = self.backend_port
            if port is None:
                return
            try:
                b_reader, backend = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            self._writers.add(backend)
            await asyncio.gather(_pipe(reader, backend), _pipe(b_reader, writer))
        finally:
            for w in (writer, backend):
                if w is not None:
                    self._writers.discard(w)
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()


# --- apps and their backends ------------------------------------------------------------

@dataclass
class Backend:
    proc: subprocess.Popen[bytes]
    port: int
    version: str
    started_at: str
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


@dataclass
class App:
    name: str
    program: Program
    instance: str
    version: str
    front: Front
    backend: Backend | None = None
    state: str = "starting"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> dict[str, Any]:
        b = self.backend
        state = self.state
        if b is not None and state == "running" and b.proc.poll() is not None:
            state = f"exited ({b.proc.returncode})"
        return {"app": self.name, "program": self.program.name, "instance": self.instance,
                "version": self.version, "url": f"http://127.0.0.1:{self.front.port}",
                "pid": b.proc.pid if b else None, "port": b.port if b else None,
                "startedAt": b.started_at if b else None, "state": state}


def parse_app(name: str, programs: dict[str, Program]) -> tuple[Program, str]:
    if not APP_RE.match(name):
        raise BadRequest("app", f"app must look like program@instance "
                                f"({APP_RE.pattern}), got {name[:80]!r}")
    program, instance = name.split("@", 1)
    if program not in programs:
        raise BadRequest("app", f"no program {program!r} in the supervisor config "
                                f"(it has {', '.join(sorted(programs))})")
    return programs[program], instance


def check_version(version: Any) -> str:
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise BadRequest("version", f"version must match {VERSION_RE.pattern}")
    return version


class Supervisor:
    """The apps, their fronts (on ``loop``) and backends (spawned on the loop's thread)."""

    def __init__(self, state_dir: Path, programs: dict[str, Program],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.dir = state_dir
        self.programs = programs
        self.loop = loop
        self.apps: dict[str, App] = {}
        self.children: set[subprocess.Popen[bytes]] = set()
        self.closing = False
        self._mu = threading.Lock()          # apps, children, closing
        self._creating: dict[str, threading.Lock] = {}
        self._state_mu = threading.Lock()    # state.json
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)

    # -- persistence

    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def saved_state(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        apps = data.get("apps") if isinstance(data, dict) else None
        return apps if isinstance(apps, dict) else {}

    def save_state(self) -> None:
        with self._mu:
            apps = {a.name: {"frontPort": a.front.port, "version": a.version}
                    for a in self.apps.values()}
        with self._state_mu:
            write_atomic(self.state_path, json.dumps({"apps": apps}, indent=2) + "\n")

    # -- the loop thread does the forking: a child's parent-death signal fires when the
    #    *thread* that forked it ends, and request threads end after each request

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(30)

    def _spawn(self, app: App, version: str) -> Backend:
        port = free_port()
        argv = app.program.argv(port=port, instance=app.instance, version=version)
        env = os.environ | app.program.env

        def popen() -> subprocess.Popen[bytes]:
            with self._mu:
                if self.closing:
                    raise Closing("the supervisor is shutting down")
                proc = subprocess.Popen(
                    argv, env=env, cwd=app.program.cwd, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=process._child_setup)
                self.children.add(proc)
                return proc

        try:
            proc = self._on_loop(popen)
        except OSError as exc:
            raise Unhealthy(f"cannot start {app.name} {version}: {exc}") from None
        backend = Backend(proc=proc, port=port, version=version, started_at=_now())
        log_path = self.dir / "logs" / f"{app.name}.log"
        threading.Thread(target=_pump, args=(backend, log_path, f"{version} pid {proc.pid}"),
                         name=f"log-{app.name}", daemon=True).start()
        log.info("%s: started %s pid %d on port %d", app.name, version, proc.pid, port)
        return backend

    def _stop(self, app: App, backend: Backend) -> None:
        process.kill_group(backend.proc, grace=app.program.stop_seconds)
        with self._mu:
            self.children.discard(backend.proc)
        log.info("%s: stopped %s pid %d", app.name, backend.version, backend.proc.pid)

    def _wait_healthy(self, app: App, backend: Backend) -> None:
        url = f"http://127.0.0.1:{backend.port}{app.program.health_path}"
        deadline = time.monotonic() + app.program.start_seconds
        last = "no answer"
        while True:
            code = backend.proc.poll()
            if code is not None:
                raise Unhealthy(f"{app.name} {backend.version} exited with code {code} "
                                f"before it was healthy{_tail(backend)}")
            try:
                with _DIRECT.get(url, timeout=2) as resp:
                    if resp.status_code == 200:
                        return
                    last = f"HTTP {resp.status_code}"
            except (OSError, requests.RequestException) as exc:
                last = f"no answer ({type(exc).__name__})"
            if time.monotonic() > deadline:
                raise Unhealthy(f"{app.name} {backend.version} not healthy after "
                                f"{app.program.start_seconds:g} s (health check "
                                f"{app.program.health_path}: {last}){_tail(backend)}")
            time.sleep(HEALTH_POLL_SECONDS)

    def _switch(self, app: App, version: str) -> None:
        """Start ``version``, health-check it, point the front at it, stop the old one.
        The caller holds ``app.lock``."""
        new = self._spawn(app, version)
        try:
            self._wait_healthy(app, new)
        except Unhealthy as exc:
            log.warning("%s: %s", app.name, str(exc).splitlines()[0])
            self._stop(app, new)
            raise
        old, app.backend = app.backend, new
        app.front.backend_port = new.port
        app.version, app.state = version, "running"
        log.info("%s: serving %s (pid %d)", app.name, version, new.proc.pid)
        if old is not None:
            self._stop(app, old)

    # -- the operations the API offers

    def get(self, name: str) -> App:
        with self._mu:
            app = self.apps.get(name)
        if app is None:
            raise NotFound(f"no app {name!r}")
        return app

    def list_apps(self) -> list[dict[str, Any]]:
        with self._mu:
            apps = sorted(self.apps.values(), key=lambda a: a.name)
        return [a.describe() for a in apps]

    def _creation_lock(self, name: str) -> threading.Lock:
        with self._mu:
            return self._creating.setdefault(name, threading.Lock())

    def deploy(self, name: str, version: str) -> dict[str, Any]:
        program, instance = parse_app(name, self.programs)
        check_version(version)
        with self._creation_lock(name):
            with self._mu:
                app = self.apps.get(name)
            if app is None:
                return self._create(name, program, instance, version, front_port=0)
        with app.lock:
            if self.get(name) is not app:  # deleted while we waited
                raise NotFound(f"no app {name!r}")
            self._switch(app, version)
        self.save_state()
        return app.describe()

    def _create(self, name: str, program: Program, instance: str, version: str, *,
                front_port: int) -> dict[str, Any]:
        front = Front()
        try:
            asyncio.run_coroutine_threadsafe(front.open(front_port), self.loop).result(30)
        except OSError as exc:
            if not front_port:
                raise
            log.error("%s: front port %d is taken (%s); choosing another", name,
                      front_port, exc)
            asyncio.run_coroutine_threadsafe(front.open(0), self.loop).result(30)
        app = App(name=name, program=program, instance=instance, version=version,
                  front=front)
        with app.lock:
            with self._mu:
                self.apps[name] = app
            try:
                self._switch(app, version)
            except (Unhealthy, Closing):
                if front_port:  # a restored app keeps its front and version
                    app.state = "failed"
                    raise
                with self._mu:
                    self.apps.pop(name, None)
                self._close_front(front)
                raise
        self.save_state()
        return app.describe()

    def restart(self, name: str) -> dict[str, Any]:
        app = self.get(name)
        with app.lock:
            if self.get(name) is not app:
                raise NotFound(f"no app {name!r}")
            self._switch(app, app.version)
        return app.describe()

    def delete(self, name: str) -> None:
        app = self.get(name)
        with app.lock:
            with self._mu:
                if self.apps.get(name) is not app:
                    raise NotFound(f"no app {name!r}")
                del self.apps[name]
            app.front.backend_port = None
            self._close_front(app.front)
            if app.backend is not None:
                self._stop(app, app.backend)
            app.state = "deleted"
        self.save_state()
        log.info("%s: deleted", name)

    def _close_front(self, front: Front) -> None:
        asyncio.run_coroutine_threadsafe(front.close(), self.loop).result(30)

    def restore(self) -> None:
        """Bring back every app of state.json on its front port at its last version."""
        saved = self.saved_state()

        def one(name: str, entry: dict[str, Any]) -> None:
            try:
                program, instance = parse_app(name, self.programs)
                version = check_version(entry.get("version"))
                self._create(name, program, instance, version,
                             front_port=int(entry.get("frontPort") or 0))
            except (BadRequest, Unhealthy, Closing, OSError, ValueError) as exc:
                log.error("%s: not restored: %s", name, exc)

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(saved)))) as pool:
            for name, entry in saved.items():
                pool.submit(one, name, entry if isinstance(entry, dict) else {})

    def shutdown(self) -> None:
        """Stop every backend (those mid-deploy too); nothing new starts after this."""
        with self._mu:
            self.closing = True
            children = list(self.children)
        threads = [threading.Thread(target=process.kill_group, args=(p,)) for p in children]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _pump(backend: Backend, log_path: Path, prefix: str) -> None:
    """Copy the child's output to the app's log (one file per app, each line prefixed
    with the version and pid, since old and new backends write at the same time), and
    keep its last lines for a failed health check's reason."""
    stream = backend.proc.stdout
    assert stream is not None
    with open(log_path, "a", buffering=1, encoding="utf-8") as out:
        out.write(f"{_now()} [{prefix}] started on port {backend.port}\n")
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            backend.tail.append(line)
            out.write(f"{_now()} [{prefix}] {line}\n")
        out.write(f"{_now()} [{prefix}] output closed\n")
    stream.close()


def _tail(backend: Backend) -> str:
    # the pump may still be reading the last lines of a process that just exited
    deadline = time.monotonic() + 0.5
    while backend.proc.stdout and not backend.proc.stdout.closed \
            and time.monotonic() < deadline and backend.proc.poll() is not None:
        time.sleep(0.02)
    lines = list(backend.tail)
    return ("\nlast lines of its log:\n" + "\n".join(lines)) if lines else ""


# --- the control API ------------------------------------------------------------------

def make_control_server(sup: Supervisor, token: str, port: int = 0) -> ThreadingHTTPServer:
    """The bearer-token HTTP API on 127.0.0.1; each request runs on its own thread."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "CloudOpsSupervisor/1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            given = self.headers.get("Authorization") or ""
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                self._send(401, {"detail": "missing or wrong bearer token"})
                return
            parts = [unquote(p) for p in self.path.split("?", 1)[0].strip("/").split("/")]
            try:
                self._send(*self._dispatch(method, parts))
            except BadRequest as exc:
                self._send(400, {"detail": str(exc), "field": exc.field})
            except NotFound as exc:
                self._send(404, {"detail": str(exc)})
            except Unhealthy as exc:
                self._send(422, {"detail": str(exc)})
            except Closing as exc:
                self._send(503, {"detail": str(exc)})
            except Exception as exc:
                log.exception("%s %s failed", method, self.path)
                self._send(500, {"detail": f"{type(exc).__name__}: {exc}"})

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                raise BadRequest("body", "the body must be JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("body", "the body must be a JSON object")
            return body

        def _dispatch(self, method: str, parts: list[str]) -> tuple[int, Any]:
            if parts == ["apps"] and method == "GET":
                return 200, sup.list_apps()
            if len(parts) in (2, 3) and parts[0] == "apps":
                name = parts[1]
                if len(parts) == 3:
                    if parts[2] == "restart" and method == "POST":
                        parse_app(name, sup.programs)
                        return 200, sup.restart(name)
                elif method == "GET":
                    parse_app(name, sup.programs)
                    return 200, sup.get(name).describe()
                elif method == "PUT":
                    body = self._body()
                    parse_app(name, sup.programs)
                    return 200, sup.deploy(name, check_version(body.get("version")))
                elif method == "DELETE":
                    parse_app(name, sup.programs)
                    sup.delete(name)
                    return 200, {"app": name, "deleted": True}
            raise NotFound(f"no route {method} {self.path}")

        def do_GET(self) -> None:
            self._route("GET")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def read_or_create_token(state_dir: Path) -> str:
    """The control token, generated (mode 0600) the first time."""
    path = state_dir / "control-token"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


async def serve(state_dir: Path, programs: dict[str, Program], port: int = 0) -> int:
    """Run until SIGTERM/SIGINT: restore the apps, serve the API, then stop everything."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sup = Supervisor(state_dir, programs, loop)
    token = read_or_create_token(state_dir)
    info = state_dir / "supervisor.json"
    info.unlink(missing_ok=True)
    await loop.run_in_executor(None, sup.restore)
    httpd = make_control_server(sup, token, port)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, name="control-api", daemon=True).start()
    write_atomic(info, json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    log.info("supervisor ready: %s (%d apps)", url, len(sup.apps))
    await stop.wait()
    log.info("stopping: %d backends", len(sup.children))
    info.unlink(missing_ok=True)
    await loop.run_in_executor(None, httpd.shutdown)
    await loop.run_in_executor(None, sup.shutdown)
    with sup._mu:
        fronts = [a.front for a in sup.apps.values()]
    for front in fronts:
        await front.close()
    httpd.server_close()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.supervisor",
                                     description="Run web apps with health-checked "
                                                 "version switches (no systemd needed).")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0, help="control API port (0 = free)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s supervisor %(levelname)s %(message)s")
    try:
        programs = load_programs(args.config)
    except (OSError, ValueError) as exc:
        print(f"supervisor: bad config: {exc}", file=sys.stderr)
        return 2
    state_dir = args.state_dir.expanduser().resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # one supervisor per state dir: two would fight over the same fronts and backends
    lock = open(state_dir / "supervisor.lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"supervisor: another supervisor is running on {state_dir}", file=sys.stderr)
        return 1
    return asyncio.run(serve(state_dir, programs, args.port))


if __name__ == "__main__":
    raise SystemExit(main())
