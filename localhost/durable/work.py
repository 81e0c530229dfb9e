"""Side effects of episodes: activities on a bounded pool, durable timers, ``call_http``.

Every result comes back as an inbox message, so it is stored before the orchestrator sees
it. After a restart ``resume`` re-runs activities whose result never reached the inbox
(at-least-once: the activity in flight at a crash runs again) and re-arms timers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from typing import TYPE_CHECKING, Any

import aiohttp
from azure.functions._durable_functions import df_dumps, df_loads

from localhost.durable import history as h
from localhost.durable.episode import HTTP_ACTIVITY, Work
from localhost.durable.store import Instance, Message

if TYPE_CHECKING:
    from localhost.durable.engine import Engine

log = logging.getLogger("localhost.durable")


class WorkRunner:
    def __init__(self, engine: Engine, max_activities: int) -> None:
        self._engine = engine
        self._slots = asyncio.Semaphore(max_activities)
        self._timers: dict[str, dict[int, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: aiohttp.ClientSession | None = None
        self.activity_runs = 0

    def start(self, inst: Instance, works: list[Work]) -> None:
        for work in works:
            if work.kind == "timer":
                self._arm(inst.instance_id, inst.execution_id, work.task_id,
                          work.payload["fire_at"])
            else:
                self._spawn(self._activity(inst.instance_id, inst.execution_id, work.task_id,
                                           work.payload["name"], work.payload["input"]))

    def resume(self, inst: Instance) -> None:
        """Restart the outstanding work of an instance loaded after a restart."""
        delivered = {
            m.body["event"].get("TaskScheduledId", m.body["event"].get("TimerId"))
            for m in inst.inbox
            if m.kind == "completion" and m.execution_id == inst.execution_id}
        for tid, spec in inst.book.activities.items():
            if tid not in delivered:
                self._spawn(self._activity(inst.instance_id, inst.execution_id, tid,
                                           spec["name"], spec["input"]))
        for tid, fire_at in inst.book.timers.items():
            if tid not in delivered:
                self._arm(inst.instance_id, inst.execution_id, tid, fire_at)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _activity(self, iid: str, execution_id: str, tid: int, name: str,
                        data: str | None) -> None:
        async with self._slots:
            self.activity_runs += 1
            try:
                if name == HTTP_ACTIVITY:
                    value: Any = await self._call_http(json.loads(data or "{}"))
                else:
                    fn = self._engine.activities.get(name)
                    if fn is None:
                        raise LookupError(f"The function '{name}' doesn't exist, is disabled, "
                                          "or is not an activity function.")
                    value = await self._engine.invoke(
                        fn, None if data is None else df_loads(data))
                ev = h.event(h.TASK_COMPLETED, h.iso(h.utc_now()), TaskScheduledId=tid,
                             Result=df_dumps(value))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ev = h.event(h.TASK_FAILED, h.iso(h.utc_now()), TaskScheduledId=tid,
                             Reason=f"Activity function '{name}' failed: "
                                    f"{type(exc).__name__}: {exc}",
                             Details="".join(traceback.format_exception(exc, limit=-3)))
        await self._store_result(self._engine.deliver_and_run, iid,
                                 Message("completion", {"event": ev}, execution_id=execution_id))

    async def _store_result(self, deliver: Any, iid: str, msg: Message) -> None:
        """Deliver a result, retrying while the store is unreachable: a result dropped
        here would leave its orchestration waiting forever (a duplicate from a retry whose
        first write did land is skipped by the episode as already delivered)."""
        failures = 0
        while True:
            try:
                await deliver(iid, msg)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning("could not store a result for %s (attempt %d); retrying", iid,
                            failures, exc_info=failures == 1)
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))

    async def _call_http(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        async with self._http.request(request.get("method", "GET"), request["uri"],
                                      data=request.get("content"),
                                      headers=request.get("headers") or None) as resp:
            body = await resp.text()
            return {"statusCode": resp.status, "headers": dict(resp.headers), "content": body}

    def _arm(self, iid: str, execution_id: str, tid: int, fire_at: str) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (h.parse_iso(fire_at) - h.utc_now()).total_seconds())
        handle = loop.call_later(delay, self._fire, iid, execution_id, tid, fire_at)
        self._timers.setdefault(iid, {})[tid] = handle

    def _fire(self, iid: str, execution_id: str, tid: int, fire_at: str) -> None:
        self._timers.get(iid, {}).pop(tid, None)
        ev = h.event(h.TIMER_FIRED, h.iso(h.utc_now()), TimerId=tid, FireAt=fire_at)
        self._spawn(self._store_result(
            self._engine.deliver, iid,
            Message("completion", {"event": ev}, execution_id=execution_id)))

    def cancel_timers(self, iid: str) -> None:
        for handle in self._timers.pop(iid, {}).values():
            handle.cancel()

    def cancel_all(self) -> None:
        for iid in list(self._timers):
            self.cancel_timers(iid)
        for task in list(self._tasks):
            task.cancel()

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
