"""The views the API returns match the response models the OpenAPI document declares."""

import uuid

from shared.api.openapi import ActivityOut, EnvironmentOut, ProjectOut, TaskOut, build_openapi
from shared.api.views import activity_json, environment_json, project_json, task_json
from shared.db import Database
from shared.store import activity, projects, tasks


def test_views_validate_against_the_documented_models(db: Database) -> None:
    with db.transaction() as conn:
        project = projects.create_project(conn, slug=f"s-{uuid.uuid4().hex[:8]}", name="S",
                                          actor="t")
        env = projects.create_environment(conn, project_id=project.id, slug="dev", name="D",
                                          target={"type": "noop"}, actor="t")
        task, _ = tasks.create_task(conn, project_id=project.id, environment_id=env.id,
                                    operation="deploy", parameters={"version": "1"},
                                    requested_by="t")
        entry = activity.list_activity(conn, task_id=task.id)[0]
    TaskOut.model_validate(task_json(task))
    ProjectOut.model_validate(project_json(project, "admin"))
    EnvironmentOut.model_validate(environment_json(env))
    ActivityOut.model_validate(activity_json(entry))


def test_openapi_document_is_3_1_and_lists_every_operation() -> None:
    doc = build_openapi()
    assert doc["openapi"] == "3.1.0"
    env = "/api/projects/{project}/environments/{env}"
    for path in ("deployments", "backups", "restores", "refreshes", "restarts", "sandboxes",
                 "scripts/{script}/runs"):
        op = doc["paths"][f"{env}/{path}"]["post"]
        assert "202" in op["responses"]
    for ref in ("TaskOut", "DeployRequest", "Problem"):
        assert ref in doc["components"]["schemas"]
