"""Events other parts raise: ``agent.offline`` (offline detector) reaches the projects
running on the agent's pool once; ``approval.requested`` carries who must approve."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from shared.notify import approval_requested_event, notify_agents_offline, notify_event
from shared.notify.rules import RuleInput
from shared.services import Services
from shared.store import tasks as task_store
from shared.store.notification_rules import create_rule
from tests.notify.cards import facts_of, validate_teams_message
from tests.notify.conftest import PUBLIC_URL, make_project
from tests.notify.sinks import WebhookSink


def subscribe(svc: Services, project_id: uuid.UUID, event: str, url: str) -> None:
    with svc.db.transaction() as conn:
        create_rule(conn, project_id=project_id, body=RuleInput.model_validate({
            "name": event, "events": [event], "channel": "teams", "webhookUrl": url}),
            environment_ids=[], actor="alice")


def test_agent_offline_reaches_projects_on_the_pool_once(plane: Services,
                                                         webhook: WebhookSink) -> None:
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    on_pool, _ = make_project(plane, target={"type": "agent", "pool": pool})
    elsewhere, _ = make_project(plane, target={"type": "agent", "pool": "other"})
    subscribe(plane, on_pool.id, "agent.offline", webhook.url)
    subscribe(plane, elsewhere.id, "agent.offline", webhook.url)
    agent = SimpleNamespace(id=uuid.uuid4(), name="build-01",
                            last_heartbeat_at=datetime(2026, 5, 1, 12, tzinfo=UTC))
    assert notify_agents_offline(plane, [(agent, pool)]) == 1
    assert notify_agents_offline(plane, [(agent, pool)]) == 0
    (message,) = webhook.delivered
    facts = facts_of(validate_teams_message(message))
    assert (facts["Agent"], facts["Pool"], facts["Outcome"]) == ("build-01", pool, "offline")


def test_approval_requested_names_the_approvers_and_links_the_task(
        plane: Services, webhook: WebhookSink) -> None:
    project, env = make_project(plane)
    subscribe(plane, project.id, "approval.requested", webhook.url)
    with plane.db.transaction() as conn:
        task, _ = task_store.create_task(conn, project_id=project.id, environment_id=env.id,
                                         operation="deploy", parameters={"version": "9"},
                                         requested_by="bob")
    event = approval_requested_event(task, project, env, PUBLIC_URL, "group release-managers")
    assert notify_event(plane, event).delivered == 1
    card = validate_teams_message(webhook.delivered[0])
    assert facts_of(card)["Approvers"] == "group release-managers"
    assert card["actions"][0]["url"] == f"{PUBLIC_URL}/task/?id={task.id}"
