"""Fixtures: a local host running a test-only app on a background event loop.

Tests talk to it over real HTTP (``http.client``, no redirects followed) and reach into
the host (``running.call(coro)``) only to enqueue in bulk or read emulator state.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from localhost.host import Host

APPS = Path(__file__).parent / "apps"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(base_url: str, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None) -> Reply:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


class RunningHost:
    """A started ``Host`` on its own thread and loop."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(host.start())

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()
        return self.call(wrapper())

    def get(self, path: str, **kw: Any) -> Reply:
        return request(self.host.base_url, "GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return request(self.host.base_url, "POST", path, body=body, **kw)

    def stop(self) -> None:
        self.call(self.host.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def start_host(app: str, tmp: Path, env: dict[str, str] | None = None,
               **kwargs: Any) -> RunningHost:
    for key, value in (env or {}).items():
        os.environ[key] = value
    host = Host(APPS / app, port=0, state_dir=tmp / "state", **kwargs)
    return RunningHost(host)


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    env = {"BASIC_QUEUE": "work", "BASIC_SCHEDULE": "0 0 0 1 1 *"}
    running = start_host("basic", tmp_path_factory.mktemp("basic"), env,
                         web_dir=APPS / "basic" / "web", max_body_bytes=64 * 1024)
    yield running
    running.stop()
    for key in env:
        os.environ.pop(key, None)
