"""One language worker process: ``python -m localhost.worker --fd N --app DIR``.

Started by ``localhost.workers.WorkerPool``. It imports the app as the host did, says
``ready``, then runs the invocations the host sends over the socket ``--fd`` (several at
once: sync functions on a thread pool, async ones on this loop) and answers each with its
``InvocationResult`` or its exception. ``stop`` lets running invocations finish, then the
process exits; when the host's end of the socket closes without ``stop`` (the host died),
it exits at once, so no worker outlives its host. Ctrl-C in a terminal reaches the whole
process group: workers ignore it and wait for the host's ``stop``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from localhost import sdk_http
from localhost.functions import FunctionInfo, find_function_app, index_functions, load_app_module
from localhost.invocation import Invoker
from localhost.workers import Channel, dumps, encode_error

log = logging.getLogger("localhost.worker")


async def serve(fd: int, app_dir: Path) -> int:
    channel = await Channel.open(socket.socket(fileno=fd))
    try:
        module = load_app_module(app_dir)
        functions = {f.name: f for f in index_functions(find_function_app(module))}
    except Exception as exc:
        log.exception("the app failed to load in the worker")
        channel.send(("failed", f"{type(exc).__name__}: {exc}"))
        await channel.writer.drain()
        channel.close()
        return 1
    invoker = Invoker(str(app_dir))
    running: dict[int, asyncio.Task[None]] = {}
    sdk_http.install()  # the app's Durable client calls the host without aiohttp's client

    async def run(call_id: int, fn: FunctionInfo | None, name: str,
                  values: dict[str, Any]) -> None:
        try:
            if fn is None:
                raise LookupError(f"the worker has no function {name!r}")
            result = await invoker.run(fn, values)
            try:
                payload = dumps(result)
            except Exception as exc:
                raise TypeError(f"function {name} returned a value the host cannot "
                                f"receive: {type(exc).__name__}: {exc}") from exc
            channel.send(("ok", call_id, payload))
        except asyncio.CancelledError:  # the host no longer waits for the answer
            channel.send(("error", call_id, encode_error(RuntimeError("cancelled"))))
        except Exception as exc:
            channel.send(("error", call_id, encode_error(exc)))

    channel.send(("ready", os.getpid()))
    while True:
        message = await channel.receive()
        if message is None:
            # the host is gone: nobody can receive results; do not outlive it
            log.error("the host closed the connection; worker %d exits", os.getpid())
            os._exit(1)
        kind, call_id, *rest = message
        if kind == "invoke":
            name, values = rest
            started = asyncio.create_task(run(call_id, functions.get(name), name, values))
            running[call_id] = started
            started.add_done_callback(functools.partial(_forget, running, call_id))
        elif kind == "cancel":
            if (in_flight := running.get(call_id)) is not None:
                in_flight.cancel()
        elif kind == "stop":
            break
    if running:
        await asyncio.gather(*running.values(), return_exceptions=True)
    from localhost.durable import release_client_session

    await release_client_session()
    sdk_http.close()
    await channel.writer.drain()
    channel.close()
    invoker.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--app", type=Path, required=True)
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when workers stop
    level = os.environ.get("CLOUDOPS_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO), stream=sys.stderr,
        format=f"%(asctime)s worker{args.index} %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(args.fd, args.app.resolve()))


def _forget(running: dict[int, asyncio.Task[None]], call_id: int, _task: object) -> None:
    """A finished invocation leaves the table of cancellable ones."""
    running.pop(call_id, None)


if __name__ == "__main__":
    sys.exit(main())
