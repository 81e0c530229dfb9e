"""Running a child process for a job: argv only (never a shell), its own process group,
output streamed line by line, and the whole tree killed on timeout, cancel, or when the
agent itself dies (Linux parent-death signal), so no orphan keeps working on a job."""

from __future__ import annotations

import contextlib
import ctypes
import os
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


def run(argv: Sequence[str], *, env: Mapping[str, str], on_line: Callable[[str], None],
        timeout: float | None = None, cancel: threading.Event | None = None,
        cwd: str | None = None, stdout_file: int | None = None) -> Outcome:
    """Run ``argv`` to completion, calling ``on_line`` for each output line (stdout and
    stderr merged, or only stderr when ``stdout_file`` takes stdout)."""
    proc = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=stdout_file if stdout_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE if stdout_file is not None else subprocess.STDOUT,
        start_new_session=True, preexec_fn=_child_setup)
    stream = proc.stderr if stdout_file is not None else proc.stdout
    assert stream is not None

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))

    reader = threading.Thread(target=pump, name="job-output", daemon=True)
    reader.start()
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
            kill_group(proc)
            break
        if deadline is not None and time.monotonic() > deadline:
            outcome.timed_out = True
            kill_group(proc)
            break
    # children that inherited the pipe may hold it open: never wait on them forever
    with contextlib.suppress(ProcessLookupError):
        if outcome.timed_out or outcome.cancelled:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(timeout=5)
    stream.close()
    outcome.exit_code = proc.returncode
    return outcome
