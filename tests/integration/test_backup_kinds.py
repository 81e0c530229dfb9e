"""A restore's safety copy is a backup of a different kind: listed and labelled, but never
the 'latest' backup and never what a sandbox is seeded from."""

from __future__ import annotations

import uuid
from typing import Any

from shared.db import Database
from shared.store import backups as backup_store
from shared.store import projects as project_store


def _environment(db: Database) -> Any:
    slug = f"kinds-{uuid.uuid4().hex[:8]}"
    with db.transaction() as conn:
        project = project_store.create_project(conn, slug=slug, name=slug, description="",
                                               actor="test")
        return project_store.create_environment(
            conn, project_id=project.id, slug="dev", name="Dev",
            parent_id=None, target={"type": "noop"}, database={}, expires_at=None, url=None,
            actor="test")


def _record(db: Database, env_id: Any, kind: str) -> Any:
    with db.transaction() as conn:
        return backup_store.record_backup(conn, environment_id=env_id, task_id=None,
                                          location=f"loc-{uuid.uuid4()}", size_bytes=1,
                                          sha256="0" * 64, kind=kind)


def test_the_latest_backup_is_never_a_safety_copy(db: Database) -> None:
    env = _environment(db)
    asked = _record(db, env.id, "backup")
    safety = _record(db, env.id, "safety")  # newer: a restore just ran
    with db.transaction() as conn:
        assert backup_store.latest_backup(conn, env.id) == asked
        listed = backup_store.list_backups(conn, env.id)
    assert [b.id for b in listed] == [safety.id, asked.id]
    assert [b.kind for b in listed] == ["safety", "backup"]


def test_an_environment_with_only_safety_copies_has_no_latest_backup(db: Database) -> None:
    env = _environment(db)
    _record(db, env.id, "safety")
    with db.transaction() as conn:
        assert backup_store.latest_backup(conn, env.id) is None


def test_an_unknown_kind_is_refused_by_the_database(db: Database) -> None:
    import pytest

    from shared.errors import ConstraintViolation

    env = _environment(db)
    with pytest.raises(ConstraintViolation):
        _record(db, env.id, "weekly")
