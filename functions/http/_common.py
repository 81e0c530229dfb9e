"""What every HTTP function shares: authentication, body parsing, error shaping.

Handlers stay thin: ``@api`` turns domain errors and validation errors into one
``application/problem+json`` shape, so a handler only parses, authorizes, calls
``shared`` and shapes the response.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import azure.functions as func
from pydantic import BaseModel, ValidationError

from functions.http._responses import problem, problem_from
from shared.agents.keys import server_secret
from shared.auth import Access, Principal, effective_role, parse_principal, require
from shared.auth.principal import note_display_name, parse_pipeline_keys
from shared.domain.models import Environment, Project
from shared.errors import BadRequest, DomainError, Forbidden, NotFound, PayloadTooLarge
from shared.redact import redact_url
from shared.services import services
from shared.store import activity as activity_store
from shared.store import pipeline_keys
from shared.store import projects as project_store
from shared.tasks.requests import PATTERN_RULES

log = logging.getLogger("cloudops.http")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
MAX_BODY_BYTES = 256 * 1024


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _in_words(error: Any) -> str:
    """Pydantic's message, except that a known pattern is said in words, not as a regex."""
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in PATTERN_RULES:
        return PATTERN_RULES[pattern]
    return str(error["msg"])


def validation_problem(exc: ValidationError) -> func.HttpResponse:
    errors = exc.errors(include_url=False)
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    field = ".".join(_camel(str(p)) if isinstance(p, str) else str(p) for p in first["loc"])
    details = [{"field": ".".join(str(p) for p in e["loc"]), "message": _in_words(e)}
               for e in errors]
    return problem(422 if field else 400, "Invalid request",
                   f"{field or 'body'}: {_in_words(first)}", field=field or None,
                   extra={"errors": details})


def record_denial(exc: Forbidden, req: func.HttpRequest | None) -> None:
    """Every denied attempt goes to the activity log (its own transaction: the request's
    rolled back). Best effort: auditing must not turn a 403 into a 500."""
    if exc.actor is None:
        return
    details = {"detail": exc.detail}
    if req is not None:
        details.update({"method": req.method, "url": redact_url(req.url)})
    try:
        with services().db.transaction() as conn:
            activity_store.record(conn, actor=exc.actor, action="access.denied",
                                  project_id=exc.project_id, task_id=exc.task_id,
                                  details=details)
    except Exception:
        log.exception("could not record a denied attempt")


def _request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> func.HttpRequest | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, func.HttpRequest):
            return value
    return None


def api(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an HTTP handler so errors leave as problem+json (sync or async)."""
    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def async_wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
            try:
                response: func.HttpResponse = await handler(*args, **kwargs)
                return response
            except (DomainError, ValidationError) as exc:
                if isinstance(exc, Forbidden):  # audited off the event loop
                    await asyncio.to_thread(record_denial, exc, _request(args, kwargs))
                return _problem(exc)
        return async_wrapper

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            response: func.HttpResponse = handler(*args, **kwargs)
            return response
        except (DomainError, ValidationError) as exc:
            if isinstance(exc, Forbidden):
                record_denial(exc, _request(args, kwargs))
            return _problem(exc)
    return wrapper


def _problem(exc: DomainError | ValidationError) -> func.HttpResponse:
    return validation_problem(exc) if isinstance(exc, ValidationError) else problem_from(exc)


def caller(req: func.HttpRequest) -> Principal:
    """The authenticated principal of a user-API request, or Unauthorized."""
    svc = services()
    settings = svc.settings
    # the host's function keys act as pipeline keys on the local host only
    keys = parse_pipeline_keys(settings.pipeline_keys) if settings.mode == "local" else None

    def check_key(key: str) -> str | None:
        with svc.db.transaction() as conn:
            return pipeline_keys.authenticate(conn, server_secret(settings), key,
                                              svc.clock.now())

    principal = parse_principal(req.headers, req.params, pipeline_keys=keys,
                                check_key=check_key)
    note_display_name(principal)
    return principal


def json_body(req: func.HttpRequest, model: type[M]) -> M:
    """Parse and validate the JSON body; errors name the offending field."""
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes", field="body")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON", field="body") from None
    except RecursionError:  # nested deeper than the parser's stack
        raise BadRequest("body nests too deeply", field="body") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", field="body")
    return model.model_validate(data)


def access_of(conn: Any, principal: Principal) -> Access:
    return effective_role(conn, principal)


def idempotency_key(req: func.HttpRequest) -> str | None:
    key: str | None = req.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
        raise BadRequest("Idempotency-Key must be 1-200 printable characters",
                         field="Idempotency-Key")
    return key


def page_limit(req: func.HttpRequest, default: int = 50, maximum: int = 200) -> int:
    raw = req.params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}", field="limit")
    return int(raw)


def readable_project(conn: Any, req: func.HttpRequest,
                     principal: Principal) -> tuple[Project, Access]:
    """The route's ``{project}`` and the caller's access, if the caller may read it."""
    project = project_store.get_project(conn, req.route_params["project"])
    access = access_of(conn, principal)
    require(access, project.id, "reader", "reading this project")
    return project, access


def of_environment(env: Environment, raw: str, get: Callable[[UUID], T], field: str, *,
                   say_where: bool = False) -> T:
    """The row with the route's id ``raw`` (``get`` reads it by id), if it belongs to
    ``env``; else 404 naming ``field``, as for no such row (existence does not leak)."""
    try:
        item = get(UUID(raw))
    except ValueError:
        raise NotFound(f"{field} {raw[:80]} not found", field=field) from None
    if getattr(item, "environment_id", None) != env.id:
        where = f" in {env.slug}" if say_where else ""
        raise NotFound(f"{field} {raw} not found{where}", field=field)
    return item


def readable_environment(conn: Any, req: func.HttpRequest,
                         principal: Principal) -> tuple[Project, Environment, Access]:
    """The route's ``{project}`` and ``{env}``, and the caller's access, if the caller may
    read the project."""
    project, access = readable_project(conn, req, principal)
    return project, project_store.get_environment(conn, project.id,
                                                  req.route_params["env"]), access
