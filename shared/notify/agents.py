"""``agent.offline`` for every project whose environments run on the agent's pool.

Called by the offline detector once per online → offline transition; the event id
(agent + last heartbeat) keeps a repeated call from notifying twice. There is no
orchestration to retry for us here, so a few attempts back off inline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from shared.domain.models import Project
from shared.notify.delivery import deliver
from shared.notify.events import Event
from shared.services import Services
from shared.store import projects as project_store

log = logging.getLogger("cloudops.notify")
ATTEMPTS = 3
FIRST_BACKOFF_SECONDS = 0.5


def agent_offline_event(project: Project, agent_id: Any, agent_name: str, pool: str,
                        since: datetime | None) -> Event:
    seen = since.isoformat() if since else "never"
    return Event(event="agent.offline", event_id=f"agent:{agent_id}:offline:{seen}",
                 project_id=project.id, project=project.name, outcome="offline",
                 title=f"agent {agent_name} in pool {pool} is offline",
                 facts={"Agent": agent_name, "Pool": pool, "Last heartbeat": seen})


def notify_agents_offline(svc: Services, agents: Sequence[tuple[Any, str]]) -> int:
    """Deliver ``agent.offline`` for each (agent, pool name); returns deliveries made."""
    if not agents:
        return 0
    events: list[Event] = []
    with svc.db.transaction() as conn:
        for agent, pool in agents:
            events += [agent_offline_event(project, agent.id, agent.name, pool,
                                           agent.last_heartbeat_at)
                       for project in project_store.projects_using_pool(conn, pool)]
    delivered = 0
    for event in events:
        for attempt in Retrying(stop=stop_after_attempt(ATTEMPTS),
                                wait=wait_exponential(multiplier=FIRST_BACKOFF_SECONDS),
                                retry=retry_if_result(lambda pending: pending),
                                retry_error_callback=lambda state: True):
            with attempt:
                report = deliver(svc, event, max_attempts=ATTEMPTS)
                delivered += report.delivered
            attempt.retry_state.set_result(bool(report.pending))
    return delivered
