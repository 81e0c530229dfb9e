"""Language worker processes: ``FUNCTIONS_WORKER_PROCESS_COUNT`` as the Functions host has it.

In Azure the host runs each app's functions in N Python worker processes (the setting,
1 by default) and dispatches invocations to them over gRPC. Here ``WorkerPool`` starts N
``python -m localhost.worker`` processes, each importing the app, and sends them
invocations over a socket pair (a 4-byte length, then a pickle; see ``Channel``).

- **What runs where.** HTTP, Service Bus, timer and activity functions run in a worker;
  orchestrator episodes and entity batches stay in the host beside the Durable engine
  (they are short replays, and the engine keeps extended sessions in memory). The host
  resolves input bindings (``durableClient`` is a JSON string), the worker builds
  ``func.Out`` values and ``context`` and calls the function: sync ones on its thread
  pool, async ones on its event loop, several invocations at once, as the Python worker
  does. A Durable client in a worker reaches the host over its Durable HTTP API, as in
  Azure.
- **Dispatch.** Least busy (fewest invocations in flight), ties in turn.
- **A worker that dies** (killed, crashed, ``os._exit``) fails every invocation it was
  running with ``WorkerCrashed``, as a function crash fails in Azure: a Service Bus
  message is abandoned and redelivered, an activity fails and the orchestration's retry
  policy decides, an HTTP caller gets a 500. The pool starts a replacement at once
  (after a failed start, with a back-off up to 5 s).
- **Shutdown.** ``stop()`` asks each worker to finish what it runs and exit, kills one
  that has not within the grace period, and waits for every process: none is left
  behind. A worker also exits on its own when its socket closes (the host died).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import pickle
import socket
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from localhost.functions import FunctionInfo
from localhost.invocation import InvocationResult

log = logging.getLogger("localhost.workers")

SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"
MAX_WORKERS = 10  # Azure's upper bound for the setting
# Trigger types whose functions stay in the host (the Durable engine replays them).
HOST_ONLY = frozenset({"orchestrationTrigger", "entityTrigger"})
_HEADER = struct.Struct("!I")
START_TIMEOUT = 120.0  # importing a large app on a loaded machine takes a while


class WorkerCrashed(RuntimeError):
    """The worker process running an invocation exited before answering."""


class RemoteError(RuntimeError):
    """A function failed in a worker with an exception that could not travel back."""


def worker_count(environ: Mapping[str, str] | None = None,
                 app_dir: Path | None = None) -> int:
    """``FUNCTIONS_WORKER_PROCESS_COUNT`` from the environment, else from the app's
    ``local.settings.json`` ``Values`` (as Core Tools reads it); 1 when unset.

    Azure accepts 1 to 10; anything else is an error here rather than a silent default.
    """
    env = os.environ if environ is None else environ
    raw = env.get(SETTING, "").strip()
    if not raw and app_dir is not None:
        raw = str(_local_settings(app_dir).get(SETTING, "")).strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise ValueError(f"{SETTING} must be a whole number from 1 to {MAX_WORKERS}, "
                         f"not {raw!r}")
    return int(raw)


def _local_settings(app_dir: Path) -> dict[str, Any]:
    import json

    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values") or {}
    except (ValueError, AttributeError):
        return {}
    return values if isinstance(values, dict) else {}


# -- the wire: length-prefixed pickles ---------------------------------------------------

def _http_request(method: str, url: str, headers: dict[str, str], params: dict[str, str],
                  route_params: dict[str, str], body: bytes) -> func.HttpRequest:
    return func.HttpRequest(method=method, url=url, headers=headers, params=params,
                            route_params=route_params, body=body)


class _Pickler(pickle.Pickler):
    """``func.HttpRequest`` holds mapping proxies, which pickle refuses: send its parts."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is func.HttpRequest:
            return _http_request, (obj.method, obj.url, dict(obj.headers), dict(obj.params),
                                   dict(obj.route_params), obj.get_body())
        return NotImplemented


def dumps(message: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


def encode_error(exc: BaseException) -> bytes:
    """The exception itself when it pickles (and unpickles), else its type and text."""
    try:
        data = dumps(exc)
        pickle.loads(data)
        return data
    except Exception:
        return dumps(RemoteError(f"{type(exc).__name__}: {exc}"))


class Channel:
    """Frames over a stream: ``send(obj)`` and ``await receive()`` (None at EOF)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**20)
        return cls(reader, writer)

    def send(self, message: Any) -> None:
        self.send_raw(dumps(message))

    def send_raw(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(_HEADER.pack(len(data)) + data)

    async def receive(self) -> Any:
        try:
            header = await self.reader.readexactly(_HEADER.size)
            body = await self.reader.readexactly(_HEADER.unpack(header)[0])
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return pickle.loads(body)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


# -- the host side ------------------------------------------------------------------------

@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    channel: Channel
    pending: dict[int, tuple[asyncio.Future[InvocationResult], str]] = field(
        default_factory=dict)
    ready: bool = False
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    """N worker processes for the app in ``app_dir``; ``invoke`` runs a function in one."""

    def __init__(self, app_dir: Path, count: int, *, log_level: str | None = None) -> None:
        self.app_dir = app_dir
        self.count = count
        self._log_level = log_level
        self._workers: list[_Worker | None] = [None] * count
        self._ids = itertools.count(1)
        self._turn = itertools.count()
        self._stopping = False
        self._available = asyncio.Event()
        self._restarts: set[asyncio.Task[None]] = set()
        self.started = 0  # processes started (restarts included)
        self.crashed = 0  # processes that exited without being asked to

    @staticmethod
    def serves(fn: FunctionInfo) -> bool:
        return fn.trigger_type not in HOST_ONLY

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w is not None and w.ready]

    async def start(self) -> None:
        """Start every worker and wait until each has imported the app."""
        await asyncio.gather(*(self._spawn(i) for i in range(self.count)))

    async def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            env = dict(os.environ)
            root = str(Path(__file__).resolve().parents[1])  # where ``localhost`` imports from
            env["PYTHONPATH"] = os.pathsep.join(
                [root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
            if self._log_level:
                env.setdefault("CLOUDOPS_LOG_LEVEL", self._log_level)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "localhost.worker", "--fd", str(theirs.fileno()),
                "--app", str(self.app_dir), "--index", str(index),
                pass_fds=(theirs.fileno(),), env=env, stdin=asyncio.subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.started += 1
        channel = await Channel.open(ours)
        worker = _Worker(index, process, channel)
        self._workers[index] = worker
        try:
            hello = await asyncio.wait_for(channel.receive(), START_TIMEOUT)
        except TimeoutError:
            hello = None
        if not (isinstance(hello, tuple) and hello[:1] == ("ready",)):
            channel.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            self._workers[index] = None
            detail = hello[1] if isinstance(hello, tuple) and hello[:1] == ("failed",) \
                else f"exit code {process.returncode}"
            raise RuntimeError(f"worker process {index} did not start: {detail}")
        worker.ready = True
        worker.reader = asyncio.create_task(self._read(worker))
        self._available.set()
        log.info("worker process %d (pid %d) ready", index, worker.pid)

    async def _read(self, worker: _Worker) -> None:
        channel = worker.channel
        while True:
            message = await channel.receive()
            if message is None:
                break
            kind, call_id, payload = message
            entry = worker.pending.pop(call_id, None)
            if entry is None or entry[0].done():
                continue
            future = entry[0]
            try:
                value = pickle.loads(payload)
            except Exception as exc:  # a type the host cannot import
                future.set_exception(RemoteError(
                    f"function {entry[1]}: its {'result' if kind == 'ok' else 'error'} "
                    f"could not be read in the host ({type(exc).__name__}: {exc})"))
                continue
            if kind == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)
        channel.close()
        code = await worker.process.wait()
        worker.ready = False
        if self._workers[worker.index] is worker:
            self._workers[worker.index] = None
        for future, name in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerCrashed(
                    f"worker process {worker.index} (pid {worker.pid}) exited with code "
                    f"{code} while running function {name}"))
        worker.pending.clear()
        if self._stopping:
            return
        self.crashed += 1
        log.error("worker process %d (pid %d) exited with code %s; starting another",
                  worker.index, worker.pid, code)
        if not any(w is not None and w.ready for w in self._workers):
            self._available.clear()
        task = asyncio.create_task(self._respawn(worker.index))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _respawn(self, index: int) -> None:
        delay = 0.0
        while not self._stopping:
            try:
                await self._spawn(index)
                return
            except Exception as exc:
                delay = min(5.0, delay * 2 or 0.25)
                log.error("%s; trying again in %.2fs", exc, delay)
                await asyncio.sleep(delay)

    async def _pick(self) -> _Worker:
        while True:
            ready = [w for w in self._workers if w is not None and w.ready]
            if ready:
                turn = next(self._turn)
                ready.sort(key=lambda w: (len(w.pending), (w.index - turn) % self.count))
                return ready[0]
            if self._stopping:
                raise WorkerCrashed("the host is stopping; no worker process is running")
            self._available.clear()
            await self._available.wait()

    async def invoke(self, fn: FunctionInfo, values: dict[str, Any]) -> InvocationResult:
        """Run ``fn`` with its bound ``values`` in the least busy worker."""
        worker = await self._pick()
        call_id = next(self._ids)
        data = dumps(("invoke", call_id, fn.name, values))
        future: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        worker.pending[call_id] = (future, fn.name)
        worker.channel.send_raw(data)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # the caller gave up (an HTTP caller left): an async function stops at its
            # next await, a sync one runs to its end, as in the Python worker
            if not future.done():
                worker.channel.send(("cancel", call_id, None))
            raise

    async def stop(self, grace: float = 30.0) -> None:
        """Ask every worker to finish and exit; kill any still running after ``grace``."""
        self._stopping = True
        self._available.set()
        for task in list(self._restarts):
            task.cancel()
        workers = [w for w in self._workers if w is not None]
        for worker in workers:
            worker.channel.send(("stop", 0, None))
        deadline = time.monotonic() + grace
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(),
                                       max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.error("worker process %d (pid %d) still running after %.0fs; killed",
                          worker.index, worker.pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
            if worker.reader is not None:
                await asyncio.gather(worker.reader, return_exceptions=True)
            worker.channel.close()
        self._workers = [None] * self.count
