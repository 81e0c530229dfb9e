"""#18: migration 0012 carries rows keyed by display name over without letting a name
act as an identity, and removes grants to "everyone"."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.db import apply_migrations
from shared.db.migrate import load_migrations
from tests.conftest import create_throwaway_database, drop_database, with_database


@pytest.fixture
def before_0012() -> Iterator[str]:
    """A database migrated up to 0011, as one deployed before #18."""
    admin, name = create_throwaway_database("cloudops_edge_mig")
    url = with_database(admin, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text"
                     " NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL"
                     " DEFAULT now())")
        for mig in load_migrations():
            if mig.version >= 12:
                continue
            with conn.transaction():
                conn.execute(mig.sql.encode())
                conn.execute("INSERT INTO schema_migrations (version, name, checksum)"
                             " VALUES (%s, %s, %s)", (mig.version, mig.name, mig.checksum))
    yield url
    drop_database(admin, name)


def test_legacy_name_keyed_rows_keep_their_names_but_match_no_id(before_0012: str) -> None:
    with psycopg.connect(before_0012, row_factory=dict_row) as conn:
        project = conn.execute("INSERT INTO projects (slug, name) VALUES ('m', 'M')"
                               " RETURNING id").fetchone()["id"]
        env = conn.execute("INSERT INTO environments (project_id, slug, name, created_by)"
                           " VALUES (%s, 'dev', 'Dev', 'alice@x') RETURNING id",
                           (project,)).fetchone()["id"]
        task = conn.execute(
            "INSERT INTO tasks (project_id, environment_id, operation, parameters,"
            " requested_by, idempotency_key) VALUES (%s, %s, 'deploy', '{}', 'alice@x', 'k1')"
            " RETURNING id", (project, env)).fetchone()["id"]
        conn.execute("INSERT INTO tasks (project_id, environment_id, operation, parameters,"
                     " requested_by) VALUES (%s, %s, 'backup', '{}', 'scheduler')",
                     (project, env))
        conn.execute("INSERT INTO approvals (task_id, approver, approver_name, decision)"
                     " VALUES (%s, 'bob@x', 'bob@x', 'approve')", (task,))
        conn.execute("INSERT INTO activity_log (actor, action) VALUES ('alice@x', 'x'),"
                     " ('service:ci', 'y')")
        conn.execute("INSERT INTO role_assignments (project_id, principal_type, principal_id,"
                     " role, created_by) VALUES (%s, 'group', 'authenticated', 'admin', 'a'),"
                     " (%s, 'user', 'oid-1', 'reader', 'a')", (project, project))
    assert 12 in apply_migrations(before_0012)
    with psycopg.connect(before_0012, row_factory=dict_row) as conn:
        tasks = {r["operation"]: r for r in conn.execute(
            "SELECT operation, requested_by, requested_by_name FROM tasks")}
        assert tasks["deploy"]["requested_by"] == "name:alice@x"
        assert tasks["deploy"]["requested_by_name"] == "alice@x"
        assert tasks["backup"]["requested_by"] == "scheduler"
        approver = conn.execute("SELECT approver, approver_name FROM approvals").fetchone()
        assert approver == {"approver": "name:bob@x", "approver_name": "bob@x"}
        actors = {r["actor"]: r["actor_name"] for r in conn.execute(
            "SELECT actor, actor_name FROM activity_log")}
        assert actors == {"name:alice@x": "alice@x", "service:ci": "service:ci"}
        grants = [r["principal_id"] for r in conn.execute(
            "SELECT principal_id FROM role_assignments")]
        assert grants == ["oid-1"]
