"""Markers select what they say: every marker pyproject.toml declares selects at least
one test (``-m e2e`` once selected none), and none is declared twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def declared() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [line.split(":", 1)[0].strip()
            for line in config["tool"]["pytest"]["ini_options"]["markers"]]


@pytest.fixture(scope="module")
def census(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The tests each marker selects once the whole suite is collected (one run of
    ``pytest --collect-only``: nothing is executed)."""
    here = tmp_path_factory.mktemp("census")
    out = here / "markers.json"
    env = {**os.environ, "CLOUDOPS_MARKER_CENSUS": str(out)}
    # --basetemp: a second pytest must not touch /tmp/pytest-of-<user>, which pytest makes
    # private again at start; that would lock the embedded Postgres's own user out of the
    # data directories running tests keep there.
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "tests.marker_census", "-p", "no:cacheprovider",
                           "--basetemp", str(here / "basetemp"), "tests"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {k: list(v) for k, v in json.loads(out.read_text()).items()}


def test_no_marker_is_declared_twice() -> None:
    names = declared()
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_every_declared_marker_selects_some_tests(census: dict[str, list[str]]) -> None:
    empty = [name for name in declared() if not census.get(name)]
    assert empty == [], f"markers that select no test: {empty}"


def test_e2e_selects_the_tests_that_drive_a_running_host_and_only_those(
        census: dict[str, list[str]]) -> None:
    e2e = set(census["e2e"])
    # the browser drives the web app on a running host; the build checks read files only
    browser = {n for n in census["web"] if not n.startswith("tests/web/test_build.py::")}
    assert browser and browser <= e2e
    assert not {n for n in census["web"] if n.startswith("tests/web/test_build.py::")} & e2e
    assert "tests/pipeline/test_pipeline_e2e.py::test_deploy_runs_to_succeeded_with_" \
        "progress_and_logs" in e2e  # the session's running_host fixture
    assert any(n.startswith("tests/faults/test_host_kills.py::") for n in e2e)  # starts its own
    assert any(n.startswith("tests/localhost/test_cloudops_local.py::") for n in e2e)
    assert not e2e & set(census["unit"])
    # the in-process host of tests/localhost is not a running ``cloudops local``
    assert not [n for n in e2e if n.startswith("tests/localhost/test_servicebus.py::")]


def test_slow_and_embedded_select_what_they_say(census: dict[str, list[str]]) -> None:
    assert set(census["faults"]) | set(census["firstrun"]) <= set(census["slow"])
    assert "tests/integration/test_embedded_postgres.py::" in " ".join(census["embedded"])
    assert not set(census["slow"]) & set(census["unit"])


def test_every_test_folder_is_a_declared_marker() -> None:
    folders = {p.name for p in (ROOT / "tests").iterdir()
               if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders - set(declared()) == set()
