"""Exit codes and reasons: failed, cancelled, timed out, bad input, bad key, no API —
each from the real ``cloudops`` process, the reason on the last line, no traceback."""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from tests.cli._agent import TestAgent
from tests.cli.conftest import Cli, assert_clean_failure, last_line, make_project
from tests.conftest import RunningHost


class Lines:
    """Collects a running process's output lines as they come (one reader thread each)."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        try:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass  # closed under us once the test is done with the process

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                match = re.search(pattern, line)
                if match:
                    return match
            try:
                self.lines.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                continue
        raise AssertionError(f"no line matching {pattern!r} in {self.lines}")

    def rest(self) -> list[str]:
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return self.lines


def test_a_failed_task_exits_1_with_its_reason_last(cli: Cli, running_host: RunningHost,
                                                    admin: Any) -> None:
    project = make_project(running_host, admin,
                           {"broken": {"type": "agent", "pool": "nobody", "cluster": "c"}})
    result = cli.run("restart", project, "broken", "--workload", "web", "--wait")
    assert_clean_failure(result, 1, "failed: restart task ")
    task = admin.get(running_host.url(f"/api/tasks?project={project}")).json()["items"][0]
    assert task["status"] == "failed" and task["error"].splitlines()[0] in last_line(
        result.stderr)


def test_cancel_ends_a_followed_task_with_exit_2(cli: Cli, running_host: RunningHost,
                                                 admin: Any) -> None:
    agent = TestAgent(running_host, admin)  # registered, never takes the job: task waits
    project = make_project(running_host, admin, {"k8s": agent.target})
    with cli.popen("restart", project, "k8s", "--workload", "web", "--wait") as follower:
        out = Lines(follower.stdout)
        task_id = out.wait_for(r"following task (\S+)").group(1)
        out.wait_for(r"task waiting for an agent")  # "waiting: waiting …" said once
        cancelled = cli.run("task", "cancel", task_id, "--wait")
        assert cancelled.returncode == 0, cancelled.stderr
        assert last_line(cancelled.stdout).startswith(f"cancelled: restart task {task_id}")
        assert follower.wait(timeout=30) == 2
        assert follower.stderr is not None
        assert last_line(follower.stderr.read()).startswith(f"cancelled: restart task {task_id}")
    # Cancelling again: the task already ended; asking is a usage error, as for any task.
    again = cli.run("task", "cancel", task_id)
    assert_clean_failure(again, 3, "cannot cancel: the task has already ended (cancelled: "
                                   "restart task")


def test_a_timed_out_task_exits_2(cli: Cli, noop_project: str,
                                  running_host: RunningHost) -> None:
    """The orchestration's deadline is an hour; the CLI's mapping is what is under test,
    so the ended task is marked timed out in the database as the orchestration would."""
    task = json.loads(cli.run("deploy", noop_project, "staging", "--version", "9", "--wait",
                              "-o", "json", "--quiet").stdout)
    with psycopg.connect(running_host.database_url) as conn:
        conn.execute("UPDATE tasks SET status = 'timed_out', error = %s WHERE id = %s",
                     ("the deploy job did not finish within 1:00:00", task["id"]))
    result = cli.run("task", "wait", task["id"])
    assert_clean_failure(result, 2, "timed_out: deploy task")
    assert "did not finish within 1:00:00" in last_line(result.stderr)


def test_bad_input_is_exit_3_with_a_one_line_reason(cli: Cli, noop_project: str) -> None:
    cases = [
        (["deploy", noop_project, "nope", "--version", "1"], "HTTP 404"),
        (["deploy", noop_project, "staging"],
         "the following arguments are required: --version"),
        (["deploy", noop_project, "staging", "--version", "1 2"],
         "HTTP 422 Invalid request: version"),
        (["deploy", "no-such-project", "staging", "--version", "1"], "HTTP 404"),
        (["task", "show", str(uuid.uuid4())], "HTTP 404"),
        (["deploy", noop_project, "staging", "--version", "1", "--url", "ftp://x"],
         "--url must start with http"),
    ]
    for args, reason in cases:
        result = cli.run(*args)
        assert_clean_failure(result, 3, reason)


def test_a_bad_key_or_no_role_is_exit_3(cli: Cli, noop_project: str,
                                        running_host: RunningHost, admin: Any) -> None:
    bad_key = cli.run("projects", env=cli.env(CLOUDOPS_KEY="not-the-key"))
    assert_clean_failure(bad_key, 3, "HTTP 401")
    assert "the key is not valid" in last_line(bad_key.stderr)
    no_key = cli.run("projects", env={k: v for k, v in cli.env().items()
                                      if k != "CLOUDOPS_KEY"})
    assert_clean_failure(no_key, 3, "set CLOUDOPS_KEY, or --aad-scope")
    not_granted = make_project(running_host, admin, {"dev": {"type": "noop"}})
    with psycopg.connect(running_host.database_url) as conn:
        conn.execute("DELETE FROM role_assignments WHERE principal_id = 'default' AND "
                     "project_id = (SELECT id FROM projects WHERE slug = %s)", (not_granted,))
    assert_clean_failure(cli.run("deploy", not_granted, "dev", "--version", "1"), 3, "HTTP 40")


def test_cancelling_an_ended_task_is_a_usage_error_exit_3(cli: Cli, noop_project: str) -> None:
    done = json.loads(cli.run("deploy", noop_project, "prod", "--version", "1", "--wait",
                              "--quiet", "-o", "json").stdout)
    assert done["status"] == "succeeded"
    again = cli.run("task", "cancel", done["id"])
    assert_clean_failure(again, 3, "cannot cancel: the task has already ended (succeeded")


def test_a_wrong_url_fails_fast_with_exit_4_and_a_hint(cli: Cli) -> None:
    """No --retry-timeout: an API that never answered is given seconds, not two minutes
    (the subprocess timeout below is what would catch the old 120 s)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli.run("projects", "--url", f"http://127.0.0.1:{port}", timeout=40)
    assert_clean_failure(result, 4, f"could not reach the API at http://127.0.0.1:{port}")
    assert "check --url / CLOUDOPS_URL" in last_line(result.stderr)


def test_an_unreachable_api_is_exit_4_after_retrying(cli: Cli) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli.run("projects", "--url", f"http://127.0.0.1:{port}", "--retry-timeout", "1")
    assert_clean_failure(result, 4, f"could not reach the API at http://127.0.0.1:{port}")
    assert "retrying in" in result.stderr


def test_json_output_is_one_parseable_document_even_when_the_task_fails(
        cli: Cli, running_host: RunningHost, admin: Any) -> None:
    project = make_project(running_host, admin,
                           {"broken": {"type": "agent", "pool": "nobody", "cluster": "c"}})
    result = cli.run("restart", project, "broken", "--workload", "web", "--wait", "-o", "json")
    assert result.returncode == 1
    task = json.loads(result.stdout)
    assert task["status"] == "failed" and task["operation"] == "restart"
    assert last_line(result.stderr).startswith("failed: restart task")


def test_help_shows_examples_for_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (the parser is the same object the console script builds): fifteen
    interpreter start-ups would buy nothing here."""
    from cli.main import main

    for command in (["deploy"], ["backup"], ["restore"], ["restart"], ["sandbox", "create"],
                    ["sandbox", "extend"], ["sandbox", "delete"], ["script", "run"],
                    ["task", "show"], ["task", "wait"], ["task", "logs"], ["task", "cancel"],
                    ["projects"], ["environments"], ["backups", "list"]):
        assert main([*command, "--help"]) == 0, command
        shown = capsys.readouterr().out
        assert "examples:" in shown and f"cloudops {' '.join(command)}" in shown, command
        assert "exit codes: 0 succeeded, 1 failed, 2 cancelled" in shown
