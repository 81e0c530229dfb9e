"""Restart a ``service`` workload on the agent's own machine: a systemd unit on a real
server, or an app of the process supervisor (``agent/supervisor.py``) where there is no
systemd (the local demo).

What a service name means stays on the agent (``services`` in its config), so the control
plane can only name a service and an environment, never a unit or a command::

    "services": {
      "web": {"systemd": "shop-web@{environment}.service", "systemctl"?: "/usr/bin/systemctl"},
      "demo": {"supervisor": "~/.local/state/cloudops-demo", "app": "demo-web@{environment}"}}

``{environment}`` is the job's environment slug, so a sandbox environment restarts its own
instance. systemd: ``systemctl restart UNIT``, then ``systemctl is-active UNIT`` until
``active`` (``failed`` fails at once with the tail of ``systemctl status``). The agent's
user needs the right to restart the unit (root, or a polkit/sudo rule for that unit).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any

from agent import process
from agent.handlers import JobCancelled, JobContext, JobFailed, check_serves, require

ENVIRONMENT_RE = re.compile(r"^[a-z0-9-]+$")
UNIT_RE = re.compile(r"^[A-Za-z0-9@_.:\\-]+$")
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
DEFAULT_TIMEOUT = 120
POLL_SECONDS = 1.0
STATUS_LINES = 15


def restart(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    name = require(payload, "service")
    environment = require(payload, "environment")
    if not ENVIRONMENT_RE.match(environment):
        raise JobFailed(f"environment must match {ENVIRONMENT_RE.pattern}")
    timeout = payload.get("timeoutSeconds", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise JobFailed("timeoutSeconds must be a positive number")
    spec = ctx.config.services.get(name)
    if not isinstance(spec, dict):
        known = ", ".join(sorted(ctx.config.services)) or "none"
        raise JobFailed(f"this agent has no service named {name!r} (it knows: {known})")
    check_serves(payload, "service", name, spec.get("projects"))
    if spec.get("systemd"):
        unit = str(spec["systemd"]).replace("{environment}", environment)
        return _restart_systemd(name, unit, spec.get("systemctl"), float(timeout), ctx)
    if spec.get("supervisor") and spec.get("app"):
        app = str(spec["app"]).replace("{environment}", environment)
        return _restart_supervised(name, str(spec["supervisor"]), app, float(timeout), ctx)
    raise JobFailed(f"service {name!r} needs 'systemd' (a unit) or 'supervisor' and 'app' "
                    "in this agent's config")


# --- systemd ----------------------------------------------------------------------------

def _systemctl(configured: Any, service: str) -> str:
    path = str(configured) if configured else shutil.which("systemctl")
    if not path or not os.access(path, os.X_OK):
        raise JobFailed(f"systemctl not found on this agent: service {service} needs "
                        "systemd (or configure a supervisor)")
    return path


def _run(argv: list[str], ctx: JobContext, timeout: float) -> tuple[int | None, list[str]]:
    """Run a systemctl command; (exit code, output lines)."""
    lines: list[str] = []
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env["SYSTEMD_PAGER"] = ""  # never wait on a pager
    outcome = process.run(argv, env=env, on_line=lines.append, timeout=timeout,
                          cancel=ctx.cancel)
    if outcome.cancelled:
        raise JobCancelled("cancelled")
    if outcome.timed_out:
        raise JobFailed(f"{' '.join(argv[1:3])} did not finish within {timeout:g} s")
    return outcome.exit_code, lines


def _restart_systemd(service: str, unit: str, configured: Any, timeout: float,
                     ctx: JobContext) -> dict[str, Any]:
    if not UNIT_RE.match(unit) or unit.startswith("-"):
        raise JobFailed(f"unit name {unit!r} is not a systemd unit name")
    systemctl = _systemctl(configured, service)
    deadline = time.monotonic() + timeout
    ctx.log(f"restarting {unit} (service {service})")
    ctx.progress(10)
    code, lines = _run([systemctl, "restart", unit], ctx, timeout)
    if code != 0:
        tail = "\n".join(lines[-STATUS_LINES:])
        raise JobFailed(f"systemctl restart {unit} failed (exit {code})"
                        + (f":\n{tail}" if tail else ""))
    ctx.progress(50)
    last = ""
    while True:
        ctx.check_cancel()
        _code, lines = _run([systemctl, "is-active", unit], ctx,
                            max(1.0, deadline - time.monotonic()))
        state = next((ln.strip() for ln in reversed(lines) if ln.strip()), "unknown")
        if state != last:
            ctx.log(f"{unit}: {state}")
            last = state
        if state == "active":
            break
        if state == "failed":
            _code, status = _run([systemctl, "status", unit, "--no-pager"], ctx, 30)
            tail = "\n".join(status[-STATUS_LINES:])
            raise JobFailed(f"{unit} failed after the restart" + (f":\n{tail}" if tail else ""))
        if time.monotonic() > deadline:
            raise JobFailed(f"{unit} not active after {timeout:g} s (it is {state})")
        ctx.progress(70)
        time.sleep(POLL_SECONDS)
    result: dict[str, Any] = {"service": service, "unit": unit, "state": "active"}
    code, lines = _run([systemctl, "show", unit, "--property=MainPID", "--value"], ctx, 30)
    pid = lines[-1].strip() if code == 0 and lines else ""
    if pid.isdigit() and int(pid) > 0:
        result["pid"] = int(pid)
    ctx.progress(100)
    ctx.log(f"{unit} is active" + (f" (pid {result['pid']})" if "pid" in result else ""))
    return result


# --- the process supervisor -------------------------------------------------------------

def _restart_supervised(service: str, state_dir: str, app: str, timeout: float,
                        ctx: JobContext) -> dict[str, Any]:
    from agent.supervisor_client import SupervisorClient, SupervisorError

    ctx.log(f"restarting {app} (service {service}) through the process supervisor")
    ctx.progress(10)
    try:
        with SupervisorClient.from_state_dir(state_dir, timeout=timeout) as client:
            ctx.check_cancel()
            info = client.restart(app)
    except SupervisorError as exc:
        raise JobFailed(f"restart of {app} failed: {exc.reason}") from None
    ctx.progress(100)
    ctx.log(f"{app} {info.get('version')} is running (pid {info.get('pid')}) at "
            f"{info.get('url')}")
    return {"service": service, "app": app, "pid": info.get("pid"),
            "startedAt": info.get("startedAt"), "version": info.get("version"),
            "url": info.get("url"), "state": "active"}
