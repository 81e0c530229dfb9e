"""Fixtures: one SignalR emulation per module (own aiohttp server), and the app adapter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.realtime import RestRealtime
from shared.realtime.connection_string import parse_connection_string
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
