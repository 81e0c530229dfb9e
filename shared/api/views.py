"""The public JSON shapes of tasks (camelCase), shared by the API and realtime events."""

from __future__ import annotations

from typing import Any

from shared.domain.models import ActivityEntry, Backup, Environment, Project, Task


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
        "requestedByName": task.requested_by_name or task.requested_by,
        "createdAt": iso(task.created_at),
        "updatedAt": iso(task.updated_at),
        "startedAt": iso(task.started_at),
        "finishedAt": iso(task.finished_at),
        "approval": task.approval,
        "plan": task.plan,
    }


def project_json(project: Project, role: str | None = None) -> dict[str, Any]:
    out = {"id": str(project.id), "slug": project.slug, "name": project.name,
           "description": project.description, "createdAt": iso(project.created_at),
           "updatedAt": iso(project.updated_at)}
    if role is not None:
        out["yourRole"] = role
    return out


def environment_json(env: Environment) -> dict[str, Any]:
    return {"id": str(env.id), "projectId": str(env.project_id), "slug": env.slug,
            "name": env.name, "kind": env.kind, "target": env.target,
            "database": env.database, "parentId": str(env.parent_id) if env.parent_id else None,
            "expiresAt": iso(env.expires_at), "url": env.url, "createdBy": env.created_by,
            "createdAt": iso(env.created_at), "updatedAt": iso(env.updated_at)}


def backup_json(backup: Backup, taker: dict[str, Any] | None = None) -> dict[str, Any]:
    """A backup; with ``taker`` (its task's requested_by and requested_by_name) also who
    took it."""
    who = {} if taker is None else {
        "takenBy": taker["requested_by"],
        "takenByName": taker["requested_by_name"] or taker["requested_by"]}
    return {**who, "id": str(backup.id), "kind": backup.kind,
            "environmentId": str(backup.environment_id),
            "taskId": str(backup.task_id) if backup.task_id else None,
            "sizeBytes": backup.size_bytes, "sha256": backup.sha256,
            "durationMs": backup.duration_ms, "toolVersions": backup.tool_versions or {},
            "createdAt": iso(backup.created_at)}


def activity_json(entry: ActivityEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": iso(entry.at), "actor": entry.actor,
            "actorName": entry.actor_name or entry.actor, "action": entry.action,
            "projectId": str(entry.project_id) if entry.project_id else None,
            "environmentId": str(entry.environment_id) if entry.environment_id else None,
            "taskId": str(entry.task_id) if entry.task_id else None, "details": entry.details}


def log_line_json(line: Any) -> dict[str, Any]:
    return {"seq": line.seq, "at": iso(line.at), "level": line.level, "text": line.text}
