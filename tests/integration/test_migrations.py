"""Applying every migration to an empty database yields exactly the committed schema
snapshot (``tests/integration/schema.snapshot``; see ``schema_snapshot.py`` for how to
regenerate it when a migration is added); re-applying is a no-op; two hosts migrating at
once do not collide."""

import difflib
import os
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from shared.db import applied_migrations, apply_migrations
from shared.db.migrate import load_migrations
from tests.integration.schema_snapshot import SNAPSHOT, dump

REGENERATE = "CLOUDOPS_UPDATE_SCHEMA_SNAPSHOT"


def test_migrations_on_an_empty_database_create_the_schema_once(
        empty_database_url: str) -> None:
    everything = [m.version for m in load_migrations()]
    with ThreadPoolExecutor(2) as pool:  # two hosts starting at once
        results = list(pool.map(apply_migrations, [empty_database_url] * 2))
    assert sorted(results, key=len) == [[], everything]
    assert [m["version"] for m in applied_migrations(empty_database_url)] == everything
    assert apply_migrations(empty_database_url) == []


def test_schema_carries_the_constraints_not_only_python(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        names = {r[0] for r in conn.execute(
            "SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace")}
    for constraint in ("projects_slug_key", "tasks_status_check", "tasks_terminal_shape",
                       "environments_sandbox_shape", "jobs_leased_shape",
                       "backups_sha256_format", "role_assignments_role_check",
                       "tasks_environment_id_fkey"):
        assert constraint in names


def test_the_migrated_schema_is_exactly_the_snapshot(empty_database_url: str) -> None:
    apply_migrations(empty_database_url)  # a no-op when the test above ran first
    actual = dump(empty_database_url)
    if os.environ.get(REGENERATE):
        SNAPSHOT.write_text(actual)
        pytest.skip(f"{REGENERATE} set: wrote {SNAPSHOT.name}; review and commit its diff")
    expected = SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                        actual.splitlines(keepends=True),
                                        "schema.snapshot (committed)", "after migrations"))
    assert actual == expected, (
        f"the migrated schema differs from tests/integration/schema.snapshot; if a migration"
        f" changed it on purpose, regenerate with {REGENERATE}=1 and commit:\n{diff}")


def test_the_snapshot_sees_every_kind_of_change(empty_database_url: str) -> None:
    """A column's type, nullability or default, a constraint or an index changed by hand
    after the migrations: each shows in the dump (the comparison above cannot miss it)."""
    apply_migrations(empty_database_url)
    before = dump(empty_database_url)
    changes = [
        ("ALTER TABLE projects ALTER COLUMN name DROP NOT NULL",
         "ALTER TABLE projects ALTER COLUMN name SET NOT NULL"),
        ("ALTER TABLE projects ALTER COLUMN name SET DEFAULT 'x'",
         "ALTER TABLE projects ALTER COLUMN name DROP DEFAULT"),
        ("ALTER TABLE projects ADD CONSTRAINT snapshot_probe CHECK (name <> '')",
         "ALTER TABLE projects DROP CONSTRAINT snapshot_probe"),
        ("CREATE INDEX snapshot_probe_idx ON projects (name)", "DROP INDEX snapshot_probe_idx"),
        ("ALTER TABLE projects ADD COLUMN snapshot_probe integer",
         "ALTER TABLE projects DROP COLUMN snapshot_probe"),
    ]
    for change, undo in changes:
        with psycopg.connect(empty_database_url, autocommit=True) as conn:
            conn.execute(change)
            try:
                assert dump(empty_database_url) != before, change
            finally:
                conn.execute(undo)
    assert dump(empty_database_url) == before
