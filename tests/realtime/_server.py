"""A tiny aiohttp server in a background thread hosting only the SignalR emulation.

It lets the synchronous app adapter and asyncio test clients talk to the real emulation
over loopback HTTP without the full local host.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from localhost.signalr import ClientOptions, SignalRExtension


@dataclass
class Emulator:
    base_url: str
    extension: SignalRExtension
    loop: asyncio.AbstractEventLoop

    @property
    def endpoint(self) -> str:
        return self.extension.endpoint

    @property
    def connection_string(self) -> str:
        return self.extension.connection_string

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop (to inspect or poke service state)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def run_emulator(state_dir: Path, options: ClientOptions | None = None,
                 cors_origins: list[str] | None = None,
                 extra_routes: Callable[[web.Application], None] | None = None
                 ) -> Iterator[Emulator]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    ext = SignalRExtension(options=options, cors_origins=cors_origins,
                           set_connection_setting=False)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: dict[str, web.AppRunner] = {}

    async def start() -> None:
        app = web.Application()
        ext.attach(app, base_url=base_url, state_dir=state_dir)
        if extra_routes is not None:
            extra_routes(app)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await ext.start()
        runner_box["runner"] = runner

    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="signalr-emulator", daemon=True)
    thread.start()
    ready.wait(10)
    if failure:
        thread.join()
        loop.close()
        raise RuntimeError("emulator failed to start") from failure[0]
    try:
        yield Emulator(base_url=base_url, extension=ext, loop=loop)
    finally:
        async def stop() -> None:
            await ext.stop()
            await runner_box["runner"].cleanup()
            # Idle keep-alive handlers may outlive cleanup; end them before the loop closes.
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
