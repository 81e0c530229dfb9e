"""Every list endpoint pages: ``limit`` rows at a time, an opaque ``cursor`` to the next
page, ``nextCursor: null`` on the last; following the cursors yields every row once, in
the store's order; a bad ``limit`` or ``cursor`` answers 400 naming the field."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.db import Database
from shared.store import agents as agent_store
from shared.store import backups as backup_store
from shared.store import projects as project_store
from tests.conftest import RunningHost
from tests.pipeline.test_approvals import deploy, grant, protect
from tests.pipeline.test_pipeline_e2e import make_env, wait_for

ROWS = 5  # more than one page of LIMIT, fewer than two
LIMIT = 2


@pytest.fixture
def admin(running_host: RunningHost) -> Any:
    return running_host.session("alice", ("admin",))


@pytest.fixture
def host_db(running_host: RunningHost) -> Iterator[Database]:
    database = Database(running_host.database_url, max_size=2).open()
    yield database
    database.close()


def read_all(host: RunningHost, session: Any, path: str, limit: int = LIMIT,
             ) -> list[dict[str, Any]]:
    """Every item of a list, one page at a time, checking each page's shape."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    sep = "&" if "?" in path else "?"
    for _ in range(1000):
        query = f"{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = session.get(host.url(path + query))
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return items
        assert page["items"], "a page that promises more is never empty"
    raise AssertionError(f"{path} never reached its last page")


def first_page(host: RunningHost, session: Any, path: str) -> list[dict[str, Any]]:
    r = session.get(host.url(path))
    assert r.status_code == 200, r.text
    assert r.json()["nextCursor"] is None, "the default page holds the whole small list"
    return r.json()["items"]


def test_projects_page_through_every_readable_project(running_host: RunningHost,
                                                      admin: Any) -> None:
    made = sorted(f"pg-{uuid.uuid4().hex[:8]}" for _ in range(ROWS))
    for slug in made:
        assert admin.post(running_host.url("/api/projects"),
                          json={"slug": slug, "name": "Paged"}).status_code == 201
    slugs = [p["slug"] for p in read_all(running_host, admin, "/api/projects")]
    assert len(slugs) == len(set(slugs)), "no project shown twice"
    assert slugs == sorted(slugs)
    assert [s for s in slugs if s in made] == made


def test_environments_page_shared_before_sandboxes(running_host: RunningHost, admin: Any,
                                                   host_db: Database) -> None:
    project, _ = make_env(admin, running_host)
    for i in range(ROWS):
        r = admin.post(running_host.url(f"/api/projects/{project}/environments"),
                       json={"slug": f"e{i}", "name": "E", "target": {"type": "noop"}})
        assert r.status_code == 201, r.text
    with host_db.transaction() as conn:
        p = project_store.get_project(conn, project)
        parent = project_store.get_environment(conn, p.id, "e0")
        project_store.create_environment(
            conn, project_id=p.id, slug="a-sandbox", name="S", kind="sandbox",
            parent_id=parent.id, expires_at=datetime.now(UTC) + timedelta(days=1),
            target={"type": "noop"}, actor="t")
    paged = read_all(running_host, admin, f"/api/projects/{project}/environments")
    assert [e["slug"] for e in paged] == ["dev", "e0", "e1", "e2", "e3", "e4", "a-sandbox"]
    assert paged == first_page(running_host, admin, f"/api/projects/{project}/environments")


def test_backups_page_newest_first_through_equal_timestamps(running_host: RunningHost,
                                                             admin: Any,
                                                             host_db: Database) -> None:
    project, env = make_env(admin, running_host)
    with host_db.transaction() as conn:  # one transaction: every row has the same now()
        environment = project_store.get_environment(
            conn, project_store.get_project(conn, project).id, env)
        for i in range(ROWS * 25):  # more than the 100 the list once cut at
            backup_store.record_backup(conn, environment_id=environment.id, task_id=None,
                                       location=f"backups/{i}", size_bytes=i,
                                       sha256=hashlib.sha256(str(i).encode()).hexdigest())
        stored = backup_store.list_backups(conn, environment.id)
    path = f"/api/projects/{project}/environments/{env}/backups"
    paged = read_all(running_host, admin, path, limit=7)
    assert [b["id"] for b in paged] == [str(b.id) for b in stored]
    assert len(paged) == ROWS * 25
    assert [b["id"] for b in read_all(running_host, admin, path, limit=200)] == [
        str(b.id) for b in stored]


def test_project_lists_page(running_host: RunningHost, admin: Any) -> None:
    project, env = make_env(admin, running_host)
    base = f"/api/projects/{project}"
    for i in range(ROWS):
        r = admin.post(running_host.url(f"{base}/scripts"),
                       json={"name": f"s{i}", "argv": ["./run.sh"]})
        assert r.status_code == 201, r.text
        grant(running_host, admin, project, f"user-{i}", "reader")
        r = admin.post(running_host.url(f"{base}/notification-rules"),
                       json={"name": f"r{i}", "events": ["task.failed"], "channel": "email",
                             "recipients": ["ops@example.com"]})
        assert r.status_code == 201, r.text
        r = admin.post(running_host.url(f"{base}/environments/{env}/backup-schedules"),
                       json={"cron": f"0 {i} * * *"})
        assert r.status_code == 201, r.text
    for path, field, expected in [
            (f"{base}/scripts", "name", [f"s{i}" for i in range(ROWS)]),
            (f"{base}/notification-rules", "name", [f"r{i}" for i in range(ROWS)]),
            (f"{base}/environments/{env}/backup-schedules", "cron",
             [f"0 {i} * * *" for i in range(ROWS)])]:
        assert [x[field] for x in read_all(running_host, admin, path)] == expected, path
    roles = read_all(running_host, admin, f"{base}/roles")
    users = [r["principalId"] for r in roles if r["principalId"].startswith("user-")]
    assert users == [f"user-{i}" for i in range(ROWS)]
    assert len(roles) == len({r["id"] for r in roles}) == ROWS + 1  # and the creator


def test_global_lists_page(running_host: RunningHost, admin: Any, host_db: Database) -> None:
    tag = uuid.uuid4().hex[:6]
    pool = f"pool-{tag}"
    assert admin.post(running_host.url("/api/pools"), json={"name": pool}).status_code == 201
    with host_db.transaction() as conn:
        pool_id = agent_store.get_pool(conn, pool).id
        for i in range(ROWS):
            agent_store.create_agent(conn, pool_id=pool_id, name=f"a{i}",
                                     key_hash=hashlib.sha256(f"{tag}{i}".encode()).hexdigest(),
                                     key_expires_at=datetime.now(UTC) + timedelta(days=1),
                                     labels=[])
    granted: str | None = None
    for i in range(ROWS):
        r = admin.post(running_host.url("/api/resources"),
                       json={"kind": "connection", "name": f"c-{tag}-{i}"})
        assert r.status_code == 201, r.text
        granted = granted or r.json()["id"]
        r = admin.post(running_host.url("/api/pipeline-keys"), json={"name": f"k-{tag}-{i}"})
        assert r.status_code == 201, r.text
        project, _ = make_env(admin, running_host)
        r = admin.post(running_host.url(f"/api/resources/{granted}/grants"),
                       json={"project": project})
        assert r.status_code == 201, r.text
    agents = read_all(running_host, admin, f"/api/pools/{pool}/agents")
    assert [a["name"] for a in agents] == [f"a{i}" for i in range(ROWS)]
    pools = [p["name"] for p in read_all(running_host, admin, "/api/pools")]
    assert pools == sorted(pools) and pool in pools
    resources = read_all(running_host, admin, "/api/resources?kind=connection")
    mine = [r["name"] for r in resources if r["name"].startswith(f"c-{tag}-")]
    assert mine == [f"c-{tag}-{i}" for i in range(ROWS)]
    grants = read_all(running_host, admin, f"/api/resources/{granted}/grants")
    assert len(grants) == ROWS and len({g["id"] for g in grants}) == ROWS
    assert [g["project"] for g in grants] == sorted(g["project"] for g in grants)
    keys = [k["name"] for k in read_all(running_host, admin, "/api/pipeline-keys")]
    assert [k for k in keys if k.startswith(f"k-{tag}-")] == [f"k-{tag}-{i}"
                                                             for i in range(ROWS)]
    assert len(keys) == len(set(keys))


def test_tasks_pending_approval_page(running_host: RunningHost, admin: Any) -> None:
    project, env = make_env(admin, running_host)
    approver = f"pam-{uuid.uuid4().hex[:6]}"  # whose pending list only this test fills
    for user in ("bob", approver):
        grant(running_host, admin, project, user, "operator")
    protect(running_host, admin, project, env, approvers=[{"type": "user", "id": approver}])
    bob, pam = running_host.session("bob", ()), running_host.session(approver, ())
    made = [deploy(running_host, bob, project, env)["id"] for _ in range(ROWS)]
    for task in made:
        assert wait_for(bob, running_host, task, {"waiting"})["reason"].startswith(
            "awaiting approval")
    assert [t["id"] for t in read_all(running_host, pam, "/api/approvals")] == made
    tasks = [t["id"] for t in read_all(running_host, admin, f"/api/tasks?project={project}")]
    assert tasks == list(reversed(made))


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


LISTS = ["/api/projects", "/api/tasks", "/api/activity", "/api/approvals", "/api/pools",
         "/api/resources", "/api/pipeline-keys", "/api/roles"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("cursor=%%%", "cursor"), (f"cursor={_cursor(b'{}')}", "cursor"),
    (f"cursor={_cursor(b'[1,2,3,4,5]')}", "cursor"),
    (f"cursor={_cursor(b'[true]')}", "cursor"),
])
def test_bad_limit_or_cursor_names_the_field(running_host: RunningHost, admin: Any,
                                             path: str, query: str, field: str) -> None:
    r = admin.get(running_host.url(f"{path}?{query}"))
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["field"] == field


def test_a_cursor_from_another_list_is_refused(running_host: RunningHost,
                                               admin: Any) -> None:
    project, env = make_env(admin, running_host)
    for i in range(3):
        admin.post(running_host.url("/api/projects"),
                   json={"slug": f"pc-{uuid.uuid4().hex[:8]}", "name": f"P{i}"})
    r = admin.get(running_host.url("/api/projects?limit=1"))
    cursor = r.json()["nextCursor"]
    assert cursor
    r = admin.get(running_host.url(
        f"/api/projects/{project}/environments/{env}/backups?cursor={cursor}"))
    assert r.status_code == 400 and r.json()["field"] == "cursor"
