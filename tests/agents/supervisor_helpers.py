"""Running the process supervisor as a real subprocess in tests, and waiting for facts
(never blind sleeps): a deadline-bounded poll, process liveness, reading an app's front."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from agent.supervisor_client import SupervisorClient
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(fact: Callable[[], T], what: str, timeout: float = 15.0,
             every: float = 0.05) -> T:
    """Poll ``fact`` until it returns something truthy; fail naming ``what`` otherwise."""
    return wait_until(fact, what, timeout, interval=every)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def front(url: str, path: str = "/version") -> dict[str, Any]:
    """What the app behind a front answers now (a new connection each time)."""
    with requests.Session() as s:
        s.trust_env = False
        resp = s.get(url + path, timeout=10)
    resp.raise_for_status()
    return dict(resp.json())


def demo_config(tmp: Path, *, start_seconds: float = 5.0) -> Path:
    """A supervisor config with the demo web app and a program that crashes at start."""
    config = {"programs": {
        "demo-web": {"command": [sys.executable, "-m", "cli.demo_app", "--port", "{port}",
                                 "--app", "{app}", "--version", "{version}"],
                     "healthPath": "/health", "startSeconds": start_seconds,
                     "stopSeconds": 3, "cwd": str(ROOT)},
        "crash": {"command": ["{python}", "-c",
                              "import sys; print('boom {version}'); sys.exit(3)"],
                  "startSeconds": start_seconds}}}
    path = tmp / "supervisor-config.json"
    path.write_text(json.dumps(config))
    return path


@dataclass
class RunningSupervisor:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    stderr_path: Path

    @property
    def output(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def client(self) -> SupervisorClient:
        return SupervisorClient.from_state_dir(self.state_dir, timeout=60)

    def info(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "supervisor.json").read_text()))

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"supervisor did not stop on {sig.name}:\n{self.output}"
                                 ) from None


def start_supervisor(state_dir: Path, config: Path) -> RunningSupervisor:
    """Start ``python -m agent.supervisor`` and wait until it announces itself ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = state_dir.parent / f"{state_dir.name}-supervisor-{time.monotonic_ns()}.log"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.supervisor", "--state-dir", str(state_dir),
             "--config", str(config)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    sup = RunningSupervisor(proc, state_dir, stderr_path)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"supervisor exited with {proc.returncode}:\n{sup.output}")
        try:
            return bool(sup.info().get("pid") == proc.pid)
        except (OSError, ValueError):
            return False

    wait_for(ready, "the supervisor to write supervisor.json", timeout=30)
    return sup
