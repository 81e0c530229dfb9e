"""Timer triggers for upkeep: scheduled backups and sandbox expiry (every minute).

Both are safe with several hosts: a schedule slot is claimed by a unique row, and an
expired sandbox's teardown is decided under its environment row lock.
"""

from __future__ import annotations

import asyncio
import logging

import azure.functions as func

from shared.schedules.due import fire_due_schedules
from shared.schedules.sandboxes import submit_expired_teardowns, warn_expiring
from shared.services import services

bp = func.Blueprint()
log = logging.getLogger("cloudops.timers")


@bp.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False)
async def scheduled_backups(timer: func.TimerRequest) -> None:
    """Submit a backup task for every schedule slot that came due (one catch-up after
    downtime, never one per missed slot)."""
    fired = await asyncio.to_thread(fire_due_schedules, services())
    if fired:
        log.info("scheduled backups: %d slot(s) fired", len(fired))


@bp.timer_trigger(schedule="30 * * * * *", arg_name="timer", run_on_startup=False)
async def sandbox_expiry(timer: func.TimerRequest) -> None:
    """Warn about sandboxes expiring soon; tear down the expired ones."""
    svc = services()
    await asyncio.to_thread(warn_expiring, svc)
    submitted = await asyncio.to_thread(submit_expired_teardowns, svc)
    if submitted:
        log.info("sandbox expiry: %d teardown(s) submitted", len(submitted))
