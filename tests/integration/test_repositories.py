"""Every repository against real Postgres, constraint violations as domain errors, and
concurrent transitions with exactly one winner."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.db import Database
from shared.domain.task_states import TaskStatus
from shared.errors import Conflict, ConstraintViolation, InvalidTransition, NotFound
from shared.store import activity, agents, backups, jobs, projects, roles, tasks


def _slug(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(db: Database):
    with db.transaction() as conn:
        project = projects.create_project(conn, slug=_slug(), name="Shop", actor="alice")
        environment = projects.create_environment(
            conn, project_id=project.id, slug="dev", name="Dev",
            target={"type": "agent", "pool": "local"}, actor="alice")
    return environment


def _task(db: Database, env, **kw) -> tasks.Task:
    with db.transaction() as conn:
        task, _ = tasks.create_task(conn, project_id=env.project_id, environment_id=env.id,
                                    operation=kw.get("operation", "deploy"),
                                    parameters={"version": "1.2.3"},
                                    requested_by=kw.get("by", "alice"),
                                    idempotency_key=kw.get("key"))
    return task


def test_project_crud_and_slug_lookup(db: Database) -> None:
    slug = _slug()
    with db.transaction() as conn:
        created = projects.create_project(conn, slug=slug, name="Shop", actor="alice")
        assert projects.get_project(conn, slug).id == created.id
        assert projects.get_project(conn, created.id).slug == slug
        updated = projects.update_project(conn, created.id, {"name": "Shop 2", "slug": "x"},
                                          actor="alice")
        assert (updated.name, updated.slug) == ("Shop 2", slug)
        assert created in projects.list_projects(conn, only_ids=[created.id]) or \
            projects.list_projects(conn, only_ids=[created.id])[0].id == created.id
        projects.delete_project(conn, created.id, actor="alice")
        with pytest.raises(NotFound):
            projects.get_project(conn, slug)


def test_duplicate_slug_is_a_conflict_naming_the_field(db: Database) -> None:
    slug = _slug()
    with db.transaction() as conn:
        projects.create_project(conn, slug=slug, name="A", actor="a")
    with pytest.raises(Conflict) as info, db.transaction() as conn:
        projects.create_project(conn, slug=slug, name="B", actor="a")
    assert info.value.field == "slug"


@pytest.mark.parametrize(("slug", "name", "field"), [
    ("Bad Slug", "A", "slug"), ("-x", "A", "slug"), ("ok", "", "name")])
def test_check_constraints_become_constraint_violations(db: Database, slug: str, name: str,
                                                        field: str) -> None:
    with pytest.raises(ConstraintViolation) as info, db.transaction() as conn:
        projects.create_project(conn, slug=slug, name=name, actor="a")
    assert info.value.field == field


def test_sandbox_needs_parent_and_expiry(db: Database, env) -> None:
    with pytest.raises(ConstraintViolation) as info, db.transaction() as conn:
        projects.create_environment(conn, project_id=env.project_id, slug="sb", name="SB",
                                    kind="sandbox", actor="a")
    assert info.value.field == "kind"
    with db.transaction() as conn:
        sandbox = projects.create_environment(
            conn, project_id=env.project_id, slug="sb", name="SB", kind="sandbox",
            parent_id=env.id, expires_at=datetime.now(UTC) + timedelta(hours=8), actor="a")
        assert sandbox.parent_id == env.id
        assert [e.slug for e in projects.list_environments(conn, env.project_id)] == [
            "dev", "sb"]
        assert projects.list_expired_sandboxes(conn, datetime.now(UTC) + timedelta(days=1))


def test_unknown_environment_reference_is_a_constraint_violation(db: Database, env) -> None:
    with pytest.raises(ConstraintViolation) as info, db.transaction() as conn:
        tasks.create_task(conn, project_id=env.project_id, environment_id=uuid.uuid4(),
                          operation="deploy", parameters={}, requested_by="a")
    assert info.value.field == "environmentId"


def test_task_lifecycle_writes_one_audit_row_per_transition(db: Database, env) -> None:
    task = _task(db, env)
    assert task.status == "queued"
    with db.transaction() as conn:
        tasks.transition(conn, task.id, TaskStatus.WAITING, actor="system",
                         reason="position 1, behind task X")
        running = tasks.transition(conn, task.id, TaskStatus.RUNNING, actor="system",
                                   reason="deploying")
        assert running.started_at is not None
        tasks.set_progress(conn, task.id, 40)
        done = tasks.transition(conn, task.id, TaskStatus.SUCCEEDED, actor="system",
                                reason="deployed 1.2.3", result={"version": "1.2.3"})
        log = activity.list_activity(conn, task_id=task.id)
    assert (done.status, done.progress, done.result) == ("succeeded", 100, {"version": "1.2.3"})
    assert done.finished_at is not None
    assert [e.action for e in reversed(log)] == [
        "task.created", "task.waiting", "task.running", "task.succeeded"]
    assert log[0].details["from"] == "running"


def test_illegal_transition_raises_and_changes_nothing(db: Database, env) -> None:
    task = _task(db, env)
    with pytest.raises(InvalidTransition), db.transaction() as conn:
        tasks.transition(conn, task.id, TaskStatus.SUCCEEDED, actor="x", reason="no")
    with db.transaction() as conn:
        assert tasks.get_task(conn, task.id).status == "queued"


def test_failed_task_must_carry_an_error(db: Database, env) -> None:
    task = _task(db, env)
    with pytest.raises(ConstraintViolation), db.transaction() as conn:
        tasks.transition(conn, task.id, TaskStatus.FAILED, actor="x", reason="boom")


def test_two_sessions_racing_to_move_one_task_exactly_one_wins(db: Database, env) -> None:
    for _ in range(10):
        task = _task(db, env)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def move(target: TaskStatus, task_id=task.id, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                with db.transaction() as conn:
                    tasks.transition(conn, task_id, target, actor="racer", reason="race",
                                     error="stop" if target.terminal else None)
                outcomes.append(target.value)
            except InvalidTransition:
                outcomes.append("lost")

        threads = [threading.Thread(target=move, args=(t,))
                   for t in (TaskStatus.CANCELLED, TaskStatus.FAILED)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes).count("lost") == 1, outcomes
        with db.transaction() as conn:
            final = tasks.get_task(conn, task.id)
            rows = [e for e in activity.list_activity(conn, task_id=task.id)
                    if e.action in ("task.cancelled", "task.failed")]
        assert final.status in outcomes and len(rows) == 1


def test_idempotency_key_returns_the_same_task(db: Database, env) -> None:
    key = uuid.uuid4().hex
    first = _task(db, env, key=key)
    with db.transaction() as conn:
        again, created = tasks.create_task(
            conn, project_id=env.project_id, environment_id=env.id, operation="deploy",
            parameters={"version": "1.2.3"}, requested_by="alice", idempotency_key=key)
    assert (again.id, created) == (first.id, False)
    other = _task(db, env, key=key, by="bob")  # keys are per caller
    assert other.id != first.id


def test_idempotency_key_sent_with_a_different_request_is_refused_naming_the_key(
        db: Database, env) -> None:
    key = uuid.uuid4().hex
    first = _task(db, env, key=key)
    for operation, parameters in (("deploy", {"version": "10"}), ("backup", {})):
        with pytest.raises(tasks.IdempotencyKeyReused) as refused, db.transaction() as conn:
            tasks.create_task(conn, project_id=env.project_id, environment_id=env.id,
                              operation=operation, parameters=parameters,
                              requested_by="alice", idempotency_key=key)
        assert refused.value.status == 422 and refused.value.field == "Idempotency-Key"
        assert key in refused.value.detail and str(first.id) in refused.value.detail
    with db.transaction() as conn:
        mine = [t for t in tasks.list_tasks(conn, environment_id=env.id)
                if t.requested_by == "alice"]
    assert [t.id for t in mine] == [first.id]  # nothing written


def test_task_listing_filters_and_paginates_by_cursor(db: Database, env) -> None:
    made = [_task(db, env) for _ in range(5)]
    with db.transaction() as conn:
        page1 = tasks.list_tasks(conn, environment_id=env.id, limit=3)
        page2 = tasks.list_tasks(conn, environment_id=env.id, limit=3,
                                 before_seq=page1[-1].seq)
        queued = tasks.list_tasks(conn, project_ids=[env.project_id], statuses=["queued"])
    assert [t.id for t in page1 + page2] == [t.id for t in reversed(made)]
    assert len(queued) == 5
    with db.transaction() as conn:
        assert len(tasks.open_tasks_for_environment(conn, env.id)) == 5


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_agents_pools_tokens_and_labels(db: Database) -> None:
    now = datetime.now(UTC)
    with db.transaction() as conn:
        pool = agents.create_pool(conn, name=_slug("pool"), actor="admin")
        agents.create_registration_token(conn, pool_id=pool.id, token_hash=_hash("t1"),
                                         expires_at=now + timedelta(hours=1),
                                         multi_use=False, actor="admin")
        assert agents.consume_registration_token(conn, token_hash=_hash("t1"),
                                                 now=now) == pool.id
        assert agents.consume_registration_token(conn, token_hash=_hash("t1"), now=now) is None
        agent = agents.create_agent(conn, pool_id=pool.id, name="a1", key_hash=_hash("k1"),
                                    key_expires_at=now + timedelta(days=30),
                                    labels=["linux", "pg", "pg"], version="1.0")
        assert agent.labels == ("linux", "pg")
        assert agents.find_agent_by_key_hash(conn, _hash("k1"), now).id == agent.id
        agents.rotate_key(conn, agent.id, new_hash=_hash("k2"),
                          new_expires_at=now + timedelta(days=30),
                          grace_until=now + timedelta(minutes=5))
        assert agents.find_agent_by_key_hash(conn, _hash("k1"), now) is not None  # grace
        assert agents.find_agent_by_key_hash(
            conn, _hash("k1"), now + timedelta(minutes=6)) is None
        agents.set_enabled(conn, agent.id, False, actor="admin")
        # a disabled agent still authenticates (it only gets no work); a revoked one not
        assert agents.find_agent_by_key_hash(conn, _hash("k2"), now) is not None
        agents.revoke(conn, agent.id, actor="admin", now=now)
        assert agents.find_agent_by_key_hash(conn, _hash("k2"), now) is None
        assert [a.name for a in agents.list_agents(conn, pool.id)] == ["a1"]
    with pytest.raises(ConstraintViolation) as info, db.transaction() as conn:
        agents.create_agent(conn, pool_id=pool.id, name="a2", key_hash=_hash("k3"),
                            key_expires_at=now, labels=["bad label"])
    assert info.value.field == "labels"


def test_jobs_are_claimed_once_by_an_agent_whose_labels_cover_the_demands(
        db: Database, env) -> None:
    now = datetime.now(UTC)
    task = _task(db, env, operation="backup")
    with db.transaction() as conn:
        pool = agents.create_pool(conn, name=_slug("pool"), actor="admin")
        plain = agents.create_agent(conn, pool_id=pool.id, name="plain", key_hash=_hash(_slug()),
                                    key_expires_at=now + timedelta(days=1), labels=["linux"])
        pg = agents.create_agent(conn, pool_id=pool.id, name="pg", key_hash=_hash(_slug()),
                                 key_expires_at=now + timedelta(days=1),
                                 labels=["linux", "pg"])
        job, _ = jobs.create_job(conn, task_id=task.id, pool_id=pool.id, kind="backup",
                              payload={"connection": "dev"}, demands=["pg"])
    with db.transaction() as conn:
        assert jobs.claim_next_job(conn, agent_id=plain.id, pool_id=pool.id,
                                   labels=list(plain.labels), now=now,
                                   lease=timedelta(seconds=30)) is None
        claimed = jobs.claim_next_job(conn, agent_id=pg.id, pool_id=pool.id,
                                      labels=list(pg.labels), now=now,
                                      lease=timedelta(seconds=30))
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
    with db.transaction() as conn:
        assert jobs.claim_next_job(conn, agent_id=pg.id, pool_id=pool.id,
                                   labels=list(pg.labels), now=now,
                                   lease=timedelta(seconds=30)) is None
        assert [j.id for j in jobs.expired_leases(conn, now + timedelta(minutes=1))] == [job.id]
        with pytest.raises(InvalidTransition):
            jobs.finish_job(conn, job.id, agent_id=plain.id, status="succeeded", now=now)
        done = jobs.finish_job(conn, job.id, agent_id=pg.id, status="succeeded",
                               result={"ok": True}, now=now)
    assert done.status == "succeeded" and done.lease_expires_at is None


def test_backups_schedules_and_slots(db: Database, env) -> None:
    with db.transaction() as conn:
        backup = backups.record_backup(conn, environment_id=env.id, task_id=None,
                                       location="local://b1", size_bytes=10,
                                       sha256=_hash("x"))
        assert backups.get_backup(conn, backup.id) == backup
        assert backups.list_backups(conn, env.id) == [backup]
        schedule = backups.create_schedule(conn, environment_id=env.id, cron="0 0 3 * * *",
                                           timezone="UTC", retain_count=7, retain_days=None,
                                           actor="alice",
                                           created_at=datetime(2026, 1, 1, tzinfo=UTC))
        slot = datetime(2026, 1, 1, 3, tzinfo=UTC)
        assert backups.claim_slot(conn, schedule.id, slot) is True
        assert backups.claim_slot(conn, schedule.id, slot) is False
        assert backups.get_schedule(conn, schedule.id).last_slot_at == slot
    with pytest.raises(ConstraintViolation) as info, db.transaction() as conn:
        backups.record_backup(conn, environment_id=env.id, task_id=None, location="x",
                              size_bytes=1, sha256="nothex")
    assert info.value.field == "sha256"
    with pytest.raises(NotFound), db.transaction() as conn:
        backups.get_backup(conn, "not-a-uuid")


def test_role_assignments_one_role_per_principal(db: Database, env) -> None:
    with db.transaction() as conn:
        roles.assign_role(conn, project_id=env.project_id, principal_type="user",
                          principal_id="u1", role="reader", actor="admin")
        changed = roles.assign_role(conn, project_id=env.project_id, principal_type="user",
                                    principal_id="u1", role="operator", actor="admin")
        roles.assign_role(conn, project_id=None, principal_type="group",
                          principal_id="g-admins", role="admin", actor="admin")
        found = roles.roles_for(conn, user_id="u1", groups=["g-admins"])
        assert {(r.project_id, r.role) for r in found} >= {
            (env.project_id, "operator"), (None, "admin")}
        assert [r.id for r in roles.list_assignments(conn, env.project_id)] == [changed.id]
        roles.revoke_role(conn, changed.id, project_id=env.project_id, actor="admin")
    with pytest.raises(ConstraintViolation) as info, db.transaction() as conn:
        roles.assign_role(conn, project_id=None, principal_type="user", principal_id="x",
                          role="owner", actor="admin")
    assert info.value.field == "role"
