"""The Durable engine: runs orchestration episodes and carries out what they ask for.

Each instance has an inbox; whenever it has messages, one driver task per instance runs
an episode (never two at once): admit messages as history events, replay the orchestrator
through the real SDK, store the result atomically, then start the side effects
(activities on a bounded pool, timers, sub-orchestrations). Many instances run at once.
Client operations (start, raise event, terminate, suspend, resume, purge) are messages or
store calls, so the HTTP API is a thin layer over ``Engine``.

Orchestrators run either through the invoker with a full replay every episode (the
worker protocol, ``extended_sessions=False``) or, by default, in extended sessions on the
event loop (orchestrator code is deterministic and short by contract; activities, which
may block, always go through the invoker and its thread pool).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from localhost.durable import entities
from localhost.durable import history as h
from localhost.durable.catalog import FunctionRef
from localhost.durable.episode import Plan, admit, apply_actions
from localhost.durable.operations import (  # noqa: F401 - re-exported for callers
    ClientOperations,
    DurableError,
    InstanceExists,
    InstanceGone,
    InstanceNotFound,
    NotTerminal,
    UnknownFunction,
)
from localhost.durable.replay import SCHEMA, EpisodeResult, Session, parse_failure, parse_state
from localhost.durable.store import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    PENDING,
    RUNNING,
    SUSPENDED,
    TERMINAL,
    TERMINATED,
    EpisodeWrite,
    Instance,
    InstanceStore,
    MemoryStore,
    Message,
)
from localhost.durable.work import WorkRunner

log = logging.getLogger("localhost.durable")


class _NameMap(dict[str, FunctionRef]):
    """Functions by name, looked up case-insensitively."""

    def __init__(self, functions: Any) -> None:
        super().__init__((f.name.lower(), f) for f in functions)

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

Invoker = Callable[[FunctionRef, Any], Awaitable[Any]]


class Engine(ClientOperations):
    """Runs orchestration instances of ``functions``; ``invoker`` calls user code."""

    def __init__(self, functions: list[FunctionRef], invoker: Invoker,
                 store: InstanceStore | None = None, *, max_activities: int = 64,
                 extended_sessions: bool = True, session_limit: int = 10_000,
                 preserve_unprocessed_events: bool = True,
                 clock: Callable[[], Any] = h.utc_now) -> None:
        # Function names are case-insensitive in Azure Functions, so lookups are too.
        self.orchestrators = _NameMap(f for f in functions if f.kind == "orchestrator")
        self.activities = _NameMap(f for f in functions if f.kind == "activity")
        self.entities = _NameMap(f for f in functions if f.kind == "entity")
        self.store: InstanceStore = store or MemoryStore()
        self.extended_sessions = extended_sessions
        self.preserve_unprocessed_events = preserve_unprocessed_events
        self.invoke = invoker
        self._clock = clock
        self._session_limit = session_limit
        self._sessions: OrderedDict[str, tuple[Session, str, int]] = OrderedDict()
        self._driving: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        # activity results handed straight to an episode, not yet stored (deliver_and_run)
        self._volatile: dict[str, list[Message]] = {}
        self.durable_store = getattr(self.store, "transient_errors", None) is not None
        self.work = WorkRunner(self, max_activities)
        self.episodes = 0
        self.entity_batches = 0
        self.history_events = 0  # history rows written
        self.messages = 0  # inbox messages: started, delivered, sent between instances

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store and resume every unfinished instance from its history."""
        await self.store.open()
        for inst in await self.store.unfinished():
            self.work.resume(inst)
            self._wake(inst.instance_id)

    async def stop(self) -> None:
        self.work.cancel_all()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.work.drain()
        await self.store.close()

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> None:
        task = asyncio.ensure_future(coro)
        if name is not None:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_instance(self, iid: str, name: str, input_json: str | None, version: str,
                      parent: dict[str, Any] | None) -> tuple[Instance, Message]:
        now = self._clock()
        execution_id = uuid.uuid4().hex
        inst = Instance(instance_id=iid, name=name, execution_id=execution_id, status=PENDING,
                        input=input_json, created_at=now, updated_at=now, version=version,
                        parent=parent)
        return inst, self._start_message(inst, now)

    @staticmethod
    def _start_message(inst: Instance, now: Any) -> Message:
        fields: dict[str, Any] = {
            "Name": inst.name, "Version": inst.version, "Input": inst.input,
            "OrchestrationInstance": {"InstanceId": inst.instance_id,
                                      "ExecutionId": inst.execution_id}}
        if inst.parent:
            fields["ParentInstance"] = {"OrchestrationInstance": {
                "InstanceId": inst.parent["instance_id"]}, "TaskScheduleId":
                inst.parent["task_id"]}
        ev = h.event(h.EXECUTION_STARTED, h.iso(now), **fields)
        return Message("start", {"event": ev}, execution_id=inst.execution_id)

    # ---- the per-instance driver -----------------------------------------------------
    async def deliver(self, instance_id: str, msg: Message) -> None:
        self.messages += 1
        await self.store.enqueue(instance_id, msg)
        self._wake(instance_id)

    async def deliver_and_run(self, instance_id: str, msg: Message) -> None:
        """``deliver`` an activity result, then run the episode in the caller's task when no
        driver runs (saves a task per activity result on the hot path).

        When the instance is live, running and not being driven, the result is not written
        to the inbox first: the episode that consumes it stores it as history, in the same
        single statement, so a result costs one round trip instead of two. Until then it
        is *volatile*: a crash before that commit loses it, and the restarted host runs the
        activity again (``WorkRunner.resume``: activities are at-least-once, as a crash
        during the activity itself already implies). A failed episode re-attaches it."""
        self.messages += 1
        if instance_id not in self._driving and self.durable_store:
            inst = await self.store.get(instance_id)
            if (instance_id not in self._driving and inst is not None
                    and inst.status in (RUNNING, PENDING)
                    and inst.execution_id == msg.execution_id):
                inst.inbox.append(msg)
                self._volatile.setdefault(instance_id, []).append(msg)
                self._driving[instance_id] = asyncio.Event()
                await self._drive(instance_id)
                return
        await self.store.enqueue(instance_id, msg)
        if instance_id in self._driving:
            return
        self._driving[instance_id] = asyncio.Event()
        await self._drive(instance_id)

    def _wake(self, instance_id: str) -> None:
        if instance_id in self._driving:
            return  # the running driver re-reads the inbox before it stops
        self._driving[instance_id] = asyncio.Event()
        self.spawn(self._drive(instance_id))

    async def _drive(self, instance_id: str) -> None:
        failures = 0
        try:
            while True:
                try:
                    inst = await self.store.get(instance_id)
                except getattr(self.store, "transient_errors", ()):
                    failures += 1  # the store is away: its inbox rows wait for us
                    await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
                    continue
                volatile = self._volatile.get(instance_id)
                if volatile and inst is not None:  # reloaded after a failed episode
                    inst.inbox.extend(m for m in volatile
                                      if not any(m is held for held in inst.inbox))
                if inst is None or not inst.inbox:
                    return
                if inst.status == SUSPENDED and all(
                        m.kind not in ("terminate", "resume") for m in inst.inbox):
                    await self._persist_volatile(inst)
                    return
                try:
                    await self._step(inst)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    await self._recover(inst, exc, failures)
                else:
                    if volatile:  # stored by the episode (or dropped as stale)
                        held = [m for m in volatile if any(m is i for i in inst.inbox)]
                        if held:
                            self._volatile[instance_id] = held
                        else:
                            self._volatile.pop(instance_id, None)
        finally:
            self._driving.pop(instance_id).set()

    async def _persist_volatile(self, inst: Instance) -> None:
        """Messages held back by a suspended instance go to the durable inbox after all."""
        volatile = self._volatile.pop(inst.instance_id, [])
        for msg in volatile:
            inst.inbox[:] = [m for m in inst.inbox if m is not msg]
            await self.store.enqueue(inst.instance_id, msg)

    async def _recover(self, inst: Instance, exc: Exception, failures: int) -> None:
        """An episode failed inside the engine or the store (not in user code).

        A durable store reloads the instance from its last committed state and retries
        (its inbox rows are still there); the in-memory store has no committed copy, so
        the instance fails with the error rather than continuing from a half-applied step.
        """
        self._sessions.pop(inst.instance_id, None)
        evict = getattr(self.store, "evict", None)
        if evict is not None and isinstance(exc, getattr(self.store, "transient_errors", ())):
            # The store is unreachable, not broken: wait for it however long it takes
            # (the inbox rows are safe in it), rather than failing work it never lost.
            log.warning("episode of %s: store unavailable (%s); retrying",
                        inst.instance_id, type(exc).__name__)
            evict(inst.instance_id)
            await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
            return
        if evict is not None and failures < 3:
            log.exception("episode of %s failed; reloading and retrying", inst.instance_id)
            evict(inst.instance_id)
            await asyncio.sleep(0.2 * failures)
            return
        log.exception("episode of %s failed; failing the instance", inst.instance_id)
        inst.inbox.clear()
        write = EpisodeWrite(inst, new_history=[], consumed=[])
        self._finish(inst, write, FAILED,
                     h.json_text(f"local host error: {type(exc).__name__}: {exc}"),
                     self._clock(), str(exc))
        try:
            await self._commit(write, Plan())
        except Exception:
            log.exception("could not record the failure of %s", inst.instance_id)
            if evict is not None:
                evict(inst.instance_id)

    async def _step(self, inst: Instance) -> None:
        if entities.is_entity(inst.instance_id):
            await self._entity_step(inst)
            return
        msgs, inst.inbox = inst.inbox, []
        now = self._clock()
        current = [m for m in msgs if m.execution_id in (None, inst.execution_id)]
        write = EpisodeWrite(inst, new_history=[], consumed=msgs)
        control = [m for m in current if m.kind in ("terminate", "suspend", "resume")]
        if inst.status in TERMINAL:
            await self.store.write(write)  # late results for a finished instance: drop
            return
        for m in control:
            if m.kind == "terminate":
                self._finish(inst, write, TERMINATED, h.json_text(m.body.get("reason")), now)
                await self._commit(write, Plan())
                return
            if m.kind == "suspend" and inst.status != SUSPENDED:
                inst.status = SUSPENDED
                write.new_history.append(h.event(h.EXECUTION_SUSPENDED, h.iso(now),
                                                 Reason=m.body.get("reason")))
            elif m.kind == "resume" and inst.status == SUSPENDED:
                inst.status = RUNNING
                write.new_history.append(h.event(h.EXECUTION_RESUMED, h.iso(now),
                                                 Reason=m.body.get("reason")))
        others = [m for m in current if m.kind not in ("terminate", "suspend", "resume")]
        if inst.status == SUSPENDED:  # hold everything else until resumed
            inst.inbox[:0] = others
            write.consumed = [m for m in msgs if m not in others]
            inst.updated_at = now
            inst.history.extend(write.new_history)
            await self.store.write(write)
            return
        plan = Plan()
        admit(inst, others, plan, now)
        if plan.new_events:
            started = h.event(h.ORCHESTRATOR_STARTED, h.iso(now))
            episode_events = [started, *plan.new_events]
            result = await self._run(inst, episode_events)
            self.episodes += 1
            inst.book.actions_seen = result.total_actions
            apply_actions(inst, result.actions, plan, now)
            if plan.sent:
                cached = self._sessions.get(inst.instance_id)
                if cached is not None:  # the live executor must see them, as a replay would
                    cached[0].record(plan.sent)
            write.new_history.extend(episode_events)
            write.new_history.extend(plan.scheduled)
            write.new_history.append(h.event(h.ORCHESTRATOR_COMPLETED, h.iso(now)))
            self._outcome(inst, write, plan, result, now)
        elif plan.scheduled:
            write.new_history.extend(plan.scheduled)
        await self._commit(write, plan)

    async def _run(self, inst: Instance, events: list[dict[str, Any]]) -> EpisodeResult:
        fn = self.orchestrators.get(inst.name)
        if fn is None:
            return EpisodeResult([], inst.book.actions_seen, done=True,
                                 error=f"orchestrator function '{inst.name}' not found")
        if inst.status in (PENDING, CONTINUED_AS_NEW):
            inst.status = RUNNING
        cached = self._sessions.get(inst.instance_id)
        if cached is not None:
            session, execution_id, length = cached
            if (execution_id == inst.execution_id and length == len(inst.history)
                    and session.seen == inst.book.actions_seen):
                self._sessions.move_to_end(inst.instance_id)
                return session.step(events)
            self._sessions.pop(inst.instance_id, None)
        context_json = inst.history.context_json(
            events, instanceId=inst.instance_id, isReplaying=False,
            parentInstanceId=(inst.parent or {}).get("instance_id"), input=inst.input,
            **SCHEMA)
        if self.extended_sessions and Session.supported(fn.user_function):
            session = Session(fn.user_function)
            session.seen = inst.book.actions_seen
            result = session.start(context_json)
            if not result.done:
                self._sessions[inst.instance_id] = (session, inst.execution_id, -1)
                while len(self._sessions) > self._session_limit:
                    self._sessions.popitem(last=False)
            return result
        try:
            returned = await self.invoke(fn, context_json)
        except Exception as exc:
            return parse_failure(exc, inst.book.actions_seen)
        return parse_state(returned, inst.book.actions_seen)

    def _outcome(self, inst: Instance, write: EpisodeWrite, plan: Plan,
                 result: EpisodeResult, now: Any) -> None:
        if result.custom_status is not None:
            inst.custom_status = result.custom_status
        if plan.unsupported and not result.done:
            result = EpisodeResult([], result.total_actions, done=True, error=plan.unsupported)
        if not result.done:
            inst.updated_at = now
            return
        if plan.continued and result.error is None:
            self._continue_as_new(inst, write, plan, now)
        elif result.error is not None:
            message = f"Orchestrator function '{inst.name}' failed: {result.error}"
            self._finish(inst, write, FAILED, h.json_text(message), now, result.error)
        else:
            self._finish(inst, write, COMPLETED, result.output, now)

    def _continue_as_new(self, inst: Instance, write: EpisodeWrite, plan: Plan,
                         now: Any) -> None:
        held = inst.book.buffered if self.preserve_unprocessed_events else []
        self._sessions.pop(inst.instance_id, None)
        self.work.cancel_timers(inst.instance_id)
        inst.execution_id = uuid.uuid4().hex
        inst.input = plan.continue_as_new
        inst.status = CONTINUED_AS_NEW
        inst.updated_at = now
        inst.history = h.HistoryLog()
        inst.book = type(inst.book)()
        write.reset_history = True
        write.new_history = []
        plan.work.clear()
        plan.children.clear()
        plan.self_messages = [self._start_message(inst, now)] + [
            Message("event", {"name": name, "input": data}) for name, data in held]

    def _finish(self, inst: Instance, write: EpisodeWrite, status: str, output: str | None,
                now: Any, error: str | None = None) -> None:
        inst.status = status
        inst.output = output
        inst.updated_at = now
        self._sessions.pop(inst.instance_id, None)
        kind = {COMPLETED: h.EXECUTION_COMPLETED, FAILED: h.EXECUTION_FAILED,
                TERMINATED: h.EXECUTION_TERMINATED}[status]
        write.new_history.append(h.event(kind, h.iso(now), OrchestrationStatus=status,
                                         Result=output))
        parent = inst.parent
        if parent:
            tid = parent["task_id"]
            if status == COMPLETED:
                ev = h.event(h.SUB_ORCHESTRATION_COMPLETED, h.iso(now), TaskScheduledId=tid,
                             Result=output)
            else:
                reason = (f"Orchestrator function '{inst.name}' failed: {error}" if error
                          else f"Sub-orchestration '{inst.instance_id}' was {status.lower()}")
                ev = h.event(h.SUB_ORCHESTRATION_FAILED, h.iso(now), TaskScheduledId=tid,
                             Reason=reason, Details=error or "")
            write.added_messages.append((parent["instance_id"], Message(
                "completion", {"event": ev}, execution_id=parent["execution_id"])))

    async def _commit(self, write: EpisodeWrite, plan: Plan) -> None:
        inst = write.instance
        for spec in plan.children:
            child = await self._child_instance(inst, spec)
            if isinstance(child, Message):
                plan.self_messages.append(child)
            else:
                write.created.append(child)
        for msg in plan.self_messages:
            write.added_messages.append((inst.instance_id, msg))
        for target, op in plan.entity_ops:
            await self.ensure_entity(target)
            write.added_messages.append((target, op))
        if not write.reset_history:
            inst.history.extend(write.new_history)
        self.history_events += len(write.new_history)
        self.messages += len(write.added_messages) + sum(len(c.inbox) for c in write.created)
        submit = getattr(self.store, "submit", None)
        queued = submit(write) if submit is not None and inst.status not in TERMINAL else None
        if queued is not None:
            # An ordinary episode (it schedules work, tells nobody else anything) is not
            # waited for: its activities start while its commit is under way and the next
            # episode may run meanwhile (the store commits an instance's episodes in order,
            # several in one statement when they pile up). Nothing outside learns of it
            # before it is durable: the only effects are at-least-once activities, which a
            # lost commit runs again (``_write_failed``), as after a crash. Episodes that
            # finish the instance or reach other instances still wait for their commit.
            if queued.done() and queued.exception() is not None:
                raise queued.exception()  # refused: an earlier episode of it failed
            queued.add_done_callback(lambda f: self._write_failed(inst.instance_id, f))
        else:
            await self.store.write(write)
        cached = self._sessions.get(inst.instance_id)
        if cached is not None:
            self._sessions[inst.instance_id] = (cached[0], cached[1], len(inst.history))
        self.work.start(inst, plan.work)
        for child in write.created:
            self._wake(child.instance_id)
        for target, _ in write.added_messages:
            self._wake(target)
        if inst.status in TERMINAL:
            self._volatile.pop(inst.instance_id, None)
            self.work.cancel_timers(inst.instance_id)
            for fut in self._waiters.pop(inst.instance_id, []):
                if not fut.done():
                    fut.set_result(None)

    def _write_failed(self, instance_id: str, fut: asyncio.Future[None]) -> None:
        """An episode queued without waiting did not commit: the store has dropped the
        instance's live copy; reload its committed state and run again the work that
        state still waits for, as after a restart."""
        if fut.cancelled() or fut.exception() is None:
            return
        log.warning("episode of %s not stored (%s); resuming from its committed state",
                    instance_id, type(fut.exception()).__name__)
        self._sessions.pop(instance_id, None)
        self._volatile.pop(instance_id, None)
        if not any(t.get_name() == f"resume:{instance_id}" for t in self._tasks):
            self.spawn(self._resume_committed(instance_id), name=f"resume:{instance_id}")

    async def _resume_committed(self, instance_id: str) -> None:
        failures = 0
        while True:
            driving = self._driving.get(instance_id)
            if driving is not None:  # its driver meets the refusal first and recovers
                await driving.wait()
                continue
            evict = getattr(self.store, "evict", None)
            if evict is not None:
                evict(instance_id)
            try:
                inst = await self.store.get(instance_id)
                break
            except getattr(self.store, "transient_errors", ()):
                failures += 1
                await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
        if inst is None or inst.status in TERMINAL:
            return
        self.work.resume(inst)
        self._wake(instance_id)

    async def _child_instance(self, parent: Instance, spec: dict[str, Any]) -> Instance | Message:
        """A sub-orchestration to create, or the failure message if it cannot start."""
        tid, child_id = spec["task_id"], spec["instance_id"]
        existing = await self.store.get(child_id)
        problem = None
        if spec["name"] not in self.orchestrators:
            problem = f"orchestrator function '{spec['name']}' not found"
        elif existing is not None and existing.status not in TERMINAL:
            problem = f"an instance with ID '{child_id}' is already {existing.status}"
        if problem is not None:
            ev = h.event(h.SUB_ORCHESTRATION_FAILED, h.iso(self._clock()), TaskScheduledId=tid,
                         Reason=f"Could not start sub-orchestration: {problem}", Details="")
            return Message("completion", {"event": ev}, execution_id=parent.execution_id)
        child, start = self._new_instance(child_id, spec["name"], spec["input"],
                                          parent.version, {
                                              "instance_id": parent.instance_id,
                                              "execution_id": parent.execution_id,
                                              "task_id": tid})
        child.inbox.append(start)
        self._sessions.pop(child_id, None)
        return child

    # ---- entities ----------------------------------------------------------------------
    async def ensure_entity(self, instance_id: str) -> None:
        """Create the (not yet existing) entity instance so messages can be stored for it."""
        if await self.store.get(instance_id) is not None:
            return
        now = self._clock()
        name, _ = entities.split(instance_id)
        inst = Instance(instance_id=instance_id, name=name, execution_id="", status=RUNNING,
                        input=None, created_at=now, updated_at=now)
        try:
            await self.store.create(inst, Message("init", {}))
        except InstanceExists:
            return  # created meanwhile by another caller
        self._wake(instance_id)

    async def _entity_step(self, inst: Instance) -> None:
        """Run every queued operation of an entity as one batch, answer the callers, and
        store the new state, the consumed operations and the answers in one write."""
        msgs, inst.inbox = inst.inbox, []
        ops = [m for m in msgs if m.kind == "op"]
        write = EpisodeWrite(inst, new_history=[], consumed=msgs)
        if ops:
            name, _ = entities.split(inst.instance_id)
            fn = self.entities.get(name)
            if fn is None:
                outcome = entities.failed_batch(
                    ops, inst.output, f"The entity function '{name}' doesn't exist.")
            else:
                try:
                    returned = await self.invoke(
                        fn, entities.context_json(inst.instance_id, inst.output, ops))
                    outcome = entities.parse_outcome(returned, ops, inst.output)
                except Exception as exc:
                    outcome = entities.failed_batch(ops, inst.output,
                                                    f"{type(exc).__name__}: {exc}")
            self.entity_batches += 1
            inst.output = outcome.state
            inst.updated_at = self._clock()
            for op, (result, error) in zip(ops, outcome.results, strict=True):
                answer = entities.response(op, result, error)
                if answer is not None:
                    write.added_messages.append(answer)
        await self.store.write(write)
        for target, _ in write.added_messages:
            self._wake(target)
