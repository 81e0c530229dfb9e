"""Running a child process for a job: argv only (never a shell), its own process group,
output streamed line by line, and the whole tree killed on timeout, cancel, at the end of
every run, or when the agent itself dies (Linux parent-death signal), so no orphan keeps
working on a job or holds its output pipe."""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Outcome:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    # output still arriving from a process that escaped the group after the end
    abandoned_output: bool = False


def kill_group(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            # the leader is gone; make sure no member of its group outlives it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


def end_group(pgid: int, grace: float = 1.0) -> None:
    """After the leader exited: what is left of its group (children it started and did
    not wait for) gets SIGTERM, and SIGKILL after ``grace`` if still there."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return  # nobody left
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class _Pump:
    """Reads a pipe line by line without ever blocking past ``stop()``: a process that
    escaped the group may keep the pipe open forever, and the job must still end."""

    def __init__(self, fd: int, on_line: Callable[[str], None]) -> None:
        self._fd, self._on_line = fd, on_line
        self._stop = threading.Event()
        self.eof = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-output", daemon=True)
        self._thread.start()

    def _emit(self, raw: bytes) -> None:
        self._on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))

    def _run(self) -> None:
        pending = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self._fd, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(timeout=0.1):
                    continue
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line)
                if len(pending) > 65536:  # an endless line: pass it on in pieces
                    self._emit(pending)
                    pending = b""
        if pending:
            self._emit(pending)
        self.eof.set()

    def finish(self, drain: float) -> bool:
        """Read what is left for up to ``drain`` seconds; True if the pipe reached EOF."""
        self.eof.wait(drain)
        self._stop.set()
        self._thread.join(timeout=1.0)
        return self.eof.is_set()


def run(argv: Sequence[str], *, env: Mapping[str, str], on_line: Callable[[str], None],
        timeout: float | None = None, cancel: threading.Event | None = None,
        cwd: str | None = None, stdout_file: int | None = None) -> Outcome:
    """Run ``argv`` to completion, calling ``on_line`` for each output line (stdout and
    stderr merged, or only stderr when ``stdout_file`` takes stdout).

    The whole process group ends with the job, also after a normal exit: children the
    script left behind are stopped, and output is read only briefly after that, never
    until an orphan lets go of the pipe. ``cancel`` may carry a ``hold`` event (see
    ``agent.handlers.StopSignal``): while it is set the group is frozen (SIGSTOP), so a
    job whose lease could not be renewed makes no further changes until the control
    plane says whether it is still ours.
    """
    proc = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=stdout_file if stdout_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE if stdout_file is not None else subprocess.STDOUT,
        start_new_session=True, preexec_fn=_child_setup)
    stream = proc.stderr if stdout_file is not None else proc.stdout
    assert stream is not None
    pump = _Pump(stream.fileno(), on_line)
    hold: threading.Event | None = getattr(cancel, "hold", None)
    frozen = False
    deadline = None if timeout is None else time.monotonic() + timeout
    outcome = Outcome(exit_code=None)
    while True:
        try:
            proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            outcome.cancelled = True
            if frozen:  # a frozen job that is no longer ours must not run another moment
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            kill_group(proc)
            break
        if hold is not None and hold.is_set() != frozen:
            frozen = hold.is_set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGSTOP if frozen else signal.SIGCONT)
            if frozen and deadline is not None:
                deadline += 0.1  # frozen time is not the script's own time
        elif frozen and deadline is not None:
            deadline += 0.1
        if deadline is not None and time.monotonic() > deadline:
            outcome.timed_out = True
            kill_group(proc)
            break
    end_group(proc.pid)
    outcome.abandoned_output = not pump.finish(drain=2.0)
    stream.close()
    outcome.exit_code = proc.returncode
    return outcome
