"""The public JSON shapes of tasks (camelCase), shared by the API and realtime events."""

from __future__ import annotations

from typing import Any

from shared.domain.models import Task


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "seq": task.seq,
        "operation": task.operation,
        "status": task.status,
        "progress": task.progress,
        "reason": task.reason,
        "projectId": str(task.project_id),
        "environmentId": str(task.environment_id),
        "parameters": task.parameters,
        "result": task.result,
        "error": task.error,
        "requestedBy": task.requested_by,
        "createdAt": iso(task.created_at),
        "updatedAt": iso(task.updated_at),
        "startedAt": iso(task.started_at),
        "finishedAt": iso(task.finished_at),
    }
