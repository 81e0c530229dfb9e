"""Fixtures for tests that call activities in-process: the function app's services
installed over the suite's database, with in-memory realtime and logs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from shared import services as services_module
from shared.clock import SystemClock
from shared.db import Database
from shared.logs._memory import MemoryLogStore
from shared.realtime.fake import InMemoryRealtime
from shared.services import Services, install
from shared.settings import Settings


@pytest.fixture
def svc(db: Database) -> Iterator[Services]:
    previous = services_module._services
    known = {"settings": Settings.from_env({}), "db": db, "clock": SystemClock(),
             "realtime": InMemoryRealtime(), "logs": MemoryLogStore()}
    made = Services(**{f.name: known.get(f.name) for f in dataclasses.fields(Services)})
    install(made)
    yield made
    install(previous)
