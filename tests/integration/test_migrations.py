"""Applying every migration to an empty database yields the expected schema; re-applying
is a no-op; two hosts migrating at once do not collide."""

from concurrent.futures import ThreadPoolExecutor

import psycopg

from shared.db import applied_migrations, apply_migrations
from shared.db.migrate import load_migrations

EXPECTED_TABLES = {
    "activity_log", "agent_labels", "agent_pools", "agents", "backup_schedule_slots",
    "backup_schedules", "backups", "environment_leases", "environments", "jobs", "projects",
    "registration_tokens", "role_assignments", "schema_migrations", "tasks",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = 'public'").fetchall()
    return {r[0] for r in rows}


def test_migrations_on_an_empty_database_create_the_schema_once(
        empty_database_url: str) -> None:
    everything = [m.version for m in load_migrations()]
    with ThreadPoolExecutor(2) as pool:  # two hosts starting at once
        results = list(pool.map(apply_migrations, [empty_database_url] * 2))
    assert sorted(results, key=len) == [[], everything]
    assert _tables(empty_database_url) >= EXPECTED_TABLES
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
