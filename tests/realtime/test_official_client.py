"""The official ``@microsoft/signalr`` client (npm, run with Node) against the emulation.

It connects through our negotiate function (so it follows the ``{url, accessToken}``
redirect to the service exactly as in Azure), joins a task group through our group
function, and must receive exactly that group's events, in order, and nothing published
to other groups.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.realtime import RestRealtime
from shared.realtime.events import (
    publish_agent_update,
    publish_task_log,
    publish_task_update,
    publish_task_updates,
)
from shared.services import Services
from tests.realtime._bridge import add_realtime_functions
from tests.realtime._server import Emulator, run_emulator
from tests.realtime.test_functions import principal_headers

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("official_client.js")
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules/@microsoft/signalr").exists(),
    reason="node and node_modules/@microsoft/signalr are installed by ./test.sh")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """This module's emulation also serves our two HTTP functions under /api."""
    with run_emulator(tmp_path_factory.mktemp("signalr-node"),
                      extra_routes=add_realtime_functions) as emu:
        yield emu


class NodeClient:
    def __init__(self, base_url: str, user: str, groups: list[str],
                 headers: dict[str, str] | None = None) -> None:
        headers = headers or principal_headers(user)
        self.proc = subprocess.Popen(
            ["node", str(SCRIPT), base_url, json.dumps(headers), *groups],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        # A reader thread, so a stuck client fails the test instead of hanging it.
        self.lines: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def next_event(self, timeout: float = 30.0) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"node client said nothing for {timeout} s") from None
        if not line:
            self.proc.wait(10)
            assert self.proc.stderr is not None
            raise AssertionError(f"node client ended: {self.proc.stderr.read()}")
        return dict(json.loads(line))

    def finish(self) -> list[dict[str, Any]]:
        events = []
        while (event := self.next_event())["event"] != "stopped":
            events.append(event)
        assert self.proc.wait(10) == 0
        return events

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._pump_thread.join(10)  # it ends at EOF; only then may stdout close
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def test_official_client_receives_exactly_its_groups_events_in_order(
        app_services: Services, world: dict[str, Any], rest: RestRealtime,
        emulator: Emulator) -> None:
    task, reader = world["task"], world["reader"]
    client = NodeClient(emulator.base_url, reader, [f"task:{task.id}"])
    try:
        joined = client.next_event()
        assert joined["event"] == "joined", joined
        snapshots = [{"id": str(task.id), "projectId": str(task.project_id),
                      "status": status, "progress": p}
                     for p, status in enumerate(["queued", "running", "succeeded"])]
        expected: list[dict[str, Any]] = []
        for i, snap in enumerate(snapshots):
            publish_task_update(rest, snap)
            expected.append({"event": "message", "target": "taskUpdated", "args": [snap]})
            line = {"seq": i + 1, "at": "2026-01-01T00:00:00Z", "level": "info",
                    "text": f"line {i + 1}"}
            publish_task_log(rest, task.id, task.project_id, [line])
            expected.append({"event": "message", "target": "taskLog", "args": [
                {"taskId": str(task.id), "from": i + 1, "lines": [line]}]})
            # Noise the client must not see: another task, another project, agents.
            publish_task_update(rest, dict(snap, id="00000000-0000-0000-0000-0000000000aa",
                                           projectId="00000000-0000-0000-0000-0000000000bb"))
            publish_task_log(rest, "00000000-0000-0000-0000-0000000000aa", task.project_id,
                             [line])
            publish_agent_update(rest, {"id": "agent-1"})
        rest.send_to_user(reader, "stop", [])
        events = client.finish()
        assert events[-1] == {"event": "closed", "error": None}  # a clean stop, no error
        assert events[:-1] == expected
    finally:
        client.kill()


def test_official_client_gets_every_snapshot_of_a_coalesced_update_in_one_message(
        app_services: Services, world: dict[str, Any], rest: RestRealtime,
        emulator: Emulator) -> None:
    task, reader = world["task"], world["reader"]
    client = NodeClient(emulator.base_url, reader, [f"project:{task.project_id}"])
    try:
        joined = client.next_event()
        assert joined["event"] == "joined", joined
        waiting = [{"id": f"00000000-0000-0000-0000-00000000000{i}",
                    "projectId": str(task.project_id), "status": "waiting",
                    "reason": f"position {i} in the environment queue"} for i in (1, 2, 3)]
        publish_task_updates(rest, waiting)  # the positions one release refreshed
        rest.send_to_user(reader, "stop", [])
        events = client.finish()
        assert events[:-1] == [{"event": "message", "target": "taskUpdated",
                                "args": waiting}]
    finally:
        client.kill()


def test_official_client_cannot_join_a_project_it_may_not_read(
        app_services: Services, world: dict[str, Any], emulator: Emulator) -> None:
    client = NodeClient(emulator.base_url, world["stranger"],
                        [f"project:{world['project'].id}"])
    try:
        event = client.next_event()
        assert event["event"] == "join-failed" and event["status"] == 403
    finally:
        client.kill()
