"""Tests wait for facts, not for time: no bare ``time.sleep``/``asyncio.sleep`` in tests/.

A sleep used to let something happen is a race (too short on a loaded machine) or a waste
(too long everywhere else); one used to prove that something did *not* happen proves
nothing. Tests poll a condition with a deadline (``tests.waiting.wait_until``), await an
event, or prove absence with a barrier. The few sleeps that are the thing under test (a
fake slow server, a fake job's work, a fault's length) are listed below with the reason.
Sleeps inside strings (code run by a child process) are not calls and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.parse_python import parse

TESTS = Path(__file__).resolve().parents[1]

# Whole folders that are not tests: the benchmarks pace load generators on purpose.
ALLOWED_FOLDERS = {
    "bench": "benchmarks and load generators (not collected): sleeps pace the load",
}

# (path under tests/, the call's source text) -> why this sleep is the thing under test.
ALLOWED: dict[tuple[str, str], str] = {
    ("waiting.py", "time.sleep(interval)"):
        "the one polling helper: the pause between two looks at the fact",
    ("waiting.py", "asyncio.sleep(interval)"):
        "the one polling helper (async): yields to the loop between two looks",
    ("localhost/apps/basic/function_app.py", 'asyncio.sleep(body.get("sleep", 0))'):
        "a fake slow Service Bus handler: its slowness is what the host is tested against",
    ("localhost/apps/basic/function_app.py", 'asyncio.sleep(float(req.params.get("s", "0.5")))'):
        "a fake slow HTTP function (/api/slow): in flight while the host stops",
    ("durable/apps/restart_host.py", "time.sleep(0.15)"):
        "a fake slow activity, so the host can be killed in the middle of a step",
    ("durable/test_concurrency.py", "time.sleep(0.02)"):
        "a fake slow activity: overlapping work is what the concurrency cap is measured on",
    ("durable/test_concurrency.py", "asyncio.sleep(0)"):
        "a bare yield inside a watched driver so other drivers can interleave (no waiting)",
    ("faults/test_host_kills.py", "time.sleep(self.pause)"):
        "the submitter's pace between requests, part of the randomised fault plan",
    ("faults/test_host_kills.py", "time.sleep(rng.uniform(0.0, 1.2))"):
        "the random kill point of the fault-injection run (seeded), not a wait for a fact",
    ("localhost/apps/workers/function_app.py", "time.sleep(0.05)"):
        "a function that hangs until the test kills its worker process: the hang is the fault",
}


def _sleeps(path: Path) -> list[tuple[int, str]]:
    """(line, source) of every sleep call in a file: ``time.sleep(...)``,
    ``asyncio.sleep(...)``, a bare ``sleep(...)`` imported from either, or Playwright's
    ``page.wait_for_timeout(...)`` (a sleep by another name)."""
    source = path.read_text()
    tree = parse(source, path)
    imported = {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module in ("time", "asyncio")
                for alias in node.names if alias.name == "sleep"}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_sleep = (isinstance(func, ast.Attribute) and func.attr == "sleep"
                    and isinstance(func.value, ast.Name)
                    and func.value.id in ("time", "asyncio")) or (
            isinstance(func, ast.Name) and func.id in imported) or (
            isinstance(func, ast.Attribute) and func.attr == "wait_for_timeout")
        if is_sleep:
            found.append((node.lineno, ast.get_source_segment(source, node) or ""))
    return sorted(found)


def bare_sleeps() -> list[str]:
    out = []
    for path in sorted(TESTS.rglob("*.py")):
        relative = path.relative_to(TESTS).as_posix()
        if relative.split("/")[0] in ALLOWED_FOLDERS:
            continue
        for line, call in _sleeps(path):
            if (relative, call) not in ALLOWED:
                out.append(f"tests/{relative}:{line}: {call}")
    return out


def test_no_test_sleeps_to_synchronise() -> None:
    found = bare_sleeps()
    assert not found, (
        "sleeps used as synchronisation (poll the fact with tests.waiting.wait_until, await "
        "an event, or prove absence with a barrier; if the sleep is the thing under test, "
        "add it to ALLOWED with the reason):\n" + "\n".join(found))


def test_every_allowed_sleep_still_exists() -> None:
    """An allow-list entry whose sleep is gone is removed too, so the list stays true."""
    present = {(path.relative_to(TESTS).as_posix(), call)
               for path in TESTS.rglob("*.py") for _, call in _sleeps(path)}
    stale = sorted(set(ALLOWED) - present)
    assert not stale, f"allow-list entries with no such sleep any more: {stale}"


def test_the_scan_finds_every_form_of_sleep(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio, time\n"
        "from time import sleep as nap\n"
        "time.sleep(1)\n"
        "async def f():\n"
        "    await asyncio.sleep(0.1)\n"
        "nap(2)\n"
        "code = 'import time; time.sleep(60)'  # a child's code: not a call here\n")
    assert [call for _, call in _sleeps(sample)] == [
        "time.sleep(1)", "asyncio.sleep(0.1)", "nap(2)"]
