"""The agent's run loop: heartbeats, long polls, jobs, log batches, results, shutdown.

Threads: the main thread long-polls whenever the agent has free capacity; a heartbeat
thread renews leases, relays cancel requests and rotates the key before it expires; each
job runs on its own thread with a ``LogShipper`` sending its output in batches. Errors
back off exponentially with jitter; a long poll that ends without a job is normal.
On SIGTERM/SIGINT the agent stops polling, lets running jobs finish for
``shutdownGraceSeconds``, then stops them and hands them back (the control plane re-queues
a job that is safe to repeat and fails any other).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent import config as config_file
from agent.client import AuthRejected, ControlPlane, JobGone, Rejected, Transient
from agent.config import AgentConfig
from agent.handlers import JobCancelled, JobContext, JobFailed, handler_for
from agent.logs import fields, scrub

log = logging.getLogger("cloudops.agent")
LONG_POLL_SECONDS = 50.0
ROTATE_WHEN_REMAINING = 0.25


class Backoff:
    """Jittered exponential backoff: 0.5 s, 1 s, 2 s ... capped, reset on success."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next_delay(self) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap, self.base * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0


class LogShipper:
    """Batches a job's log lines (every 0.5 s or 200 lines) and sends them in order."""

    def __init__(self, api: ControlPlane, job_id: str, on_gone: Callable[[], None]) -> None:
        self._api, self._job, self._on_gone = api, job_id, on_gone
        self._lines: list[str] = []
        self._progress: int | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"logs-{job_id}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        with self._cond:
            self._lines.append(scrub(text)[:16000])
            if len(self._lines) >= 200:
                self._cond.notify()

    def progress(self, value: int) -> None:
        with self._cond:
            self._progress = max(0, min(100, int(value)))

    def _take(self) -> tuple[list[str], int | None]:
        lines, progress = self._lines[:1000], self._progress
        del self._lines[:1000]
        self._progress = None
        return lines, progress

    def _run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            with self._cond:
                if not self._closed:
                    self._cond.wait(timeout=0.5)
                lines, progress = self._take()
                closed = self._closed and not self._lines
            while lines or progress is not None:
                try:
                    if self._api.logs(self._job, lines, progress):
                        self._on_gone()  # cancel requested
                    backoff.reset()
                    break
                except JobGone:
                    self._on_gone()
                    return
                except (Transient, Rejected, AuthRejected) as exc:
                    if self._closed:
                        log.warning("dropping %d log lines: %s", len(lines), exc)
                        break
                    time.sleep(backoff.next_delay())
            if closed:
                return

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=15)


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
        self.exit_code = 0

    # -- heartbeats --------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set() or self.running:
            delay = self.config.heartbeat_interval_seconds
            try:
                if self._should_rotate():
                    self.rotate_key()
                if self._needs_heartbeat():
                    answer = self.api.heartbeat(list(self.running))
                    backoff.reset()
                    self._apply_heartbeat(answer)
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

    def _apply_heartbeat(self, answer: dict[str, Any]) -> None:
        for job_id in [*answer.get("cancel", []), *answer.get("abandon", [])]:
            ctx = self.running.get(job_id)
            if ctx is not None and not ctx.cancel.is_set():
                log.info("stopping job on the control plane's request",
                         extra=fields(job=job_id))
                ctx.cancel.set()
        if answer.get("rotateKey"):
            self.rotate_key()

    def rotate_key(self) -> None:
        """Get a new key, persist it, then use it (the old one stays valid briefly)."""
        fresh = self.api.rotate_key()
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
            self._report(job_id, status, result, scrub(error) if error else None)
        log.info("job finished", extra=fields(job=job_id, kind=kind, status=status))
        with self._lock:
            self.running.pop(job_id, None)

    def _report(self, job_id: str, status: str, result: Any, error: str | None) -> None:
        backoff = Backoff(0.5, 10.0)
        for _ in range(60):
            try:
                self.api.result(job_id, status, result, error)
                return
            except JobGone as exc:
                log.warning("result not accepted: %s", exc, extra=fields(job=job_id))
                return
            except AuthRejected:
                log.error("result not accepted: key rejected", extra=fields(job=job_id))
                return
            except (Transient, Rejected) as exc:
                delay = backoff.next_delay()
                log.warning("sending the result failed, retrying in %.1f s: %s", delay, exc,
                            extra=fields(job=job_id))
                time.sleep(delay)

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
