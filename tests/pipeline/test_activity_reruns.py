"""Durable runs an activity at least once: a host killed after the activity committed
but before its result reached the history runs it again on restart. Activities that
create work must find what their first run made instead of making it twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.activities.jobs import dispatch_job, record_backup
from functions.payloads import Dispatched, DispatchJob, RecordBackup, ScriptJob
from shared.artifacts._local import LocalArtifactStore
from shared.domain.task_states import TaskStatus
from shared.errors import DomainError
from shared.services import Services
from shared.store import agents as agent_store
from shared.store import projects, resources, scripts
from shared.store import tasks as task_store
from shared.tasks.scripts import ScriptDefinition


def _running_script_task(svc: Services) -> uuid.UUID:
    """A running script task on an agent environment whose pool has a capable agent."""
    slug = f"r-{uuid.uuid4().hex[:8]}"
    with svc.db.transaction() as conn:
        pool = agent_store.create_pool(conn, name=f"pool-{slug}", actor="t")
        agent_store.create_agent(conn, pool_id=pool.id, name="a", key_hash=slug,
                                 key_expires_at=datetime.now(UTC) + timedelta(days=1),
                                 labels=["linux"])
        project = projects.create_project(conn, slug=slug, name=slug, actor="t")
        resources.grant(conn, resources.register(conn, kind="pool", name=pool.name, actor="t"),
                        project_id=project.id, namespaces=None, actor="t")
        env = projects.create_environment(
            conn, project_id=project.id, slug="dev", name="Dev", actor="t",
            target={"type": "agent", "pool": pool.name, "labels": ["linux"]})
        scripts.create_script(conn, project.id, ScriptDefinition(name="touch", argv=["true"]),
                              actor="t")
        task, _ = task_store.create_task(conn, project_id=project.id, environment_id=env.id,
                                         operation="script_run",
                                         parameters={"script": "touch", "parameters": {}},
                                         requested_by="t")
        task_store.transition(conn, task.id, TaskStatus.RUNNING, actor="t")
    return task.id


def _jobs_of(svc: Services, task_id: uuid.UUID) -> list[str]:
    with svc.db.transaction() as conn:
        return [str(r["id"]) for r in conn.execute(
            "SELECT id FROM jobs WHERE task_id = %s ORDER BY seq", (task_id,)).fetchall()]


def test_dispatch_run_twice_with_the_orchestrations_job_id_creates_one_job(
        svc: Services) -> None:
    task_id = _running_script_task(svc)
    asked = DispatchJob(task_id=str(task_id), kind="script",
                        payload=ScriptJob(script="touch", parameters={}),
                        job_id=str(uuid.uuid4())).to_json()

    first = Dispatched.from_json(dispatch_job(asked))
    with svc.db.transaction() as conn:  # an agent took it before the host died
        task_store.transition(conn, task_id, TaskStatus.RUNNING, actor="agent")
    again = Dispatched.from_json(dispatch_job(asked))

    assert first.error is None and first.job_id == asked["jobId"]
    assert again == first
    assert _jobs_of(svc, task_id) == [first.job_id]
    with svc.db.transaction() as conn:  # the rerun did not move the task back to waiting
        assert task_store.get_task(conn, task_id).status == TaskStatus.RUNNING


def test_a_job_id_of_another_task_is_refused_and_creates_nothing(svc: Services) -> None:
    mine, other = _running_script_task(svc), _running_script_task(svc)
    job_id = str(uuid.uuid4())

    def asked(task_id: uuid.UUID) -> dict[str, object]:
        return DispatchJob(task_id=str(task_id), kind="script",
                           payload=ScriptJob(script="touch", parameters={}),
                           job_id=job_id).to_json()

    assert Dispatched.from_json(dispatch_job(asked(mine))).job_id == job_id
    with pytest.raises(DomainError, match="belongs to another task"):
        dispatch_job(asked(other))
    assert _jobs_of(svc, mine) == [job_id]
    assert _jobs_of(svc, other) == []


def test_record_backup_run_twice_records_one_backup(svc: Services, tmp_path: Path) -> None:
    svc.artifacts = LocalArtifactStore(tmp_path, b"s" * 32, "http://localhost")
    task_id = _running_script_task(svc)
    with svc.db.transaction() as conn:
        env_id = task_store.get_task(conn, task_id).environment_id
    asked = RecordBackup(task_id=str(task_id), environment_id=str(env_id), kind="backup",
                         artifact={"artifact": f"backups/{task_id}.dump", "sizeBytes": 10,
                                   "sha256": "0" * 64}).to_json()

    first, again = record_backup(asked), record_backup(asked)

    assert again == first
    with svc.db.transaction() as conn:
        rows = conn.execute("SELECT id FROM backups WHERE task_id = %s", (task_id,)).fetchall()
    assert [str(r["id"]) for r in rows] == [first["id"]]
