"""The script handler runs argv directly: metacharacters stay literal, a timeout kills
the whole process tree, a non-zero exit fails with the tail of the output."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.handlers import JobCancelled, JobContext, JobFailed
from agent.handlers.script import run_script
from tests.waiting import wait_until

PYTHON_ONLY = [sys.executable, "/no/such/program"]


def _ctx(tmp_path: Path, allowed: list[str] | None = PYTHON_ONLY
         ) -> tuple[JobContext, list[str]]:
    lines: list[str] = []
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      work_dir=str(tmp_path), allowed_executables=allowed)
    return JobContext(job_id="job1", kind="script", config=cfg, log=lines.append,
                      progress=lambda _n: None), lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_shell_metacharacters_in_parameters_are_passed_literally(tmp_path: Path) -> None:
    ctx, lines = _ctx(tmp_path)
    marker = tmp_path / "pwned"
    nasty = [f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", "a && b | c > d",
             "*", "'quoted' \"double\"", "$HOME"]
    code = "import sys, json; print(json.dumps(sys.argv[1:]))"
    result = run_script({"script": "echo", "argv": [sys.executable, "-c", code, *nasty],
                         "timeoutSeconds": 30, "env": {}}, ctx)
    assert result == {"exitCode": 0}
    import json

    assert json.loads(lines[-1]) == nasty
    assert not marker.exists()


def test_environment_is_explicit(tmp_path: Path) -> None:
    ctx, lines = _ctx(tmp_path)
    os.environ["CLOUDOPS_SECRET_OF_THE_AGENT"] = "leak"
    try:
        code = "import os; print(os.environ.get('GREETING'), os.environ.get(" \
               "'CLOUDOPS_SECRET_OF_THE_AGENT'))"
        run_script({"argv": [sys.executable, "-c", code], "env": {"GREETING": "hi"}}, ctx)
    finally:
        del os.environ["CLOUDOPS_SECRET_OF_THE_AGENT"]
    assert lines[-1] == "hi None"


def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    ctx, _lines = _ctx(tmp_path)
    pids = tmp_path / "pids"
    # the script starts a grandchild that would outlive a naive kill of the child
    code = ("import subprocess, sys, time, os\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{p.pid}}')\n"
            "time.sleep(60)\n")
    started = time.monotonic()
    with pytest.raises(JobFailed, match="timed out after 1 s"):
        run_script({"argv": [sys.executable, "-c", code], "timeoutSeconds": 1}, ctx)
    assert time.monotonic() - started < 30
    child, grandchild = (int(p) for p in pids.read_text().split())
    wait_until(lambda: not _alive(child) and not _alive(grandchild),
               "the child and grandchild to be gone", timeout=10)


def test_non_zero_exit_fails_with_the_tail_of_the_output(tmp_path: Path) -> None:
    ctx, _lines = _ctx(tmp_path)
    code = "import sys\nfor i in range(100): print(f'line {i}')\nsys.exit(3)"
    with pytest.raises(JobFailed) as err:
        run_script({"script": "migrate", "argv": [sys.executable, "-c", code]}, ctx)
    message = str(err.value)
    assert message.startswith("migrate exited with code 3; last lines:")
    assert "line 99" in message and "line 80" in message and "line 79" not in message


def test_cancel_stops_the_script(tmp_path: Path) -> None:
    ctx, _lines = _ctx(tmp_path)
    threading.Timer(0.3, ctx.cancel.set).start()
    with pytest.raises(JobCancelled):
        run_script({"argv": [sys.executable, "-c", "import time; time.sleep(60)"]}, ctx)


def test_allow_list_and_bad_payloads_fail_cleanly(tmp_path: Path) -> None:
    ctx, _lines = _ctx(tmp_path, allowed=["/bin/true"])
    with pytest.raises(JobFailed, match="not in this agent's allowedExecutables"):
        run_script({"argv": [sys.executable, "-c", "pass"]}, ctx)
    assert run_script({"argv": ["/bin/true"]}, ctx) == {"exitCode": 0}
    bad: list[dict[str, Any]] = [{}, {"argv": []}, {"argv": [1]}, {"argv": ["true"],
                                                                   "timeoutSeconds": -1},
                                 {"argv": ["true"], "env": {"A": 1}}]
    open_ctx, _ = _ctx(tmp_path)
    for payload in bad:
        with pytest.raises(JobFailed):
            run_script(payload, open_ctx)
    with pytest.raises(JobFailed, match="not found"):
        run_script({"argv": ["/no/such/program"]}, open_ctx)


def test_an_agent_without_an_allowed_executables_list_runs_no_script(tmp_path: Path) -> None:
    ctx, lines = _ctx(tmp_path, allowed=None)
    marker = tmp_path / "ran"
    with pytest.raises(JobFailed, match=r"runs no scripts .*no allowedExecutables list"):
        run_script({"argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]}, ctx)
    assert not marker.exists()
    assert lines == []
    assert not (tmp_path / "jobs").exists()


def _writes_outputs(text: str) -> list[str]:
    code = ("import os; open(os.environ['CLOUDOPS_OUTPUT'], 'a').write(" + repr(text) + ")")
    return [sys.executable, "-c", code]


def test_outputs_a_script_appends_to_cloudops_output_come_back_in_the_result(
        tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    result = run_script({"script": "deploy", "timeoutSeconds": 30, "argv": _writes_outputs(
        "url=http://127.0.0.1:8123\nversion=1.0\n\nversion=1.1\n")}, ctx)
    assert result == {"exitCode": 0, "outputs": {"url": "http://127.0.0.1:8123",
                                                 "version": "1.1"}}


def test_a_script_without_outputs_returns_only_its_exit_code(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    assert run_script({"script": "x", "argv": [sys.executable, "-c", "pass"]}, ctx) == {
        "exitCode": 0}


@pytest.mark.parametrize("bad", ["no equals sign\n", "1name=x\n", "ok=" + "x" * 2001 + "\n",
                                 "".join(f"n{i}=v\n" for i in range(21))])
def test_malformed_outputs_fail_the_job_instead_of_vanishing(tmp_path: Path, bad: str) -> None:
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(JobFailed, match=r"CLOUDOPS_OUTPUT|outputs"):
        run_script({"script": "x", "argv": _writes_outputs(bad)}, ctx)


def test_outputs_of_an_earlier_run_of_the_same_job_are_not_reported(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path)
    run_script({"script": "x", "argv": _writes_outputs("url=http://old\n")}, ctx)
    assert run_script({"script": "x", "argv": [sys.executable, "-c", "pass"]}, ctx) == {
        "exitCode": 0}


def test_the_scripts_own_progress_lines_move_the_progress(tmp_path: Path) -> None:
    reported: list[int] = []
    cfg = AgentConfig(url="http://x", agent_id="a", name="a", pool="p", key="k",
                      work_dir=str(tmp_path), allowed_executables=[sys.executable])
    ctx = JobContext(job_id="job1", kind="script", config=cfg, log=lambda _line: None,
                     progress=reported.append)
    code = ("print('[1/4] fetching'); print('::progress 40'); print('[3/4] migrating');"
            "print('[9/4] not a step'); print('about [2/4] mid-line'); print('::progress 100')")
    run_script({"argv": [sys.executable, "-c", code], "timeoutSeconds": 30}, ctx)
    assert reported == [25, 40, 75, 100]


@pytest.mark.parametrize(("line", "expected"), [
    ("::progress 7", 7), ("::progress 55%", 55), ("::progress 250", 100),
    ("[2/8] step", 25), ("  [5/5]", 100), ("[0/3] starting", 0),
    ("progress 40", None), ("[3/0] x", None), ("see [1/2]", None), ("::progress x", None),
])
def test_progress_line_forms(line: str, expected: int | None) -> None:
    from agent.handlers.script import script_progress

    assert script_progress(line) == expected
