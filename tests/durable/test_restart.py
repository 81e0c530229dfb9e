"""Restart safety: a host process killed with SIGKILL mid-orchestration, then restarted.

The orchestration runs six sequential activities on the Postgres store. The first host is
killed while activity 3 is running. The second host resumes from the stored history: the
output is complete and correct, activities 0-2 never run again, and only the activity in
flight at the kill runs a second time (activities are at-least-once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "tests" / "durable" / "apps" / "restart_host.py"
STEPS = 6


@pytest.fixture
def pg_url(database_url: str) -> Iterator[str]:
    yield database_url
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS durable_history, durable_inbox, durable_instances")


def _host(url: str, marker: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.PIPE if mode == "resume" else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, str(HOST), url, str(marker), mode, "resumable",
                             str(STEPS)], stdout=out, text=True, env=env, cwd=ROOT)


def _lines(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def test_killed_host_resumes_from_history_on_restart(pg_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "steps.log"
    first = _host(pg_url, marker, "start")
    try:
        wait_until(lambda: first.poll() is not None or "start 3" in _lines(marker),
                   "activity 3 to start", 60, interval=0.01)
        assert first.poll() is None, "the first host exited early"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert "done 3" not in _lines(marker)  # it really died with activity 3 in flight

    second = _host(pg_url, marker, "resume")
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"status": "Completed", "output": [i * i for i in range(STEPS)]}
    starts = Counter(line for line in _lines(marker) if line.startswith("start"))
    assert [starts[f"start {i}"] for i in range(STEPS)] == [1, 1, 1, 2, 1, 1]
