"""Timer triggers for agents: the lease reaper (with the job-event outbox) and offline
detection. Both run every 5 seconds; on the local host either can also be fired on demand
through the host's admin endpoint (``POST /admin/functions/<name>``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.agents import reaper
from shared.agents.effects import Effects, apply_effects, deliver_job_events
from shared.agents.policy import agent_policy
from shared.notify import notify_agents_offline
from shared.services import services

bp = df.Blueprint()
log = logging.getLogger("cloudops.agents.timers")


@bp.timer_trigger(schedule="*/5 * * * * *", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def agent_lease_reaper(timer: func.TimerRequest,
                             client: df.DurableOrchestrationClient) -> None:
    """Expired leases → retried or lost; then re-deliver job events the orchestrations
    have not received (the outbox)."""
    svc, policy = services(), agent_policy()
    now = svc.clock.now()

    def reap() -> tuple[Effects, list[Any]]:
        with svc.db.transaction() as conn:
            effects = reaper.reap_expired_leases(conn, now, lease=policy.lease)
        with svc.db.transaction() as conn:
            pending = reaper.event_outbox(conn, now)
        return effects, pending

    effects, pending = await asyncio.to_thread(reap)
    await apply_effects(svc, effects, client=client, now=now)
    if pending:
        delivered = await deliver_job_events(svc, client, pending)
        log.info("job event outbox: %d of %d delivered", delivered, len(pending))


@bp.timer_trigger(schedule="*/5 * * * * *", arg_name="timer", run_on_startup=False)
async def agent_offline_detector(timer: func.TimerRequest) -> None:
    """Agents silent for 3 times their heartbeat interval become offline (agentUpdated)."""
    svc, policy = services(), agent_policy()
    now = svc.clock.now()

    def detect() -> Effects:
        with svc.db.transaction() as conn:
            return reaper.detect_offline(conn, policy, now)

    effects = await asyncio.to_thread(detect)
    await apply_effects(svc, effects, now=now)
    # agent.offline notifications for the projects that run on the pool (shared/notify)
    await asyncio.to_thread(notify_agents_offline, svc, effects.agents)
