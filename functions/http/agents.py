"""Agent-facing endpoints (agent keys only): register, heartbeat, long poll, logs, results.

Every route here authenticates with the agent key in ``X-CloudOps-Agent-Key`` (or, from older
agents, ``Authorization: Bearer <agent key>``) (registration:
with a pool's registration token) and nothing else; user principals and pipeline keys
are not accepted, and agent keys are never accepted by the user API. Handlers are async
so a held long poll costs no thread: database work runs on worker threads, the wait is an
``asyncio.Event`` woken by the process's one LISTEN connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from uuid import UUID

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http._common import api, json_body
from functions.http._responses import json_response
from shared.agents import registration, rotation, work
from shared.agents.effects import Effects, apply_effects
from shared.agents.keys import key_hash, presented_key, server_secret
from shared.agents.policy import agent_policy
from shared.agents.views import job_for_agent
from shared.agents.waiter import job_waiter
from shared.domain.models import Agent
from shared.errors import BadRequest, Conflict, NotFound
from shared.services import Services, services

bp = df.Blueprint()
T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Body):
    token: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=100)
    labels: list[str] = Field(default_factory=list, max_length=64)
    version: str = Field(default="", max_length=100)
    os: str = Field(default="", max_length=200)
    capacity: int = Field(default=1, ge=1, le=64)


class RotateBody(_Body):
    # names this rotation: the same id sent again gets the same new key (a lost answer)
    request_id: str | None = Field(default=None, alias="requestId", min_length=16,
                                   max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


class HeartbeatBody(_Body):
    running: list[str] = Field(default_factory=list, max_length=64)
    version: str | None = Field(default=None, max_length=100)
    os: str | None = Field(default=None, max_length=200)


class LogsBody(_Body):
    lines: list[str] = Field(default_factory=list, max_length=2000)
    progress: int | None = Field(default=None, ge=0, le=100)


class ResultBody(_Body):
    status: Literal["succeeded", "failed", "cancelled"]
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=100_000)


def _in_tx(svc: Services, fn: Callable[[Any], T]) -> T:
    with svc.db.transaction() as conn:
        return fn(conn)


async def _tx(svc: Services, fn: Callable[[Any], T]) -> T:
    return await asyncio.to_thread(_in_tx, svc, fn)


async def _agent(req: func.HttpRequest, svc: Services) -> Agent:
    """The calling agent (any authenticated request also records that it is alive)."""
    key = presented_key(req.headers)
    secret = server_secret(svc.settings)
    now = svc.clock.now()

    def auth(conn: Any) -> tuple[Agent, Effects | None]:
        agent, back = registration.authenticate(conn, secret, key, now)
        return agent, work.came_online(conn, agent) if back else None

    agent, effects = await _tx(svc, auth)
    if effects is not None:
        _background(apply_effects(svc, effects, now=now))
    return agent


_pending: set[asyncio.Task[None]] = set()


def _background(coro: Any) -> None:
    """Run ``coro`` after the response (kept referenced until done, errors logged)."""
    task = asyncio.get_running_loop().create_task(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def _job_id(req: func.HttpRequest) -> UUID:
    try:
        return UUID(req.route_params.get("job", ""))
    except ValueError:
        raise NotFound("job not found: not a job id", field="job") from None


@bp.route(route="agent/register", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@api
async def agent_register(req: func.HttpRequest, client: df.DurableOrchestrationClient
                         ) -> func.HttpResponse:
    svc, policy = services(), agent_policy()
    body = json_body(req, RegisterBody)
    secret = server_secret(svc.settings)
    now = svc.clock.now()

    def register(conn: Any) -> tuple[registration.IssuedKey, Effects]:
        issued = registration.register_agent(
            conn, secret, policy, token=body.token, name=body.name, labels=body.labels,
            version=body.version, os=body.os, capacity=body.capacity, now=now)
        return issued, work.drop_inherited_leases(conn, issued.agent, now=now)

    issued, effects = await _tx(svc, register)
    await apply_effects(svc, effects, client=client)
    pool = await _tx(svc, lambda c: _pool_name(c, issued.agent))
    return json_response({
        "agentId": str(issued.agent.id), "name": issued.agent.name, "pool": pool,
        "labels": list(issued.agent.labels), "key": issued.key,
        "keyExpiresAt": issued.expires_at, **_timing(policy)}, status=201)


def _pool_name(conn: Any, agent: Agent) -> str:
    from shared.store import agents as agent_store

    return agent_store.get_pool(conn, agent.pool_id).name


def _timing(policy: Any) -> dict[str, float]:
    return {"heartbeatIntervalSeconds": policy.heartbeat_seconds,
            "leaseSeconds": policy.lease_seconds,
            "maxWaitSeconds": policy.max_wait_seconds}


@bp.route(route="agent/key", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
async def agent_rotate_key(req: func.HttpRequest) -> func.HttpResponse:
    """Rotate the calling agent's key; the old key works for a short grace period."""
    svc, policy = services(), agent_policy()
    agent = await _agent(req, svc)
    presented = presented_key(req.headers) or ""
    secret = server_secret(svc.settings)
    now = svc.clock.now()
    body = json_body(req, RotateBody)
    if body.request_id is None:  # an agent from before idempotent rotation
        issued = await _tx(svc, lambda c: registration.rotate_key(
            c, secret, policy, agent=agent, presented_key=presented, now=now))
        grace_until = now + policy.rotation_grace
    else:
        request_id = body.request_id
        issued, grace_until = await _tx(svc, lambda c: rotation.rotate_key_once(
            c, secret, policy, agent=agent, presented_key=presented, request_id=request_id,
            now=now))
    return json_response({"key": issued.key, "keyExpiresAt": issued.expires_at,
                          "previousKeyValidUntil": grace_until})


@bp.route(route="agent/heartbeat", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@api
async def agent_heartbeat(req: func.HttpRequest, client: df.DurableOrchestrationClient
                          ) -> func.HttpResponse:
    svc, policy = services(), agent_policy()
    agent = await _agent(req, svc)
    body = json_body(req, HeartbeatBody)
    now = svc.clock.now()
    answer = await _tx(svc, lambda c: work.heartbeat(
        c, agent, policy, now, running=body.running, version=body.version, os=body.os))
    await apply_effects(svc, answer.effects, client=client)
    remaining = (agent.key_expires_at - now).total_seconds()
    return json_response({
        "cancel": answer.cancel, "abandon": answer.abandon,
        "enabled": agent.enabled, "keyExpiresAt": agent.key_expires_at,
        "rotateKey": remaining < policy.key_lifetime.total_seconds()
        * policy.rotate_when_remaining, **_timing(policy)})


@bp.route(route="agent/jobs/next", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api
async def agent_next_job(req: func.HttpRequest) -> func.HttpResponse:
    """Long poll: answer with a job the moment one this agent can take exists, or 204
    after ``wait`` seconds (≤ the policy's bound, default 50)."""
    svc, policy = services(), agent_policy()
    raw_wait = req.params.get("wait", str(policy.max_wait_seconds))
    try:
        wait = float(raw_wait)
    except ValueError:
        raise BadRequest("wait must be a number of seconds", field="wait") from None
    if not 0 <= wait < float("inf"):  # also refuses nan
        raise BadRequest("wait must be a non-negative number of seconds", field="wait")
    # A longer wait than this deployment holds is capped, not refused: agents poll with
    # their own default and must keep working against a host configured shorter.
    wait = min(wait, policy.max_wait_seconds)
    agent = await _agent(req, svc)
    presented = key_hash(server_secret(svc.settings),
                         presented_key(req.headers) or "")
    effects = Effects()

    async def claim() -> Any:
        now = svc.clock.now()
        claiming = asyncio.ensure_future(_tx(svc, lambda c: work.claim(
            c, agent, policy, now, key_hash=presented)))
        try:
            job, more = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # the caller left while the claim ran: undo it once it has committed
            _background(_unclaim_when_done(svc, agent, claiming))
            raise
        effects.extend(more)
        return job

    waiter = job_waiter(svc.db.url)
    job = await waiter.next_job(str(agent.pool_id), agent.labels, wait, claim)
    if effects.tasks or effects.logs or effects.finished:
        # the claim is committed; announcing it need not delay the agent's answer
        _background(apply_effects(svc, effects))
    if job is None:
        return func.HttpResponse(status_code=204)
    return json_response(job_for_agent(job, heartbeat_seconds=policy.heartbeat_seconds,
                                       lease_seconds=policy.lease_seconds))


async def _unclaim_when_done(svc: Services, agent: Agent, claiming: asyncio.Future[Any]
                             ) -> None:
    """A claim whose poll was abandoned: hand its job back untouched (nothing ran)."""
    try:
        job, effects = await claiming
    except Exception:
        return
    if job is None:
        return
    effects.extend(await _tx(svc, lambda c: work.unclaim(c, agent, job)))
    await apply_effects(svc, effects)


@bp.route(route="agent/jobs/{job}/logs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
async def agent_job_logs(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    agent = await _agent(req, svc)
    job_id = _job_id(req)
    body = json_body(req, LogsBody)
    job, effects = await _tx(svc, lambda c: work.report_logs(
        c, agent, job_id, lines=body.lines, progress=body.progress))
    await apply_effects(svc, effects)
    return json_response({"accepted": len(body.lines), "cancel": job.cancel_requested},
                         status=202)


@bp.route(route="agent/jobs/{job}/result", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@api
async def agent_job_result(req: func.HttpRequest, client: df.DurableOrchestrationClient
                           ) -> func.HttpResponse:
    svc = services()
    agent = await _agent(req, svc)
    job_id = _job_id(req)
    body = json_body(req, ResultBody)
    now = svc.clock.now()
    try:
        job, effects = await _tx(svc, lambda c: work.report_result(
            c, agent, job_id, status=body.status, result=body.result, error=body.error,
            now=now))
    except Conflict:
        # refused (the job ended without it); the task's log still says what it reported
        note = await _tx(svc, lambda c: work.late_result_note(c, agent, job_id, body.status))
        await apply_effects(svc, note)
        raise
    await apply_effects(svc, effects, client=client)
    return json_response({"jobId": str(job.id), "status": job.status})


@bp.route(route="agent/jobs/{job}/release", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@api
async def agent_job_release(req: func.HttpRequest, client: df.DurableOrchestrationClient
                            ) -> func.HttpResponse:
    """Hand a job back on shutdown: re-queued when safe to repeat, else failed."""
    svc = services()
    agent = await _agent(req, svc)
    job_id = _job_id(req)
    now = svc.clock.now()
    job, effects = await _tx(svc, lambda c: work.release(c, agent, job_id, now=now))
    await apply_effects(svc, effects, client=client)
    return json_response({"jobId": str(job.id), "status": job.status})
