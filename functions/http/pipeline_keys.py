"""Pipeline keys: named, expiring credentials for CI/CD pipelines (global admins only).

- ``GET /api/pipeline-keys`` lists keys: names, dates, last use; never a key or its hash.
- ``POST /api/pipeline-keys`` ``{name, expiresInDays}`` → 201 with ``key``, shown once.
- ``POST /api/pipeline-keys/{key}/rotate`` ``{expiresInDays, graceMinutes}`` → a new key;
  the old one keeps working for the grace period only (default 60 minutes, 0 = none).
- ``DELETE /api/pipeline-keys/{key}`` revokes it (and any key in grace) at once.

A pipeline presents its key in the ``x-functions-key`` header and acts as service
``<name>``; grant it roles as principal type ``service``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http._common import access_of, api, caller, json_body
from functions.http._paging import page_json, page_request
from functions.http._responses import json_response
from shared.agents.keys import server_secret
from shared.auth import require
from shared.services import services
from shared.store import pipeline_keys as key_store

bp = func.Blueprint()
MAX_DAYS = 365


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    expires_in_days: int = Field(default=90, ge=1, le=MAX_DAYS, alias="expiresInDays")


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    expires_in_days: int = Field(default=90, ge=1, le=MAX_DAYS, alias="expiresInDays")
    grace_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60, alias="graceMinutes")


def _admin(conn: Any, req: func.HttpRequest, what: str) -> str:
    principal = caller(req)
    require(access_of(conn, principal), None, "admin", what)
    return principal.actor


def _issued(key: key_store.PipelineKey, secret: str, status: int) -> func.HttpResponse:
    return json_response({**key.as_json(), "key": secret}, status,
                         headers={"Cache-Control": "no-store"})


@bp.route(route="pipeline-keys", methods=["GET", "POST"])
@api
def pipeline_keys(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    with svc.db.transaction() as conn:
        if req.method == "GET":
            _admin(conn, req, "listing pipeline keys")
            page = page_request(req, bool, str, datetime, UUID)
            return json_response(page_json(
                key_store.list_keys(conn, after=page.after, limit=page.fetch), page,
                key_store.pipeline_key_key, lambda k: k.as_json()))
        actor = _admin(conn, req, "creating a pipeline key")
        body = json_body(req, NewKey)
        now = svc.clock.now()
        key, secret = key_store.create(conn, server_secret(svc.settings), name=body.name,
                                       expires_at=now + timedelta(days=body.expires_in_days),
                                       actor=actor)
    return _issued(key, secret, 201)


@bp.route(route="pipeline-keys/{key}/rotate", methods=["POST"])
@api
def rotate_pipeline_key(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    with svc.db.transaction() as conn:
        actor = _admin(conn, req, "rotating a pipeline key")
        body = json_body(req, Rotation)
        now = svc.clock.now()
        key, secret = key_store.rotate(
            conn, server_secret(svc.settings), req.route_params.get("key", ""), now=now,
            grace=timedelta(minutes=body.grace_minutes),
            expires_at=now + timedelta(days=body.expires_in_days), actor=actor)
    return _issued(key, secret, 200)


@bp.route(route="pipeline-keys/{key}", methods=["DELETE"])
@api
def revoke_pipeline_key(req: func.HttpRequest) -> func.HttpResponse:
    svc = services()
    with svc.db.transaction() as conn:
        actor = _admin(conn, req, "revoking a pipeline key")
        key_store.revoke(conn, req.route_params.get("key", ""), now=svc.clock.now(),
                         actor=actor)
    return func.HttpResponse(status_code=204)
