"""The agent's config file: where the control plane is, who the agent is, its key, and
the named resources it may touch (database connections, clusters, executables, services).

Stored as JSON with mode 0600 (it holds the key and database passwords), written
atomically so a crash mid-write never leaves half a file. Example::

    {"url": "http://127.0.0.1:7071", "agentId": "...", "name": "laptop", "pool": "local",
     "labels": ["pg", "linux"], "key": "coa_...", "keyExpiresAt": "...",
     "heartbeatIntervalSeconds": 10, "capacity": 1,
     "connections": {"demo-dev": {"url": "postgresql://postgres@127.0.0.1:5432/demo_dev",
                                  "projects": ["demo/dev"]},
                     "scratch": "postgresql://postgres@127.0.0.1:5432/scratch"},
     "clusters": {"aks-dev": {"kubeconfig": "~/.kube/config", "context": "dev",
                              "projects": ["shop"]}},
     "allowedExecutables": ["/opt/scripts/deploy.sh", "python3"],
     "services": {"web": {"systemd": "shop-web@{environment}.service",
                          "projects": ["shop"]},
                  "demo": {"supervisor": "~/.local/state/cloudops-demo",
                           "app": "demo-web@{environment}"}},
     "workDir": "~/.local/state/cloudops-agent",
     "pgBinDir": "/usr/lib/postgresql/18/bin", "pgBinDirs": {"legacy": "/opt/pg12/bin"}}

The agent is a second wall behind the control plane's grants:

- a connection (a URL, or ``{"url", "projects"}``), cluster or service entry that declares
  ``projects`` serves only the jobs of those: ``"shop"`` is every environment of project
  ``shop`` (its sandboxes too), ``"shop/prod"`` is environment ``prod`` of ``shop`` and its
  sandboxes, ``"*"`` is every project. An entry without ``projects`` serves every project
  (as before); ``"projects": []`` serves none.
- ``allowedExecutables`` lists what catalogue scripts may execute; without the list the
  agent runs no scripts at all.

``pgBinDir`` / ``pgBinDirs`` are optional: without them each job picks the client tools
that match its server (see ``agent.pgtools``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("~/.config/cloudops-agent/config.json")
_JSON_NAMES = {"agent_id": "agentId", "key_expires_at": "keyExpiresAt",
               "key_issued_at": "keyIssuedAt",
               "heartbeat_interval_seconds": "heartbeatIntervalSeconds",
               "allowed_executables": "allowedExecutables", "work_dir": "workDir",
               "shutdown_grace_seconds": "shutdownGraceSeconds",
               "pg_bin_dir": "pgBinDir", "pg_bin_dirs": "pgBinDirs"}


class ConfigError(ValueError):
    """The config file is missing, unreadable or lacks something the agent needs."""


@dataclass
class AgentConfig:
    url: str
    agent_id: str
    name: str
    pool: str
    key: str
    key_expires_at: str = ""
    key_issued_at: str = ""
    labels: list[str] = field(default_factory=list)
    heartbeat_interval_seconds: float = 10.0
    capacity: int = 1
    connections: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowed_executables: list[str] | None = None
    work_dir: str = "~/.local/state/cloudops-agent"
    shutdown_grace_seconds: float = 30.0
    pg_bin_dir: str | None = None
    pg_bin_dirs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {_JSON_NAMES.get(k, k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentConfig:
        back = {v: k for k, v in _JSON_NAMES.items()}
        values = {back.get(k, k): v for k, v in data.items()}
        known = set(cls.__dataclass_fields__)
        try:
            config = cls(**{k: v for k, v in values.items() if k in known})
        except TypeError as exc:
            raise ConfigError(f"config is incomplete: {exc}") from None
        config.check_scopes()
        return config

    def check_scopes(self) -> None:
        """Every entry's ``projects`` (when present) is a list of scope strings; a
        connection is a URL or an object with one."""
        for what, entries in (("connections", self.connections),
                              ("clusters", self.clusters), ("services", self.services)):
            if not isinstance(entries, dict):
                raise ConfigError(f"{what} must be an object")
            for name, entry in entries.items():
                if what == "connections" and isinstance(entry, str):
                    continue
                if not isinstance(entry, dict):
                    raise ConfigError(f"{what}.{name} must be an object")
                if what == "connections" and not isinstance(entry.get("url"), str):
                    raise ConfigError(f"connections.{name} needs a 'url'")
                scope = entry.get("projects")
                if scope is not None and (not isinstance(scope, list) or not all(
                        isinstance(s, str) and s for s in scope)):
                    raise ConfigError(f"{what}.{name}.projects must be a list of "
                                      "'project' or 'project/environment' names")

    def connection(self, name: str) -> tuple[str, list[str] | None] | None:
        """A connection's URL and the projects it serves (None: every project)."""
        entry = self.connections.get(name)
        if isinstance(entry, str) and entry:
            return entry, None
        if isinstance(entry, dict) and entry.get("url"):
            return str(entry["url"]), entry.get("projects")
        return None

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir).expanduser()


def serves(scope: list[str] | None, project: str | None, environment: str | None,
           parent: str | None = None) -> bool:
    """Whether an entry with this ``projects`` scope serves a job of ``project`` /
    ``environment`` (``parent``: the environment a sandbox belongs to)."""
    if scope is None or "*" in scope:
        return True
    if not project:
        return False
    for entry in scope:
        want_project, _, want_env = entry.partition("/")
        if want_project != project:
            continue
        if not want_env or want_env in (environment, parent):
            return True
    return False


def config_path(path: str | os.PathLike[str] | None) -> Path:
    raw = path or os.environ.get("CLOUDOPS_AGENT_CONFIG") or DEFAULT_PATH
    return Path(raw).expanduser()


def load(path: str | os.PathLike[str] | None = None) -> AgentConfig:
    p = config_path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no agent config at {p}: run 'cloudops-agent register' first"
                          ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read agent config {p}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"agent config {p} must be a JSON object")
    return AgentConfig.from_json(data)


def save(config: AgentConfig, path: str | os.PathLike[str] | None = None) -> Path:
    """Write atomically with mode 0600 (the file holds secrets)."""
    p = config_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=p.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config.to_json(), f, indent=2)
            f.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
