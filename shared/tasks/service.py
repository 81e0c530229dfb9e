"""Task pipeline operations used by HTTP functions, activities and timers.

Every status change is one transaction (with its audit row, see ``shared.store.tasks``)
followed by one realtime publish; log lines go to the log store and out as ``taskLog``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from shared.agents.work import cancel_jobs_for_task
from shared.api.views import task_json
from shared.auth.principal import display_name
from shared.bus import BusMessage
from shared.domain.models import Environment, Project, Task
from shared.domain.task_states import TaskStatus
from shared.errors import InvalidTransition
from shared.logs import LogLine
from shared.realtime.events import (
    publish_new_task,
    publish_task_end,
    publish_task_log,
    publish_task_update,
    publish_task_updates,
)
from shared.redact import scrub_lines
from shared.services import Services
from shared.store import activity as activity_store
from shared.store import environment_leases as queue
from shared.store import jobs as job_store
from shared.store import tasks as task_store
from shared.telemetry import inject_trace

T = TypeVar("T")
log = logging.getLogger("cloudops.tasks")

# A queued task whose orchestration has not picked it up ``resend_after_seconds`` after
# its last send is re-sent; after MAX_ENQUEUE_ATTEMPTS it fails with the reason.
MAX_ENQUEUE_ATTEMPTS = 5
# What an orchestration reports when it stopped because someone asked; the task's reason
# then names who (``cancelled_by``).
CANCEL_REQUESTED = "cancel requested"


class Finished(NamedTuple):
    task: Task | None
    granted: UUID | None


@dataclass
class TaskService:
    services: Services

    # -- submission -----------------------------------------------------------------
    def submit(self, *, project: Project, environment: Environment, operation: str,
               parameters: dict[str, Any], actor: str,
               idempotency_key: str | None = None,
               pre_approved_by: str | None = None) -> tuple[Task, bool]:
        """Record the task and send its session message; a retried key returns the
        existing task without sending again. A protected operation waits for approval
        unless ``pre_approved_by`` names someone allowed to approve (a schedule's
        creator, for its runs)."""
        from shared.tasks.approvals import hold_for_approval

        with self.services.db.transaction() as conn:
            task, created = self.record(conn, project=project, environment=environment,
                                        operation=operation, parameters=parameters,
                                        actor=actor, idempotency_key=idempotency_key)
            if created:
                task = hold_for_approval(conn, task, environment, pre_approved_by)
        if created:
            self.announce(task)
        return task, created

    @staticmethod
    def record(conn: Any, *, project: Project, environment: Environment, operation: str,
               parameters: dict[str, Any], actor: str,
               idempotency_key: str | None = None,
               secrets: dict[str, Any] | None = None,
               fingerprint: str | None = None) -> tuple[Task, bool]:
        """The task row (queued, counted as sent once) inside the caller's transaction;
        after commit, call ``announce`` for a created task. The task records its resolved
        plan (resources, script argv): what approvers approve and dispatch runs.
        ``secrets`` are kept apart from the parameters (never in task JSON, masked in
        logs). A key reused for a different request (``fingerprint``) raises
        ``IdempotencyKeyReused``."""
        from shared.grants.plan import resolve_plan

        return task_store.create_task(
            conn, project_id=project.id, environment_id=environment.id, operation=operation,
            parameters=parameters, requested_by=actor, idempotency_key=idempotency_key,
            plan=resolve_plan(conn, environment, operation, parameters), secrets=secrets,
            fingerprint=fingerprint)

    def announce(self, task: Task) -> None:
        """After the task row committed: publish it (to its project: see
        ``publish_new_task``) and send its message."""
        publish_new_task(self.services.realtime, task_json(task))
        self._send(task)

    def enqueue(self, task: Task) -> None:
        """Send the task's message again (the sweeper), counting the attempt."""
        with self.services.db.transaction() as conn:
            task_store.count_enqueue(conn, task.id)
        self._send(task)

    def _send(self, task: Task) -> None:
        """SessionId = environment, MessageId = task. A failed send leaves the task queued
        for the sweeper; it is never silently stuck."""
        try:
            self.services.bus.send(BusMessage(
                session_id=str(task.environment_id), message_id=str(task.id),
                body={"taskId": str(task.id), "operation": task.operation,
                      "environmentId": str(task.environment_id)},
                application_properties=inject_trace({}), subject=task.operation))
        except Exception as exc:  # any transport failure: the sweeper retries
            log.warning("enqueue of task %s failed (%s); the sweeper will retry",
                        task.id, type(exc).__name__)

    def sweep_unqueued(self) -> tuple[dict[str, int], list[UUID]]:
        """Re-send queued tasks nobody picked up; fail those out of attempts. Returns
        counts and the orchestrations to wake (granted an environment)."""
        resent = failed = 0
        woken: list[UUID] = []
        with self.services.db.transaction() as conn:
            rows = task_store.unpicked_queued_tasks(
                conn, older_than_seconds=self.services.settings.resend_after_seconds,
                limit=200)
        for task, attempts in rows:
            if attempts >= MAX_ENQUEUE_ATTEMPTS:
                done = self.finish(task.id, TaskStatus.FAILED, reason="could not be queued",
                                   error=f"the task message was sent {attempts}"
                                         " times and never picked up", actor="sweeper")
                if done.task is not None:
                    failed += 1
                    woken.extend([done.granted] if done.granted else [])
            else:
                self.enqueue(task)
                resent += 1
        return {"resent": resent, "failed": failed}, woken

    # -- state changes ----------------------------------------------------------------
    def publish(self, task: Task) -> None:
        publish_task_update(self.services.realtime, task_json(task))

    def move(self, task_id: UUID, status: TaskStatus, *, reason: str, actor: str = "system",
             progress: int | None = None) -> Task:
        with self.services.db.transaction() as conn:
            task = task_store.transition(conn, task_id, status, actor=actor, reason=reason,
                                         progress=progress)
        self.publish(task)
        return task

    def finish(self, task_id: UUID, status: TaskStatus, *, reason: str,
               error: str | None = None, result: dict[str, Any] | None = None,
               actor: str = "system", closing_log: Sequence[LogLine] = ()) -> Finished:
        """End a task (terminal status) and hand its environment to the next task.

        Finishing is idempotent: a task that had already ended gives ``task=None``. The
        caller wakes ``granted`` (an orchestration instance id) with the durable client.
        ``closing_log``: lines the caller stored with ``log(..., publish=False)`` just
        before; they reach the task's page inside the terminal snapshot's message
        (``publish_task_end``), or on their own if the task had already ended."""
        assert status.terminal
        with self.services.db.transaction() as conn:
            try:
                task = task_store.transition(conn, task_id, status, actor=actor, reason=reason,
                                             error=error, result=result)
            except InvalidTransition:
                task = None
            if task is not None:
                cancel_jobs_for_task(conn, task_id, self.services.clock.now())  # none left
                granted, refreshed = queue.release_environment(conn, task)
        if task is None:
            if closing_log:
                publish_task_log(self.services.realtime, str(task_id), None,
                                 [asdict(line) for line in closing_log])
            return Finished(None, None)
        if closing_log:
            publish_task_end(self.services.realtime, task_json(task),
                             [asdict(line) for line in closing_log])
        else:
            self.publish(task)
        if refreshed:  # the waiting tasks' new positions: one message per project page
            publish_task_updates(self.services.realtime, [task_json(t) for t in refreshed])
        return Finished(task, granted)

    # -- queue ------------------------------------------------------------------------
    def acquire_environment(self, task_id: UUID) -> queue.LeaseDecision:
        """Take the environment (the task is then running) or say where it waits."""
        return self.acquire_environment_then(task_id, None)[0]

    def acquire_environment_then(self, task_id: UUID, then: Callable[[Any, Task], T] | None
                                 ) -> tuple[queue.LeaseDecision, T | None]:
        """``acquire_environment``, and once acquired ``then(conn, task)`` in the same
        transaction (what the caller reads next about the running task: one transaction
        instead of two)."""
        changed: Task | None = None
        after: T | None = None
        with self.services.db.transaction() as conn:
            decision, task = queue.acquire_environment(conn, task_id)
            if decision.acquired and task.status != TaskStatus.RUNNING:
                changed = task_store.transition(conn, task_id, TaskStatus.RUNNING,
                                                actor="system", reason="started")
            elif not decision.acquired and (task.status != TaskStatus.WAITING
                                            or task.reason != decision.reason):
                changed = task_store.transition(conn, task_id, TaskStatus.WAITING,
                                                actor="system", reason=decision.reason)
            if decision.acquired and then is not None:
                after = then(conn, changed or task)
        if changed is not None:
            self.publish(changed)
        return decision, after

    # -- logs -------------------------------------------------------------------------
    def log(self, task: Task, lines: Sequence[str], level: str = "info", *,
            publish: bool = True) -> list[LogLine]:
        """Append lines; URL keys and the task's secret values never reach the log.
        Returns the stored lines; ``publish=False`` leaves sending them to the caller
        (``finish``'s ``closing_log``)."""
        stored = self.services.logs.append(str(task.id), scrub_lines(lines, task.secrets),
                                           level=level)
        if stored and publish:
            publish_task_log(self.services.realtime, str(task.id), str(task.project_id),
                             [asdict(line) for line in stored])
        return stored

    # -- cancellation -----------------------------------------------------------------
    def request_cancel(self, task_id: UUID, *, actor: str) -> Finished:
        """Ask a task to stop. Not yet running (or only waiting for an agent): it ends
        cancelled now. Running: its steps and its agent job are asked to stop, and the
        orchestration ends it cancelled once they have. ``granted`` is an orchestration
        to wake when the cancelled task handed on its environment.

        Reasons are prose for people, so they name who asked by display name; the audit
        entry keeps the stable id beside it."""
        who = display_name(actor) or actor
        with self.services.db.transaction() as conn:
            task = task_store.get_task(conn, task_id, for_update=True)
            if TaskStatus(task.status).terminal:
                raise InvalidTransition(f"task {task_id} already ended ({task.status})",
                                        field="status")
            task_store.request_cancel(conn, task_id)
            # pending jobs end now; a leased one is stopped by its agent on its next
            # heartbeat (the orchestration is woken by the "cancel" event, not job events)
            cancel_jobs_for_task(conn, task_id, self.services.clock.now(), by=who)
            leased = job_store.has_leased_job(conn, task_id)
            activity_store.record(conn, actor=actor, action="task.cancel_requested",
                                  project_id=task.project_id,
                                  environment_id=task.environment_id, task_id=task.id,
                                  details={"status": task.status})
        if task.status != TaskStatus.RUNNING and not leased:
            done = self.finish(task_id, TaskStatus.CANCELLED, actor=actor,
                               reason=f"cancelled by {who}", error=f"cancelled by {who}")
            return Finished(done.task or task, done.granted)
        return Finished(task, None)

    def canceller(self, task_id: UUID) -> str | None:
        """Who last asked the task to stop, by display name (None: nobody, or not
        recorded)."""
        with self.services.db.transaction() as conn:
            return activity_store.last_actor_name(conn, task_id, "task.cancel_requested")

    def cancelled_by(self, task_id: UUID) -> str:
        """'cancelled by <who asked>' (the latest cancel request in the audit trail)."""
        who = self.canceller(task_id)
        return f"cancelled by {who}" if who else "cancelled on request"

    def cancel_requested(self, task_id: UUID) -> bool:
        """True once the task was asked to stop or has already ended."""
        with self.services.db.transaction() as conn:
            state = task_store.cancel_state(conn, task_id)
        return state is None or state[1] or TaskStatus(state[0]).terminal
