"""Job handlers by kind, and what every handler gets: ``JobContext``.

A handler takes the job's payload and a context, returns the job's result dict, and
raises ``JobFailed`` with a reason for a clean failure. Payloads (built by the control
plane's orchestrations):

- ``backup``  {"connection", "uploadUrl", "artifact"} → {"sizeBytes", "sha256", "artifact"}
- ``restore`` {"connection", "downloadUrl", "sha256", "safetyUploadUrl", "safetyArtifact",
  "database"?, "createDatabase"?} → {"safetyBackup": {"sizeBytes", "sha256", "artifact"}}
- ``drop_database`` {"connection", "database"} → {"database", "dropped": true}
- ``script``  {"script", "argv": [...], "timeoutSeconds", "env": {...}} → {"exitCode"}
- ``restart`` {"cluster", "namespace", "workload", "kind": "deployment"|"statefulset"|
  "daemonset", "timeoutSeconds"?} → {"cluster", "namespace", "workload", "readyReplicas"}
- ``restart`` {"kind": "service", "service", "environment", "timeoutSeconds"?} →
  {"service", "unit"|"app", "pid"?, "startedAt"?, "state": "active"} (a systemd unit or a
  process-supervisor app on the agent's machine, named in its config's ``services``)

Every payload also names the task's ``project`` and ``environment`` slugs (and
``parentEnvironment`` for a sandbox): a connection, cluster or service whose config entry
declares ``projects`` serves only those (``check_serves``), so the agent refuses a job the
control plane should never have sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.config import AgentConfig, serves


class JobFailed(Exception):
    """A clean failure: the message is the reason the task shows."""


class JobCancelled(Exception):
    """The control plane asked to stop the job (or the agent is shutting down)."""


class StopSignal(threading.Event):
    """Set: stop the job. Its ``hold`` event, while set, freezes the job's processes: the
    agent could not renew the lease, and until the control plane answers nobody knows
    whether the job is still ours (``agent.process.run`` honours both)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = threading.Event()


@dataclass
class JobContext:
    job_id: str
    kind: str
    config: AgentConfig
    log: Callable[[str], None]
    progress: Callable[[int], None]
    cancel: StopSignal = field(default_factory=StopSignal)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("cancelled")


Handler = Callable[[dict[str, Any], JobContext], dict[str, Any]]


def restart(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """One ``restart`` job kind for every workload: the payload's ``kind`` says whether it
    is a service on this machine or a Kubernetes workload (the default, as before)."""
    from agent.handlers import kube, service

    if payload.get("kind") == "service":
        return service.restart(payload, ctx)
    return kube.restart(payload, ctx)


def handler_for(kind: str) -> Handler:
    from agent.handlers import postgres, script

    handlers: dict[str, Handler] = {
        "backup": postgres.backup,
        "restore": postgres.restore,
        "script": script.run_script,
        "restart": restart,
        "drop_database": postgres.drop_database,
    }
    if kind not in handlers:
        raise JobFailed(f"this agent cannot run {kind!r} jobs (it knows "
                        f"{', '.join(sorted(handlers))})")
    return handlers[kind]


def require(payload: dict[str, Any], name: str, kind: type = str) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise JobFailed(f"job payload lacks {name!r}")
    return value


def check_serves(payload: dict[str, Any], what: str, name: str,
                 scope: list[str] | None) -> None:
    """Refuse (``JobFailed``) a job whose project/environment the ``what`` entry ``name``
    of this agent's config does not serve."""
    project = payload.get("project")
    environment = payload.get("environment")
    parent = payload.get("parentEnvironment")
    if serves(scope, project if isinstance(project, str) else None,
              environment if isinstance(environment, str) else None,
              parent if isinstance(parent, str) else None):
        return
    served = ", ".join(scope or []) or "no project"
    if not project:
        raise JobFailed(f"refused by the agent: the job names no project, and this agent's "
                        f"{what} {name!r} serves only {served}")
    raise JobFailed(f"refused by the agent: its {what} {name!r} does not serve project "
                    f"{project!r} environment {environment!r} (it serves {served})")
