"""Fixtures: one SignalR emulation per module (own aiohttp server), the app adapter, and
app services on the test database with a project, a task and a reader."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

import shared.services as services_module
from shared.clock import SystemClock
from shared.db import Database
from shared.realtime import RestRealtime
from shared.realtime.connection_string import parse_connection_string
from shared.services import Services, install
from shared.settings import Settings
from shared.store import projects as project_store
from shared.store import roles as role_store
from shared.store import tasks as task_store
from tests.realtime._server import Emulator, run_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with run_emulator(tmp_path_factory.mktemp("signalr")) as emu:
        yield emu


@pytest.fixture
def rest(emulator: Emulator) -> Iterator[RestRealtime]:
    rt = RestRealtime(parse_connection_string(emulator.connection_string), "cloudops")
    yield rt
    rt.close()


@pytest.fixture
def app_services(db: Database, rest: RestRealtime) -> Iterator[Services]:
    previous = services_module._services
    # Only what these tests use is real; other ports (bus, logs, ...) stay unset.
    known = {"settings": Settings.from_env({}), "db": db, "clock": SystemClock(),
             "realtime": rest}
    svc = Services(**{f.name: known.get(f.name) for f in dataclasses.fields(Services)})
    svc.realtime = rest  # also before Services grows the field
    install(svc)
    yield svc
    install(previous)


@pytest.fixture
def world(app_services: Services) -> dict[str, Any]:
    """A project with one task; ``reader`` may read it, ``stranger`` may not (it reads
    another project)."""
    suffix = secrets.token_hex(3)
    with app_services.db.transaction() as conn:
        project = project_store.create_project(conn, slug=f"rt-{suffix}", name="RT",
                                               actor="test")
        env = project_store.create_environment(conn, project_id=project.id, slug="dev",
                                               name="Dev", actor="test")
        task, _ = task_store.create_task(conn, project_id=project.id, environment_id=env.id,
                                         operation="backup", parameters={},
                                         requested_by="test")
        role_store.assign_role(conn, project_id=project.id, principal_type="user",
                               principal_id=f"reader-{suffix}", role="reader", actor="test")
        # the stranger reads another project: real-time needs a role somewhere
        elsewhere = project_store.create_project(conn, slug=f"rt-other-{suffix}",
                                                 name="RT other", actor="test")
        role_store.assign_role(conn, project_id=elsewhere.id, principal_type="user",
                               principal_id=f"stranger-{suffix}", role="reader", actor="test")
    return {"project": project, "task": task, "reader": f"reader-{suffix}",
            "stranger": f"stranger-{suffix}"}
