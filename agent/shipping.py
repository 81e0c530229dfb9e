"""Getting a job's output and result to the control plane without losing any of it
silently: log batches cut to fit the request size limit, a gap line for whatever could
not be stored, and results retried through an outage until the job's deadline."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypedDict

from tenacity import RetryCallState, Retrying, wait_random_exponential

from agent.client import AuthRejected, ControlPlane, JobGone, Rejected, Transient
from agent.logs import fields, scrub

log = logging.getLogger("cloudops.agent")

MAX_LINE_CHARS = 16000
MAX_BATCH_LINES = 1000  # the control plane accepts up to 2,000
# the control plane refuses bodies over 256 KiB; leave room for the JSON around the lines
MAX_BATCH_BYTES = 192 * 1024
CLOSE_RETRY_SECONDS = 30.0


class Backoff:
    """Jittered exponential backoff for loops that run for good (heartbeats, polls, shipping):
    up to 0.5 s, 1 s, 2 s ... capped, reset on success. The delays are tenacity's full-jitter
    exponential wait; the failure count lives here because these loops never end."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0
        self._wait = wait_random_exponential(multiplier=base, max=cap)
        self._state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})

    def next_delay(self) -> float:
        self.failures += 1
        self._state.attempt_number = self.failures
        return float(self._wait(self._state))

    def reset(self) -> None:
        self.failures = 0


def _encoded_size(line: str) -> int:
    return len(json.dumps(line)) + 2  # the quotes' comma and space in the array


def gap_line(count: int, why: str) -> str:
    """What the log says where lines are missing."""
    noun = "line" if count == 1 else "lines"
    return f"… {count:,} {noun} could not be stored ({why})"


class LogShipper:
    """Batches a job's log lines (every 0.5 s, or sooner when a batch is full) and sends
    them in order. A batch never exceeds the control plane's body limit; lines it still
    refuses, or that could not be sent before the job ended, are counted (``lost``) and
    a gap line says so in the log."""

    def __init__(self, api: ControlPlane, job_id: str, on_gone: Callable[[], None]) -> None:
        self._api, self._job, self._on_gone = api, job_id, on_gone
        self._lines: list[str] = []
        self._progress: int | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._close_deadline = 0.0
        self.lost = 0  # lines the control plane never stored
        self._unreported: list[tuple[int, str]] = []  # gaps not yet written into the log
        self._thread = threading.Thread(target=self._run, name=f"logs-{job_id}", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        with self._cond:
            self._lines.append(scrub(text)[:MAX_LINE_CHARS])
            if len(self._lines) >= 200:
                self._cond.notify()

    def progress(self, value: int) -> None:
        with self._cond:
            self._progress = max(0, min(100, int(value)))

    def _take(self) -> tuple[list[str], int | None]:
        """The next batch: as many lines as fit both limits (always at least one)."""
        size, count = 0, 0
        for text in self._lines[:MAX_BATCH_LINES]:
            size += _encoded_size(text)
            if count and size > MAX_BATCH_BYTES:
                break
            count += 1
        lines, progress = self._lines[:count], self._progress
        del self._lines[:count]
        self._progress = None
        return lines, progress

    def _lose(self, count: int, why: str) -> None:
        self.lost += count
        self._unreported.append((count, why))
        log.warning("%d log lines could not be stored: %s", count, why,
                    extra=fields(job=self._job))

    def _send(self, lines: list[str], progress: int | None, backoff: Backoff) -> bool:
        """One batch until it is stored or given up on; False: the job is gone."""
        while True:
            try:
                if self._api.logs(self._job, lines, progress):
                    self._on_gone()  # cancel requested
                backoff.reset()
                return True
            except JobGone:
                self._on_gone()
                return False
            except Rejected as exc:  # retrying the same batch will not help
                self._lose(len(lines), f"refused: {exc}")
                return True
            except (Transient, AuthRejected) as exc:
                if self._closed and time.monotonic() > self._close_deadline:
                    self._lose(len(lines), f"not delivered before the job ended: {exc}")
                    return True
                time.sleep(backoff.next_delay())

    def _report_gaps(self, backoff: Backoff) -> None:
        while self._unreported:
            count, why = self._unreported[0]
            try:
                self._api.logs(self._job, [gap_line(count, why)])
                self._unreported.pop(0)
            except (JobGone, Rejected, AuthRejected):
                return
            except Transient:
                if self._closed and time.monotonic() > self._close_deadline:
                    return
                time.sleep(backoff.next_delay())

    def _run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            with self._cond:
                if not self._closed and not self._lines:
                    self._cond.wait(timeout=0.5)
                lines, progress = self._take()
                closed = self._closed and not self._lines
            if (lines or progress is not None) and not self._send(lines, progress, backoff):
                return
            if self._unreported:
                self._report_gaps(backoff)
            if closed:
                return

    def unreported_gap(self) -> int:
        """Lines lost whose gap line could not be written either (the result says it)."""
        return sum(count for count, _ in self._unreported)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._close_deadline = time.monotonic() + CLOSE_RETRY_SECONDS
            self._cond.notify()
        self._thread.join(timeout=CLOSE_RETRY_SECONDS + 15)


class ResultBody(TypedDict):
    """What ``POST /agent/jobs/{id}/result`` takes (``ControlPlane.result``'s arguments)."""

    status: str
    result: dict[str, Any] | None
    error: str | None


def deliver_result(api: ControlPlane, job_id: str, body: ResultBody, *,
                   until: float, stopping: threading.Event | None = None) -> str:
    """Send a job's result until it is accepted, refused for good, or ``until``
    (monotonic) passes; backoff grows to 30 s. Returns what happened, for the log."""
    backoff = Backoff(0.5, 30.0)
    fallback_sent = False
    while True:
        try:
            api.result(job_id, **body)
            return "accepted"
        except JobGone as exc:
            return f"not accepted: {exc}"
        except AuthRejected:
            return "not accepted: key rejected"
        except Rejected as exc:
            if fallback_sent:
                return f"refused: {exc}"
            # say at least how it ended, in the plainest form the control plane takes
            error = str(body.get("error") or "")
            body = {"status": body["status"], "result": None,
                    "error": (f"{error[-4000:]}\n" if error else "")
                    + f"(the full result was refused: {exc})"}
            fallback_sent = True
        except Transient as exc:
            if time.monotonic() > until:
                return f"gave up at the job's deadline: {exc}"
            delay = backoff.next_delay()
            log.warning("sending the result failed, retrying in %.1f s: %s", delay, exc,
                        extra=fields(job=job_id))
            if stopping is not None and stopping.is_set():
                delay = min(delay, 1.0)
            time.sleep(delay)
