"""What agent work announces after commit: task log lines, ``taskUpdated``, ``taskLog``,
``agentUpdated`` (through the realtime fake), and the ``job:<id>`` external event with
its outbox bookkeeping (through a recording durable client)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.agents.effects import Effects, apply_effects
from shared.clock import SystemClock
from shared.logs import MemoryLogStore
from shared.realtime.fake import InMemoryRealtime
from tests.agents.conftest import ControlPlane


@dataclass
class FakeServices:
    db: Any
    logs: MemoryLogStore = field(default_factory=MemoryLogStore)
    realtime: InMemoryRealtime = field(default_factory=InMemoryRealtime)
    clock: SystemClock = field(default_factory=SystemClock)


class RecordingClient:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.fail = fail

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        if self.fail:
            raise RuntimeError("No instance found")
        self.events.append((instance_id, name, data))


def test_effects_publish_logs_task_and_agent_updates_and_raise_job_events(
        control_plane: ControlPlane) -> None:
    from shared.store import agents as agent_store
    from shared.store import jobs as job_store

    plane = control_plane
    pool = plane.pool()
    registered = plane.register(pool)
    task_id = plane.task()
    job_id = plane.dispatch(task_id, pool=pool)
    with plane.db.transaction() as conn:
        job = job_store.finish_job(conn, job_id, agent_id=None, status="failed",
                                   error="boom", now=datetime.now(UTC))
        agent = agent_store.get_agent(conn, registered["agentId"])
    task = plane.task_row(task_id)
    svc = FakeServices(db=plane.db)
    client = RecordingClient()
    effects = Effects(tasks=[task], agents=[(agent, pool)], logs=[(task, ["one", "two"])],
                      finished=[job])
    asyncio.run(apply_effects(svc, effects, client=client))
    assert [line.text for line in svc.logs.read(str(task_id))] == ["one", "two"]
    targets = [(s.name, s.target) for s in svc.realtime.sent]
    assert (f"task:{task_id}", "taskLog") in targets
    assert (f"project:{task.project_id}", "taskUpdated") in targets
    assert any(t == "agentUpdated" for _n, t in targets)
    agent_json = next(s.args[0] for s in svc.realtime.sent if s.target == "agentUpdated")
    assert agent_json["name"] == registered["name"] and "key" not in agent_json
    assert client.events == [(str(task_id), f"job:{job_id}", {
        "jobId": str(job_id), "status": "failed", "result": None, "error": "boom"})]
    assert plane.job(job_id).event_delivered_at is not None


def test_undelivered_job_event_stays_in_the_outbox(control_plane: ControlPlane) -> None:
    from shared.agents.reaper import event_outbox
    from shared.store import jobs as job_store

    plane = control_plane
    pool = plane.pool()
    plane.register(pool)
    job_id = plane.dispatch(plane.task(), pool=pool)
    with plane.db.transaction() as conn:
        job = job_store.finish_job(conn, job_id, agent_id=None, status="cancelled",
                                   error="stop", now=datetime(2020, 1, 1, tzinfo=UTC))
    svc = FakeServices(db=plane.db)
    asyncio.run(apply_effects(svc, Effects(finished=[job]), client=RecordingClient(fail=True)))
    row = plane.job(job_id)
    assert row.event_delivered_at is None and row.event_attempts == 1
    with plane.db.transaction() as conn:
        pending = [j.id for j in event_outbox(conn, datetime.now(UTC))]
    assert job_id in pending
