"""Each project's catalogue of approved scripts (the definitions and how their typed
parameters resolve into argv live in ``shared.tasks.scripts``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from shared.errors import ConstraintViolation, NotFound
from shared.store import _paging, activity
from shared.store._paging import Key
from shared.tasks.scripts import ScriptDefinition


def create_script(conn: Connection[Any], project_id: UUID, script: ScriptDefinition, *,
                  actor: str) -> ScriptDefinition:
    data = script.model_dump(mode="json")
    conn.execute(
        "INSERT INTO scripts (project_id, name, description, argv, parameters, timeout_seconds,"
        " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (project_id, script.name, script.description, Jsonb(data["argv"]),
         Jsonb(data["parameters"]), script.timeout_seconds, actor))
    activity.record(conn, actor=actor, action="script.created", project_id=project_id,
                    details={"script": script.name})
    return script



def _from_row(row: dict[str, Any]) -> ScriptDefinition:
    return ScriptDefinition.model_validate({
        "name": row["name"], "description": row["description"], "argv": row["argv"],
        "parameters": row["parameters"], "timeoutSeconds": row["timeout_seconds"]})



def get_script(conn: Connection[Any], project_id: UUID, name: str) -> ScriptDefinition:
    row = conn.execute("SELECT * FROM scripts WHERE project_id = %s AND name = %s",
                       (project_id, name)).fetchone()
    if row is None:
        raise NotFound(f"script {name} is not in this project's catalogue", field="script")
    return _from_row(row)



def script_key(script: ScriptDefinition) -> Key:
    return (script.name,)



def list_scripts(conn: Connection[Any], project_id: UUID, *, after: Key | None = None,
                 limit: int | None = None) -> list[ScriptDefinition]:
    return [_from_row(r) for r in _paging.rows(
        conn, "SELECT * FROM scripts WHERE project_id = %s", (project_id,), order=("name",),
        after_key=after, limit_to=limit)]



def update_script(conn: Connection[Any], project_id: UUID, name: str, script: ScriptDefinition,
                  *, actor: str) -> ScriptDefinition:
    """Replace a script's description, argv, parameters and timeout. Its name stays:
    environments (deploy and masking scripts) and tasks refer to scripts by name."""
    if script.name != name:
        raise ConstraintViolation(f"name: a script keeps its name ({name}); add a new script "
                                  "and delete this one to rename it", field="name")
    data = script.model_dump(mode="json")
    row = conn.execute(
        "UPDATE scripts SET description = %s, argv = %s, parameters = %s, timeout_seconds = %s"
        " WHERE project_id = %s AND name = %s RETURNING id",
        (script.description, Jsonb(data["argv"]), Jsonb(data["parameters"]),
         script.timeout_seconds, project_id, name)).fetchone()
    if row is None:
        raise NotFound(f"script {name} is not in this project's catalogue", field="script")
    activity.record(conn, actor=actor, action="script.updated", project_id=project_id,
                    details={"script": name})
    return script


def delete_script(conn: Connection[Any], project_id: UUID, name: str, *, actor: str) -> None:
    row = conn.execute("DELETE FROM scripts WHERE project_id = %s AND name = %s RETURNING id",
                       (project_id, name)).fetchone()
    if row is None:
        raise NotFound(f"script {name} is not in this project's catalogue", field="script")
    activity.record(conn, actor=actor, action="script.deleted", project_id=project_id,
                    details={"script": name})
