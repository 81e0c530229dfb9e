"""Timing and lifetime rules for agents, with defaults an operator may override.

The values are the ``CLOUDOPS_AGENT_*`` fields of ``shared.settings.Settings`` (validated
with the rest at start); ``agent_policy()`` reads them from the process's services. Every
authenticated agent request counts as a sign of life, so an idle agent whose long poll is
held (at most ``max_wait`` seconds, which must stay below the offline window) sends no
separate heartbeats; an agent running jobs heartbeats every interval to renew its leases.
Tests build an ``AgentPolicy`` with short windows and pass it explicitly, or set the
variables before the services are built.

| variable                              | default | meaning                                   |
|---------------------------------------|---------|-------------------------------------------|
| ``CLOUDOPS_AGENT_HEARTBEAT_SECONDS``  | 20      | how often agents heartbeat                |
| ``CLOUDOPS_AGENT_OFFLINE_FACTOR``     | 3       | offline after this many missed intervals  |
| ``CLOUDOPS_AGENT_LEASE_SECONDS``      | 60      | a job lease; renewed by every heartbeat   |
| ``CLOUDOPS_AGENT_KEY_DAYS``           | 30      | lifetime of an agent key                  |
| ``CLOUDOPS_AGENT_MAX_WAIT_SECONDS``   | 50      | longest long-poll hold (Azure: 230 s cap) |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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


def agent_policy() -> AgentPolicy:
    """The process's policy: the ``CLOUDOPS_AGENT_*`` part of its settings."""
    from shared.services import services

    return services().settings.agent_policy()
