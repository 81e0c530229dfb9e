"""One way to shape HTTP responses: JSON bodies and RFC 9457 problem details."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import azure.functions as func

from shared.errors import DomainError, Unavailable


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(body: Any) -> str:
    return json.dumps(body, default=_default, separators=(",", ":"))


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(dumps(body), status_code=status, headers=headers,
                             mimetype="application/json")


def problem(status: int, title: str, detail: str, *, field: str | None = None,
            headers: dict[str, str] | None = None,
            extra: dict[str, Any] | None = None) -> func.HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if field is not None:
        body["field"] = field
    if extra:
        body.update(extra)
    return func.HttpResponse(json.dumps(body), status_code=status, headers=headers,
                             mimetype="application/problem+json")


def problem_from(error: DomainError) -> func.HttpResponse:
    headers = None
    if isinstance(error, Unavailable):
        headers = {"Retry-After": str(error.retry_after)}
    elif error.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="cloudops"'}
    return problem(error.status, error.title, error.detail, field=error.field, headers=headers)
