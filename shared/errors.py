"""Domain errors. Adapters translate infrastructure failures into these, once."""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400
    title = "Bad request"

    def __init_subclass__(cls, *, status: int | None = None, title: str | None = None) -> None:
        """``class NotFound(DomainError, status=404, title="Not found")``: the HTTP status
        and problem title a subclass answers with, in its header (inherited when left out)."""
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class BadRequest(DomainError):
    """The request itself is malformed (a parameter, a header, the body's syntax)."""


class PayloadTooLarge(DomainError, status=413, title="Payload too large"):
    """A body or upload over its size limit."""


class NotFound(DomainError, status=404, title="Not found"):
    """The thing named does not exist (or is not visible to the caller)."""


class Conflict(DomainError, status=409, title="Conflict"):
    """A uniqueness rule was broken (e.g. a slug already taken)."""


class ConstraintViolation(DomainError, status=422, title="Constraint violated"):
    """A referential or check constraint refused the write."""


class InvalidTransition(DomainError, status=409, title="Invalid state transition"):
    """A task (or job) was asked to move to a state its current state does not allow."""


class Unavailable(DomainError, status=503, title="Service unavailable"):
    """A dependency (usually the database) is unreachable; safe to retry later."""

    def __init__(self, detail: str, *, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unauthorized(DomainError, status=401, title="Unauthorized"):
    """No valid credentials came with the request."""


class Forbidden(DomainError, status=403, title="Forbidden"):
    """Authenticated but not allowed; carries who and where, for the audit log."""

    def __init__(self, detail: str, *, field: str | None = None, actor: str | None = None,
                 project_id: UUID | None = None, task_id: UUID | None = None) -> None:
        super().__init__(detail, field=field)
        self.actor = actor
        self.project_id = project_id
        self.task_id = task_id
