"""Domain errors. Adapters translate infrastructure failures into these, once."""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class BadRequest(DomainError):
    """The request itself is malformed (a parameter, a header, the body's syntax)."""


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    """A uniqueness rule was broken (e.g. a slug already taken)."""

    status = 409
    title = "Conflict"


class ConstraintViolation(DomainError):
    """A referential or check constraint refused the write."""

    status = 422
    title = "Constraint violated"


class InvalidTransition(DomainError):
    """A task (or job) was asked to move to a state its current state does not allow."""

    status = 409
    title = "Invalid state transition"


class Unavailable(DomainError):
    """A dependency (usually the database) is unreachable; safe to retry later."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    """Authenticated but not allowed; carries who and where, for the audit log."""

    status = 403
    title = "Forbidden"

    def __init__(self, detail: str, *, field: str | None = None, actor: str | None = None,
                 project_id: UUID | None = None, task_id: UUID | None = None) -> None:
        super().__init__(detail, field=field)
        self.actor = actor
        self.project_id = project_id
        self.task_id = task_id
