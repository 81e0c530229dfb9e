"""Start a local agent for the demo (``./dev.sh`` / ``cloudops local``).

``start_local_agent`` goes through the public API exactly as an operator would: it makes
sure the pool exists, issues a registration token with the admin's headers, registers
the agent (writing its 0600 config under ``state_dir``), then starts ``cloudops-agent
run`` as a subprocess whose structured log goes to ``state_dir/agent.log``. Registering
again under the same name reuses the agent's identity with a fresh key.

The process is supervised (``SupervisedAgent``): an agent that dies is started again,
with a growing pause, and the log and the caller's logger say so each time, so the demo
never sits with a dead agent while jobs wait for it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import requests

log = logging.getLogger("cloudops.local-agent")


class LocalAgentError(RuntimeError):
    """The control plane refused to set up the local agent."""


def _check(resp: requests.Response, what: str, ok: tuple[int, ...] = (200, 201)) -> None:
    if resp.status_code not in ok:
        raise LocalAgentError(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")


def register_local_agent(base_url: str, admin_headers: Mapping[str, str], *, pool: str,
                         labels: list[str],
                         connections: Mapping[str, str | Mapping[str, object]],
                         state_dir: Path,
                         name: str = "local-agent",
                         allowed_executables: list[str] | None = None,
                         clusters: Mapping[str, dict[str, object]] | None = None,
                         services: Mapping[str, dict[str, object]] | None = None) -> Path:
    """Ensure the pool, register the agent, write its config; return the config path.

    A connection is a URL, or ``{"url", "projects"}`` for one that serves only those
    projects; ``allowed_executables`` None leaves the agent running no scripts."""
    from agent import config as config_file

    base = base_url.rstrip("/")
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    headers = dict(admin_headers)
    resp = requests.post(f"{base}/api/pools", json={"name": pool, "description":
                         "agents on this machine"}, headers=headers, timeout=30)
    _check(resp, f"creating pool {pool}", (201, 409))
    resp = requests.post(f"{base}/api/pools/{pool}/registration-tokens",
                         json={"expiresInMinutes": 10}, headers=headers, timeout=30)
    _check(resp, "issuing a registration token", (201,))
    token = resp.json()["token"]
    path = state_dir / "agent-config.json"
    cmd = [sys.executable, "-m", "agent.main", "register", "--url", base, "--pool", pool,
           "--token", token, "--labels", ",".join(labels), "--name", name,
           "--config", str(path), "--work-dir", str(state_dir / "work")]
    scoped = {k: dict(v) for k, v in connections.items() if not isinstance(v, str)}
    for conn_name, url in connections.items():
        cmd += ["--connection", f"{conn_name}={url if isinstance(url, str) else url['url']}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LocalAgentError(f"agent registration failed: {done.stderr[-500:]}")
    if allowed_executables is not None or clusters or services or scoped:
        cfg = config_file.load(path)
        cfg.connections.update(scoped)
        if allowed_executables is not None:
            cfg.allowed_executables = list(allowed_executables)
        if clusters:
            cfg.clusters = {k: dict(v) for k, v in clusters.items()}
        if services:
            cfg.services = {k: dict(v) for k, v in services.items()}
        config_file.save(cfg, path)
    return path


class SupervisedAgent:
    """A local agent process that is started again whenever it exits on its own.

    It quacks like the ``subprocess.Popen`` it wraps (``pid``, ``poll``, ``terminate``,
    ``kill``, ``wait``), so callers stop it the same way; only a stop they asked for
    ends the supervision."""

    def __init__(self, start: Callable[[], subprocess.Popen[bytes]], log_path: Path, *,
                 max_delay: float = 30.0) -> None:
        self._start, self._log_path, self._max_delay = start, log_path, max_delay
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.restarts = 0
        self.proc = start()
        self._thread = threading.Thread(target=self._watch, name="local-agent-supervisor",
                                        daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _say(self, message: str) -> None:
        log.warning("%s", message)
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self._log_path.open("a") as out:
            out.write(json.dumps({"at": stamp, "level": "warning",
                                  "logger": "cloudops.local-agent", "msg": message}) + "\n")

    def _watch(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            proc = self.proc
            code = proc.wait()
            if self._stopping.is_set():
                return
            ran_for = time.monotonic() - getattr(proc, "_started_at", time.monotonic())
            if ran_for > 60:
                delay = 1.0  # it had been running fine: this is a new problem
            self._say(f"local agent (pid {proc.pid}) exited with code {code}; restarting it"
                      f" in {delay:g} s")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self._max_delay)
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = self._start()
                self.restarts += 1
            self._say(f"local agent restarted (pid {self.proc.pid}, restart {self.restarts})")

    def poll(self) -> int | None:
        return self.proc.poll() if self._stopping.is_set() else None

    def terminate(self) -> None:
        with self._lock:
            self._stopping.set()
            self.proc.terminate()

    def kill(self) -> None:
        with self._lock:
            self._stopping.set()
            self.proc.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)


def start_local_agent(base_url: str, admin_headers: Mapping[str, str], pool: str,
                      labels: list[str],
                      connections: Mapping[str, str | Mapping[str, object]],
                      state_dir: Path | str, *, name: str = "local-agent",
                      allowed_executables: list[str] | None = None,
                      services: Mapping[str, dict[str, object]] | None = None,
                      env: Mapping[str, str] | None = None, supervise: bool = True
                      ) -> subprocess.Popen[bytes] | SupervisedAgent:
    """Register (via the API) and start a local agent; the caller owns the process
    (``terminate()`` it for a graceful shutdown). Supervised unless ``supervise`` is
    False (tests that kill the agent on purpose)."""
    state = Path(state_dir)
    path = register_local_agent(base_url, admin_headers, pool=pool, labels=labels,
                                connections=connections, state_dir=state, name=name,
                                allowed_executables=allowed_executables,
                                services=services)

    def start() -> subprocess.Popen[bytes]:
        with (state / "agent.log").open("ab") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "agent.main", "run", "--config", str(path)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env))
        proc._started_at = time.monotonic()  # type: ignore[attr-defined]  # read back by getattr
        return proc

    return SupervisedAgent(start, state / "agent.log") if supervise else start()
