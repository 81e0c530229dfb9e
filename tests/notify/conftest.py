"""Fixtures for notification/schedule tests: a control plane on the suite's database with
an in-memory bus and realtime, a manual clock, local artifacts, and real local sinks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.artifacts._local import LocalArtifactStore
from shared.bus.memory import InMemoryBus
from shared.clock import ManualClock
from shared.db import Database
from shared.domain.models import Environment, Project
from shared.logs._memory import MemoryLogStore
from shared.realtime.fake import InMemoryRealtime
from shared.services import Services
from shared.settings import Settings
from shared.store import projects as project_store
from tests.notify.sinks import SmtpSink, WebhookSink

PUBLIC_URL = "https://ops.example.com"


def make_plane(db: Database, folder: Path, env: dict[str, str] | None = None) -> Services:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    # the webhook sinks listen on http://127.0.0.1: only this setting lets delivery reach them
    settings = Settings.from_env({"CLOUDOPS_PUBLIC_URL": PUBLIC_URL,
                                  "CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK": "true", **(env or {})})
    return Services(settings=settings, db=db, clock=clock, bus=InMemoryBus(),  # type: ignore[arg-type]
                    logs=MemoryLogStore(clock), realtime=InMemoryRealtime(),  # type: ignore[arg-type]
                    artifacts=LocalArtifactStore(folder / "artifacts", b"x" * 32,
                                                 "http://127.0.0.1:1", clock=clock))


@pytest.fixture
def plane(db: Database, tmp_path: Path) -> Services:
    return make_plane(db, tmp_path)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink(tmp_path)
    yield sink
    sink.close()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()


def make_project(svc: Services, name: str = "Shop",
                 target: dict[str, Any] | None = None) -> tuple[Project, Environment]:
    slug = f"p-{uuid.uuid4().hex[:8]}"
    with svc.db.transaction() as conn:
        project = project_store.create_project(conn, slug=slug, name=name, actor="alice")
        env = project_store.create_environment(conn, project_id=project.id, slug="dev",
                                               name="Dev", target=target or {"type": "noop"},
                                               actor="alice")
    return project, env
