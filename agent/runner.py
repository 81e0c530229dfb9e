"""The agent's run loop: heartbeats, long polls, jobs, log batches, results, shutdown.

Threads: the main thread long-polls whenever the agent has free capacity; a heartbeat
thread renews leases, relays cancel requests and rotates the key before it expires; each
job runs on its own thread with a ``LogShipper`` sending its output in batches. Errors
back off exponentially with jitter; a long poll that ends without a job is normal.
On SIGTERM/SIGINT the agent stops polling, lets running jobs finish for
``shutdownGraceSeconds``, then stops them and hands them back (the control plane re-queues
a job that is safe to repeat and fails any other).

A job runs only while its lease is known to be held: a watchdog freezes the job's
processes once no heartbeat has renewed the lease for the lease time (the control plane
may have given the job up), thaws them when a heartbeat renews it again (the control
plane was only away), and kills them when the control plane says the job is no longer
ours, or after ``GIVE_UP_UNRENEWED_SECONDS`` without any answer.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from agent import config as config_file
from agent.client import (
    AuthRejected,
    ControlPlane,
    HeartbeatAnswer,
    JobGone,
    Rejected,
    Transient,
)
from agent.config import AgentConfig
from agent.handlers import JobCancelled, JobContext, JobFailed, handler_for
from agent.logs import fields, scrub
from agent.shipping import Backoff, LogShipper, ResultBody, deliver_result, gap_line

log = logging.getLogger("cloudops.agent")
LONG_POLL_SECONDS = 50.0
ROTATE_WHEN_REMAINING = 0.25
DEFAULT_LEASE_SECONDS = 60.0
# a job frozen for lack of a lease is killed after this long without any answer
GIVE_UP_UNRENEWED_SECONDS = 300.0
# results are retried through an outage at least this long (or to the job's deadline)
RESULT_RETRY_SECONDS = 3600.0


class Agent:
    def __init__(self, config: AgentConfig, *, config_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.api = ControlPlane(config.url, config.key)
        self.stopping = threading.Event()
        self.running: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopped_by_shutdown: set[str] = set()
        self._poll_started: float | None = None
        self._renewed: dict[str, float] = {}  # job id → monotonic time of its last renewal
        self._lease_seconds: dict[str, float] = {}
        self.exit_code = 0

    # -- heartbeats --------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        backoff = Backoff()
        # the first heartbeat lists nothing: whatever an earlier run of this agent held
        # is not running here, and the control plane should hear so at once
        first = True
        while not self.stopping.is_set() or self.running:
            delay = self.config.heartbeat_interval_seconds
            try:
                if self._should_rotate():
                    self.rotate_key()
                if first or self._needs_heartbeat():
                    first = False
                    listed = list(self.running)
                    sent_at = time.monotonic()
                    answer = self.api.heartbeat(listed)
                    backoff.reset()
                    self._apply_heartbeat(answer, listed, sent_at)
                    delay = float(answer.get("heartbeatIntervalSeconds") or delay)
            except AuthRejected as exc:
                log.error("the control plane rejected this agent's key: %s", exc)
                self._fatal(3)
                return
            except (Transient, Rejected) as exc:
                delay = backoff.next_delay()
                log.warning("heartbeat failed, retrying in %.1f s: %s", delay, exc)
            if self.stopping.is_set():
                time.sleep(min(delay, 1.0))
            else:
                self.stopping.wait(delay)

    def _needs_heartbeat(self) -> bool:
        """Heartbeats renew leases; an idle agent whose long poll is held is already known
        to be alive (every request counts), so it stays quiet: 500 idle agents cost only
        their polls."""
        if self.running:
            return True
        started = self._poll_started
        return started is None or time.monotonic() - started > LONG_POLL_SECONDS + 10

    def _should_rotate(self) -> bool:
        """Rotate when less than a quarter of the key's lifetime is left."""
        try:
            expires = datetime.fromisoformat(self.config.key_expires_at.replace("Z", "+00:00"))
            issued = datetime.fromisoformat(self.config.key_issued_at.replace("Z", "+00:00"))
        except ValueError:
            return False
        now = datetime.now(UTC)
        return expires - now < (expires - issued) * ROTATE_WHEN_REMAINING

    def _apply_heartbeat(self, answer: HeartbeatAnswer, listed: list[str],
                         sent_at: float) -> None:
        stop = {*answer.get("cancel", []), *answer.get("abandon", [])}
        for job_id in stop:
            ctx = self.running.get(job_id)
            if ctx is not None and not ctx.cancel.is_set():
                log.info("stopping job on the control plane's request",
                         extra=fields(job=job_id))
                ctx.cancel.set()
        gone = set(answer.get("abandon", []))
        for job_id in listed:
            ctx = self.running.get(job_id)
            if ctx is None or job_id in gone:
                continue
            # renewed as of when the heartbeat was sent (it may have waited in a queue)
            self._renewed[job_id] = max(self._renewed.get(job_id, 0.0), sent_at)
            if ctx.cancel.hold.is_set():
                log.info("lease renewed again: resuming the job", extra=fields(job=job_id))
                ctx.log("the control plane answered again and renewed the lease; resuming")
                ctx.cancel.hold.clear()
        if answer.get("rotateKey"):
            self.rotate_key()

    # -- leases ------------------------------------------------------------------------
    def _lease_watch(self) -> None:
        """Freeze a job whose lease has not been renewed for the lease time; kill it
        when that has lasted ``GIVE_UP_UNRENEWED_SECONDS``."""
        while not (self.stopping.is_set() and not self.running):
            now = time.monotonic()
            for job_id, ctx in list(self.running.items()):
                lease = self._lease_seconds.get(job_id, DEFAULT_LEASE_SECONDS)
                silent = now - self._renewed.get(job_id, now)
                if ctx.cancel.is_set():
                    continue
                if silent > max(GIVE_UP_UNRENEWED_SECONDS, lease * 5):
                    log.error("no lease renewal for %.0f s: stopping the job", silent,
                              extra=fields(job=job_id))
                    ctx.log(f"stopped: the lease could not be renewed for {silent:.0f} s")
                    ctx.cancel.set()
                elif silent > lease and not ctx.cancel.hold.is_set():
                    log.warning("no lease renewal for %.1f s (lease %g s): freezing the job",
                                silent, lease, extra=fields(job=job_id))
                    ctx.log(f"the lease could not be renewed for {silent:.1f} s: the job is"
                            " frozen until the control plane answers")
                    ctx.cancel.hold.set()
            time.sleep(0.1)

    def rotate_key(self) -> None:
        """Get a new key, persist it, then use it (the old one stays valid briefly).

        The request is named, and a lost answer is asked for again with the same name:
        the control plane returns the same new key instead of refusing the old one."""
        request_id = secrets.token_urlsafe(24)
        for attempt in Retrying(stop=stop_after_attempt(8), reraise=True,
                                wait=wait_random_exponential(multiplier=0.5, max=10.0),
                                retry=retry_if_exception_type(Transient),
                                before_sleep=_log_lost_rotation):
            with attempt:
                fresh = self.api.rotate_key(request_id)
        self.config.key = fresh["key"]
        self.config.key_expires_at = str(fresh.get("keyExpiresAt", ""))
        self.config.key_issued_at = datetime.now(UTC).isoformat()
        config_file.save(self.config, self.config_path)
        self.api.set_key(self.config.key)
        log.info("rotated the agent key", extra=fields(expires=self.config.key_expires_at))

    def _fatal(self, code: int) -> None:
        self.exit_code = code
        self.stopping.set()
        for ctx in list(self.running.values()):
            ctx.cancel.set()

    # -- jobs --------------------------------------------------------------------------
    def _run_job(self, job: dict[str, Any]) -> None:
        job_id, kind = str(job["id"]), str(job["kind"])
        ctx = self.running[job_id]
        shipper = LogShipper(self.api, job_id, on_gone=ctx.cancel.set)
        ctx.log, ctx.progress = shipper.line, shipper.progress
        log.info("job started", extra=fields(job=job_id, kind=kind,
                                              attempt=job.get("attempt")))
        status, result, error = "succeeded", None, None
        try:
            result = handler_for(kind)(dict(job.get("payload") or {}), ctx)
        except JobCancelled as exc:
            status, error = "cancelled", str(exc) or "cancelled"
        except JobFailed as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a bug in a handler must still end the job
            status = "failed"
            error = f"agent error: {type(exc).__name__}: {exc}"
            shipper.line(scrub("".join(traceback.format_exception(exc))[-4000:]))
        handed_back = status == "cancelled" and job_id in self._stopped_by_shutdown
        if error and not handed_back:
            shipper.line(f"{status}: {scrub(error)}")
        shipper.close()
        if handed_back:
            self._hand_back(job_id)
        else:
            body: ResultBody = {"status": status, "result": result,
                                    "error": scrub(error) if error else None}
            missing = shipper.unreported_gap()
            if missing:
                # the gap line could not be sent either: the result carries the count
                body["error"] = ((body["error"] + "\n") if body["error"] else "") \
                    + gap_line(missing, "the log could not be reached")
            outcome = deliver_result(self.api, job_id, body,
                                     until=self._result_deadline(job), stopping=self.stopping)
            log.info("result %s", outcome, extra=fields(job=job_id))
        log.info("job finished", extra=fields(job=job_id, kind=kind, status=status))
        with self._lock:
            self.running.pop(job_id, None)
            self._renewed.pop(job_id, None)
            self._lease_seconds.pop(job_id, None)

    @staticmethod
    def _result_deadline(job: dict[str, Any]) -> float:
        """Monotonic time until which the result is worth retrying: the job's deadline
        (as the control plane set it), and at least ``RESULT_RETRY_SECONDS``."""
        until = time.monotonic() + RESULT_RETRY_SECONDS
        raw = (job.get("payload") or {}).get("deadlineAt")
        if isinstance(raw, str):
            try:
                left = (datetime.fromisoformat(raw.replace("Z", "+00:00"))
                        - datetime.now(UTC)).total_seconds()
                until = max(until, time.monotonic() + left)
            except ValueError:
                pass
        return until

    def _hand_back(self, job_id: str) -> None:
        try:
            answer = self.api.release(job_id)
            log.info("handed the job back", extra=fields(job=job_id,
                                                          status=answer.get("status")))
        except (JobGone, AuthRejected, Transient, Rejected) as exc:
            # the lease will expire instead; the reaper then retries or fails the job
            log.warning("could not hand the job back: %s", exc, extra=fields(job=job_id))

    def _start_job(self, job: dict[str, Any]) -> None:
        job_id = str(job["id"])
        ctx = JobContext(job_id=job_id, kind=str(job["kind"]), config=self.config,
                         log=lambda _line: None, progress=lambda _n: None)
        with self._lock:
            self.running[job_id] = ctx
            self._renewed[job_id] = time.monotonic()  # claimed just now: a fresh lease
            self._lease_seconds[job_id] = float(job.get("leaseSeconds")
                                                or DEFAULT_LEASE_SECONDS)
        thread = threading.Thread(target=self._run_job, args=(job,), name=f"job-{job_id}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- main loop ---------------------------------------------------------------------
    def run(self) -> int:
        log.info("agent starting", extra=fields(agent=self.config.name, pool=self.config.pool,
                                                labels=",".join(self.config.labels)))
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        threading.Thread(target=self._lease_watch, name="lease-watch", daemon=True).start()
        # the long poll blocks in a socket read; it runs on its own thread so a signal
        # stops the agent at once instead of after the poll's 50 s
        poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        poller.start()
        while not self.stopping.wait(0.5):
            pass
        self._shutdown(beat)
        return self.exit_code

    def _poll_loop(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            if len(self.running) >= max(1, self.config.capacity):
                self.stopping.wait(0.05)
                continue
            try:
                self._poll_started = time.monotonic()
                job = self.api.next_job(LONG_POLL_SECONDS)
                backoff.reset()
            except AuthRejected as exc:
                log.error("the control plane rejected this agent's key: %s", exc)
                self._fatal(3)
                return
            except (Transient, Rejected) as exc:
                self._poll_started = None
                delay = backoff.next_delay()
                log.warning("polling for jobs failed, retrying in %.1f s: %s", delay, exc)
                self.stopping.wait(delay)
                continue
            if job is not None:
                # claimed (possibly just as a shutdown began): it is ours, so run it; the
                # shutdown grace lets it finish, or it is handed back
                self._start_job(job)

    def _shutdown(self, beat: threading.Thread) -> None:
        deadline = time.monotonic() + self.config.shutdown_grace_seconds
        if self.running:
            log.info("shutting down: waiting for %d running job(s)", len(self.running))
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for job_id, ctx in list(self.running.items()):
            self._stopped_by_shutdown.add(job_id)
            ctx.cancel.set()
        for thread in self._threads:
            thread.join(timeout=15)
        beat.join(timeout=5)
        self.api.close()
        log.info("agent stopped")

    def stop(self) -> None:
        self.stopping.set()


def _log_lost_rotation(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("key rotation answer lost, asking again: %s", exc)
