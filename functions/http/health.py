"""GET /api/health: anonymous liveness and dependency status."""

from __future__ import annotations

import azure.functions as func

from functions.http._responses import json_response
from shared.errors import DomainError
from shared.services import services

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        latency = services().db.ping()
        database = {"status": "up", "latencyMs": round(latency, 2)}
    except DomainError as exc:
        database = {"status": "down", "detail": exc.detail}
    up = database["status"] == "up"
    return json_response({"status": "ok" if up else "degraded", "database": database},
                         status=200 if up else 503)
