"""Sandbox lifetime on real Postgres with a manual clock: expiry warnings once per expiry
time, one teardown task per expired sandbox (through the pipeline's task records), TTL
extension within the maximum."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.clock import ManualClock
from shared.domain.models import Environment, Project
from shared.errors import ConstraintViolation
from shared.notify.rules import RuleInput
from shared.schedules.sandboxes import extend, submit_expired_teardowns, warn_expiring
from shared.services import Services
from shared.store import activity
from shared.store import projects as project_store
from shared.store.notification_rules import create_rule
from tests.notify.cards import facts_of, validate_teams_message
from tests.notify.conftest import make_project
from tests.notify.sinks import WebhookSink


def sandbox_of(svc: Services, project: Project, parent: Environment,
               expires_in: timedelta, slug: str = "try-it") -> Environment:
    with svc.db.transaction() as conn:
        return project_store.create_environment(
            conn, project_id=project.id, slug=slug, name=f"Sandbox {slug}", kind="sandbox",
            parent_id=parent.id, target=parent.target, expires_at=svc.clock.now() + expires_in,
            actor="carol@example.com")


def test_expired_sandboxes_get_one_teardown_task_saying_who_and_why(plane: Services) -> None:
    project, env = make_project(plane)
    expired = sandbox_of(plane, project, env, timedelta(minutes=-1), "old")
    sandbox_of(plane, project, env, timedelta(hours=2), "fresh")
    submitted = [t for t in submit_expired_teardowns(plane) if t.project_id == project.id]
    assert [(t.operation, t.environment_id, t.requested_by) for t in submitted] == [
        ("sandbox_delete", expired.id, "sandbox-expiry")]
    assert submitted[0].parameters["reason"].startswith("expired at ")
    assert [t for t in submit_expired_teardowns(plane) if t.project_id == project.id] == []
    with plane.db.transaction() as conn:
        entries = activity.list_activity(conn, project_id=project.id, actor="sandbox-expiry")
    assert {e.action for e in entries} == {"task.created", "sandbox.expired"}


def test_expiry_warning_goes_out_once_per_expiry_time(plane: Services,
                                                      webhook: WebhookSink) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]
    project, env = make_project(plane)
    with plane.db.transaction() as conn:
        create_rule(conn, project_id=project.id, body=RuleInput.model_validate({
            "name": "expiry", "events": ["sandbox.expiring"], "channel": "teams",
            "webhookUrl": webhook.url}), environment_ids=[], actor="alice")
    sandbox = sandbox_of(plane, project, env, timedelta(minutes=30))
    warn_expiring(plane)
    warn_expiring(plane)
    assert len(webhook.delivered) == 1
    card = validate_teams_message(webhook.delivered[0])
    assert facts_of(card)["Outcome"] == "expires in 30 minutes"
    with plane.db.transaction() as conn:
        extend(conn, sandbox, 2, actor="carol@example.com", now=clock.now(), max_ttl_hours=168)
    warn_expiring(plane)
    assert len(webhook.delivered) == 1  # the new expiry is outside the warning window
    clock.advance(timedelta(hours=1, minutes=40))
    warn_expiring(plane)
    assert len(webhook.delivered) == 2


def test_extension_is_bounded_by_the_maximum_lifetime(plane: Services) -> None:
    project, env = make_project(plane)
    sandbox = sandbox_of(plane, project, env, timedelta(hours=8))
    with plane.db.transaction() as conn:
        longer = extend(conn, sandbox, 24, actor="carol", now=plane.clock.now(),
                        max_ttl_hours=48)
        assert longer.expires_at == sandbox.expires_at + timedelta(hours=24)  # type: ignore[operator]
        with pytest.raises(ConstraintViolation) as refused:
            extend(conn, longer, 24, actor="carol", now=plane.clock.now(), max_ttl_hours=48)
        assert refused.value.field == "hours"
        with pytest.raises(ConstraintViolation, match="not a sandbox"):
            extend(conn, env, 1, actor="carol", now=plane.clock.now(), max_ttl_hours=48)


def test_the_maximum_lifetime_is_measured_by_the_database_that_stamped_the_birth(
        plane: Services) -> None:
    clock: ManualClock = plane.clock  # type: ignore[assignment]  # the notify plane's clock
    project, env = make_project(plane)
    sandbox = sandbox_of(plane, project, env, timedelta(minutes=30))
    with plane.db.transaction() as conn:  # born 46 hours ago by the database's clock
        conn.execute("UPDATE environments SET created_at = now() - interval '46 hours'"
                     " WHERE id = %s", (sandbox.id,))
    with plane.db.transaction() as conn:
        with pytest.raises(ConstraintViolation, match="at most 48 hours") as refused:
            extend(conn, sandbox, 2, actor="carol", now=clock.now(), max_ttl_hours=48)
        assert refused.value.field == "hours"
        longer = extend(conn, sandbox, 1, actor="carol", now=clock.now(), max_ttl_hours=48)
    assert longer.expires_at == sandbox.expires_at + timedelta(hours=1)  # type: ignore[operator]
    # the injected clock moving on ages the sandbox by nothing the database has not seen:
    # its last two hours still count from the clock's now
    clock.advance(timedelta(days=10))
    with plane.db.transaction() as conn:
        later = extend(conn, longer, 1, actor="carol", now=clock.now(), max_ttl_hours=48)
    assert later.expires_at == clock.now() + timedelta(hours=1)
