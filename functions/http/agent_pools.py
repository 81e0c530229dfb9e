"""Admin endpoints for agent pools: pools, registration tokens, agents, disable/revoke.

Authorization: pools are infrastructure shared by every project, so managing them
(creating a pool, issuing a token, disabling, enabling or revoking an agent) needs the
global admin role; reading pools and their agents needs any role anywhere (a reader on
one project may see which agents could run its work). Agent keys are not accepted here.
A registration token is returned once, when issued; agent keys never appear here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http._common import api, caller, json_body
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.agents import registration, work
from shared.agents.effects import Effects, apply_effects
from shared.agents.keys import server_secret
from shared.agents.policy import agent_policy
from shared.agents.views import agent_json, pool_json
from shared.auth import Access, effective_role, require
from shared.domain.models import Agent, AgentPool
from shared.errors import ConstraintViolation, Forbidden, NotFound
from shared.services import services
from shared.store import agents as agent_store
from shared.store import resources as resource_store

bp = df.Blueprint()
_POOL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class PoolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=63)
    description: str = Field(default="", max_length=500)


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    expires_in_minutes: float | None = Field(default=None, gt=0, alias="expiresInMinutes")
    multi_use: bool = Field(default=False, alias="multiUse")
    max_uses: int | None = Field(default=None, ge=1, le=10_000, alias="maxUses")


def _access(conn: Any, req: func.HttpRequest) -> Access:
    return effective_role(conn, caller(req))


def _require_any_role(access: Access) -> None:
    if access.global_role is None and not access.project_roles:
        raise Forbidden(f"reading agent pools needs a role; {access.principal.actor} has none")


def _agent_in_pool(conn: Any, pool_ref: str, agent_ref: str) -> tuple[AgentPool, Agent]:
    pool = agent_store.get_pool(conn, pool_ref)
    try:
        agent_id = UUID(agent_ref)
    except ValueError:
        found = agent_store.agent_id_by_name(conn, pool.id, agent_ref)
        if found is None:
            raise NotFound(f"agent {agent_ref} not found in pool {pool.name}",
                           field="agent") from None
        agent_id = found
    agent = agent_store.get_agent(conn, agent_id)
    if agent.pool_id != pool.id:
        raise NotFound(f"agent {agent_ref} not found in pool {pool.name}", field="agent")
    return pool, agent


@bp.route(route="pools", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def list_pools(req: func.HttpRequest) -> func.HttpResponse:
    svc, policy = services(), agent_policy()
    with svc.db.transaction() as conn:
        _require_any_role(_access(conn, req))
        now = svc.clock.now()
        page = page_request(req, str)
        shown = page_json(agent_store.list_pools(conn, after=page.after, limit=page.fetch),
                          page, agent_store.pool_key,
                          lambda p: pool_json(p, agent_store.list_agents(conn, p.id), now=now,
                                              offline_after=policy.offline_after))
    return json_response(shown)


@bp.route(route="pools", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def create_pool(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    with svc.db.transaction() as conn:
        access = _access(conn, req)
        require(access, None, "admin", "creating an agent pool")
        body = json_body(req, PoolBody)
        if not _POOL.fullmatch(body.name):
            raise ConstraintViolation(
                "name must be lower-case letters, digits and dashes (1-63)", field="name")
        pool = agent_store.create_pool(conn, name=body.name, description=body.description,
                                       actor=access.principal.actor)
        # a pool is also a grantable resource (granted to projects like a connection)
        resource_store.register(conn, kind="pool", name=pool.name, description=body.description,
                        actor=access.principal.actor)
    return json_response(pool_json(pool), status=201,
                         headers={"Location": f"/api/pools/{pool.name}"})


@bp.route(route="pools/{pool}/registration-tokens", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
@api
def issue_registration_token(req: func.HttpRequest) -> func.HttpResponse:
    svc, policy = services(), agent_policy()
    with svc.db.transaction() as conn:
        access = _access(conn, req)
        require(access, None, "admin", "issuing an agent registration token")
        body = json_body(req, TokenBody)
        minutes = body.expires_in_minutes or policy.token_default_minutes
        if minutes > policy.token_max_minutes:
            raise ConstraintViolation(
                f"expiresInMinutes must be at most {policy.token_max_minutes:g}",
                field="expiresInMinutes")
        if body.multi_use and body.max_uses is None:
            raise ConstraintViolation("a token is single-use unless created with maxUses;"
                                      " set maxUses to how many agents may register with it",
                                      field="maxUses")
        pool = agent_store.get_pool(conn, req.route_params.get("pool", ""))
        issued = registration.issue_token(
            conn, server_secret(svc.settings), pool=pool, actor=access.principal.actor,
            now=svc.clock.now(), ttl=timedelta(minutes=minutes),
            multi_use=body.max_uses is not None and body.max_uses > 1,
            max_uses=body.max_uses)
    return json_response({"id": str(issued.id), "pool": pool.name, "token": issued.token,
                          "expiresAt": issued.expires_at, "multiUse": issued.multi_use,
                          "maxUses": issued.max_uses}, status=201)


@bp.route(route="pools/{pool}/agents", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api
def list_pool_agents(req: func.HttpRequest) -> func.HttpResponse:
    svc, policy = services(), agent_policy()
    with svc.db.transaction() as conn:
        _require_any_role(_access(conn, req))
        pool = agent_store.get_pool(conn, req.route_params.get("pool", ""))
        now = svc.clock.now()
        page = page_request(req, str)
        shown = page_json(
            agent_store.list_agents(conn, pool.id, after=page.after, limit=page.fetch), page,
            agent_store.agent_key,
            lambda a: agent_json(a, pool_name=pool.name, now=now,
                                 offline_after=policy.offline_after))
    return json_response(shown)


@bp.route(route="pools/{pool}/agents/{agent}/{action:alpha}",
          methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@api
async def change_agent(req: func.HttpRequest,
                       client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Disable (no new jobs; keeps its key), enable, or revoke (keys void for good; its
    leased jobs fail over at once)."""
    import asyncio

    svc, policy = services(), agent_policy()
    action = req.route_params.get("action", "")
    if action not in ("disable", "enable", "revoke"):
        raise NotFound(f"no agent action {action!r}: disable, enable or revoke", field="action")

    def change() -> tuple[Any, str, Effects]:
        with svc.db.transaction() as conn:
            access = _access(conn, req)
            require(access, None, "admin", f"{action} an agent")
            pool, agent = _agent_in_pool(conn, req.route_params.get("pool", ""),
                                         req.route_params.get("agent", ""))
            actor = access.principal.actor
            ended = Effects()
            if action == "revoke":
                agent = agent_store.revoke(conn, agent.id, actor=actor, now=svc.clock.now())
                # its jobs end now, saying so, rather than later as "agent lost"
                ended = work.agent_revoked(conn, agent, actor=actor, now=svc.clock.now())
            else:
                agent_store.set_enabled(conn, agent.id, action == "enable", actor=actor)
                agent = agent_store.get_agent(conn, agent.id)
            return agent, pool.name, ended

    agent, pool_name, ended = await asyncio.to_thread(change)
    ended.agents.append((agent, pool_name))
    await apply_effects(svc, ended, client=client)
    return json_response(agent_json(agent, pool_name=pool_name, now=svc.clock.now(),
                                    offline_after=policy.offline_after))
