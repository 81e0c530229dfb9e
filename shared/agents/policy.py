"""Timing and lifetime rules for agents, with defaults an operator may override.

The values are read once from the environment by ``agent_policy()`` (never at import
time). Every authenticated agent request counts as a sign of life, so an idle agent
whose long poll is held (at most ``max_wait`` seconds, which must stay below the offline
window) sends no separate heartbeats; an agent running jobs heartbeats every interval to
renew its leases. Tests build an ``AgentPolicy`` with short windows and pass it explicitly or
``install_policy`` it.

| variable                              | default | meaning                                   |
|---------------------------------------|---------|-------------------------------------------|
| ``CLOUDOPS_AGENT_HEARTBEAT_SECONDS``  | 20      | how often agents heartbeat                |
| ``CLOUDOPS_AGENT_OFFLINE_FACTOR``     | 3       | offline after this many missed intervals  |
| ``CLOUDOPS_AGENT_LEASE_SECONDS``      | 60      | a job lease; renewed by every heartbeat   |
| ``CLOUDOPS_AGENT_KEY_DAYS``           | 30      | lifetime of an agent key                  |
| ``CLOUDOPS_AGENT_MAX_WAIT_SECONDS``   | 50      | longest long-poll hold (Azure: 230 s cap) |
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from shared.settings import SettingsError


@dataclass(frozen=True)
class AgentPolicy:
    heartbeat_seconds: float = 20.0
    offline_factor: float = 3.0
    lease_seconds: float = 60.0
    key_days: float = 30.0
    # how long a rotated-out key keeps working, so an agent that rotated but lost the
    # answer can still authenticate with the old key and rotate again
    rotation_grace_seconds: float = 300.0
    # agents rotate when less than this fraction of the key's lifetime remains
    rotate_when_remaining: float = 0.25
    max_wait_seconds: float = 50.0
    token_default_minutes: float = 60.0
    token_max_minutes: float = 7 * 24 * 60.0

    @property
    def heartbeat(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_seconds)

    @property
    def offline_after(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_seconds * self.offline_factor)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    @property
    def key_lifetime(self) -> timedelta:
        return timedelta(days=self.key_days)

    @property
    def rotation_grace(self) -> timedelta:
        return timedelta(seconds=self.rotation_grace_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentPolicy:
        env = os.environ if environ is None else environ
        names = {
            "CLOUDOPS_AGENT_HEARTBEAT_SECONDS": "heartbeat_seconds",
            "CLOUDOPS_AGENT_OFFLINE_FACTOR": "offline_factor",
            "CLOUDOPS_AGENT_LEASE_SECONDS": "lease_seconds",
            "CLOUDOPS_AGENT_KEY_DAYS": "key_days",
            "CLOUDOPS_AGENT_MAX_WAIT_SECONDS": "max_wait_seconds",
        }
        values: dict[str, float] = {}
        for env_name, attr in names.items():
            raw = (env.get(env_name) or "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(env_name, f"must be a number, got {raw!r}") from None
            if value <= 0:
                raise SettingsError(env_name, f"must be positive, got {raw}")
            values[attr] = value
        policy = cls(**values)
        if policy.max_wait_seconds > 230:
            raise SettingsError("CLOUDOPS_AGENT_MAX_WAIT_SECONDS",
                                "must stay below Azure's 230 s HTTP limit")
        if policy.max_wait_seconds >= policy.offline_after.total_seconds():
            # allowed (tests shrink the heartbeat), but idle agents may look offline
            logging.getLogger("cloudops.agents").warning(
                "CLOUDOPS_AGENT_MAX_WAIT_SECONDS (%g) is not below the offline window"
                " (%g s): idle long-polling agents may be reported offline",
                policy.max_wait_seconds, policy.offline_after.total_seconds())
        if policy.lease_seconds < policy.heartbeat_seconds * 2:
            raise SettingsError("CLOUDOPS_AGENT_LEASE_SECONDS",
                                "must be at least two heartbeat intervals")
        return policy


_lock = threading.Lock()
_policy: AgentPolicy | None = None


def agent_policy() -> AgentPolicy:
    """The process-wide policy, read from the environment on first use."""
    global _policy
    if _policy is None:
        with _lock:
            if _policy is None:
                _policy = AgentPolicy.from_env()
    return _policy


def install_policy(policy: AgentPolicy | None) -> None:
    """Replace the process-wide policy (tests; None = read the environment again)."""
    global _policy
    with _lock:
        _policy = policy
