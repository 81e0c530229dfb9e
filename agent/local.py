"""Start a local agent for the demo (``./dev.sh`` / ``cloudops local``).

``start_local_agent`` goes through the public API exactly as an operator would: it makes
sure the pool exists, issues a registration token with the admin's headers, registers
the agent (writing its 0600 config under ``state_dir``), then starts ``cloudops-agent
run`` as a subprocess whose structured log goes to ``state_dir/agent.log``. Registering
again under the same name reuses the agent's identity with a fresh key.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import requests


class LocalAgentError(RuntimeError):
    """The control plane refused to set up the local agent."""


def _check(resp: requests.Response, what: str, ok: tuple[int, ...] = (200, 201)) -> None:
    if resp.status_code not in ok:
        raise LocalAgentError(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")


def register_local_agent(base_url: str, admin_headers: Mapping[str, str], *, pool: str,
                         labels: list[str], connections: Mapping[str, str], state_dir: Path,
                         name: str = "local-agent",
                         allowed_executables: list[str] | None = None,
                         clusters: Mapping[str, dict[str, object]] | None = None,
                         services: Mapping[str, dict[str, object]] | None = None) -> Path:
    """Ensure the pool, register the agent, write its config; return the config path."""
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
    for conn_name, url in connections.items():
        cmd += ["--connection", f"{conn_name}={url}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LocalAgentError(f"agent registration failed: {done.stderr[-500:]}")
    if allowed_executables is not None or clusters or services:
        cfg = config_file.load(path)
        if allowed_executables is not None:
            cfg.allowed_executables = list(allowed_executables)
        if clusters:
            cfg.clusters = {k: dict(v) for k, v in clusters.items()}
        if services:
            cfg.services = {k: dict(v) for k, v in services.items()}
        config_file.save(cfg, path)
    return path


def start_local_agent(base_url: str, admin_headers: Mapping[str, str], pool: str,
                      labels: list[str], connections: Mapping[str, str],
                      state_dir: Path | str, *, name: str = "local-agent",
                      allowed_executables: list[str] | None = None,
                      services: Mapping[str, dict[str, object]] | None = None,
                      env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Register (via the API) and start a local agent; the caller owns the process
    (``terminate()`` it for a graceful shutdown)."""
    state = Path(state_dir)
    path = register_local_agent(base_url, admin_headers, pool=pool, labels=labels,
                                connections=connections, state_dir=state, name=name,
                                allowed_executables=allowed_executables,
                                services=services)
    log_file = (state / "agent.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.main", "run", "--config", str(path)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env))
    finally:
        log_file.close()
