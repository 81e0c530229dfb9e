"""The long-poll waiter: one LISTEN connection per process, fanned out to waiting polls.

Each held ``GET /api/agent/jobs/next`` registers a waiter (pool + labels) and sleeps on an
``asyncio.Event``; nothing runs while agents are idle. ``create_job`` sends
``NOTIFY cloudops_jobs`` with the job's pool and demands after its transaction commits,
and the listener wakes exactly one waiter that can take it, which then claims with
``FOR UPDATE SKIP LOCKED``. Waking one instead of all keeps pickup cheap with hundreds
of idle agents. The most recent poll is preferred: a poll held longest is the one most
likely to have been cut by a proxy or left by an agent that died, and a job handed to a
dead poll waits for a lease to expire.

A wake-up is a token that must not be lost: a waiter that was woken but leaves without
claiming after the wake (its request was cancelled, or its claim began before the wake)
hands the token to the next matching waiter. When the LISTEN connection (re)connects,
every waiter is woken once, since notifications sent meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from shared.store import jobs as job_store

log = logging.getLogger("cloudops.agents.waiter")
T = TypeVar("T")


@dataclass(eq=False)
class Waiter:
    pool: str
    labels: frozenset[str]
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def can_take(self, demands: list[str]) -> bool:
        return self.labels.issuperset(demands)


class JobWaiter:
    """Fan-out of job notifications to the long polls of this process (one event loop)."""

    def __init__(self, url: str, *, listen: bool = True) -> None:
        self._url = url
        self._listen_enabled = listen  # False: notifications come only through handle()
        self._waiters: dict[str, list[Waiter]] = {}
        self._listener: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.notifications = 0

    # -- registration -------------------------------------------------------------------
    def register(self, pool: str, labels: list[str] | tuple[str, ...]) -> Waiter:
        self._ensure_listener()
        waiter = Waiter(pool, frozenset(labels))
        self._waiters.setdefault(pool, []).append(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        queue = self._waiters.get(waiter.pool, [])
        with contextlib.suppress(ValueError):
            queue.remove(waiter)
        if not queue:
            self._waiters.pop(waiter.pool, None)
        if waiter.event.is_set():  # woken but never claimed after it: pass the token on
            self._wake_one(waiter.pool, list(waiter.labels))

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiters.values())

    # -- the long poll ------------------------------------------------------------------
    async def next_job(self, pool: str, labels: list[str] | tuple[str, ...], wait: float,
                       claim: Callable[[], Awaitable[T | None]]) -> T | None:
        """Claim at once, else sleep until woken (then claim again) or ``wait`` elapses."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait)
        waiter = self.register(pool, labels)
        try:
            while True:
                waiter.event.clear()  # a token delivered before this claim is used by it
                found = await claim()
                if found is not None:
                    return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(waiter.event.wait(), remaining)
                except TimeoutError:
                    return None
        finally:
            self.unregister(waiter)

    # -- notifications ------------------------------------------------------------------
    def _wake_one(self, pool: str, demands: list[str]) -> bool:
        for waiter in reversed(self._waiters.get(pool, [])):  # the most recent poll first
            if not waiter.event.is_set() and waiter.can_take(demands):
                waiter.event.set()
                return True
        return False

    def _wake_all(self) -> None:
        for queue in self._waiters.values():
            for waiter in queue:
                waiter.event.set()

    def handle(self, payload: str) -> None:
        self.notifications += 1
        try:
            data = json.loads(payload)
            pool, demands = str(data["pool"]), [str(d) for d in data.get("demands", [])]
        except (ValueError, KeyError, TypeError):
            pool, demands = payload.strip(), []  # a bare pool id (older senders)
        self._wake_one(pool, demands)

    def _ensure_listener(self) -> None:
        if not self._listen_enabled:
            return
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(), name="cloudops-job-listener")

    async def _listen(self) -> None:
        """Listen until cancelled. Connecting is retried with jittered backoff (0.5 s, growing
        to 10 s); a connection that held and then dropped starts a fresh round at once."""
        while True:
            retrying = AsyncRetrying(wait=wait_random_exponential(multiplier=0.5, max=10.0),
                                     retry=retry_if_exception_type(Exception),
                                     before_sleep=self._lost)
            async for attempt in retrying:
                with attempt:
                    conn = await self._connect()
            try:
                async with conn:
                    self.connected.set()
                    self._wake_all()  # anything sent while we were not listening
                    async for notify in conn.notifies():
                        self.handle(notify.payload)
            except Exception as exc:
                self.connected.clear()
                log.warning("job listener lost its connection (%s); reconnecting", exc)

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        try:
            await job_store.listen_for_jobs(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    def _lost(self, state: RetryCallState) -> None:
        self.connected.clear()
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("job listener could not connect (%s); retrying", exc)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None


_instances: dict[tuple[int, str], JobWaiter] = {}


def job_waiter(url: str) -> JobWaiter:
    """The waiter of the running event loop for database ``url`` (one per process loop)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), url)
    waiter = _instances.get(key)
    if waiter is None:
        # drop waiters of loops that have ended (tests start several)
        for old in [k for k, w in _instances.items()
                    if w._listener is not None and w._listener.get_loop().is_closed()]:
            _instances.pop(old, None)
        waiter = _instances[key] = JobWaiter(url)
    return waiter
