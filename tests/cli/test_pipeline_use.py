"""How pipelines use the CLI: a retried step replays its task instead of running it
twice, a dropped connection mid-task loses and repeats no log line, and a terminal gets a
progress bar instead of CI's plain lines."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import uuid
from typing import Any

from tests.cli._agent import TestAgent
from tests.cli.conftest import CLOUDOPS, ROOT, Cli, assert_clean_failure, make_project
from tests.cli.test_outcomes import Lines
from tests.conftest import RunningHost
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until

AZURE_DEVOPS = {"TF_BUILD": "True", "SYSTEM_TEAMPROJECTID": "7d6a5c1e-0000-4000-8000-000000000001",
                "BUILD_BUILDID": "4711", "SYSTEM_JOBATTEMPT": "1", "SYSTEM_STAGENAME": "staging",
                "SYSTEM_JOBNAME": "deploy", "SYSTEM_TASKINSTANCEID": "step-a"}


def _tasks(host: RunningHost, admin: Any, project: str) -> list[dict[str, Any]]:
    return admin.get(host.url(f"/api/tasks?project={project}")).json()["items"]


def test_a_retried_azure_devops_step_replays_its_task(cli: Cli, noop_project: str,
                                                     running_host: RunningHost,
                                                     admin: Any) -> None:
    def deploy(**env: str) -> tuple[dict[str, Any], str]:
        result = cli.run("deploy", noop_project, "staging", "--version", "3.1", "--wait",
                         "--quiet", "-o", "json", env=cli.env(**{**AZURE_DEVOPS, **env}))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout), result.stderr

    first, _ = deploy()
    again, stderr = deploy()  # the same step retried in the same job attempt
    assert again["id"] == first["id"] and again["status"] == "succeeded"
    assert "replayed: task " + first["id"] in stderr
    assert len(_tasks(running_host, admin, noop_project)) == 1  # it ran once
    other_step, _ = deploy(SYSTEM_TASKINSTANCEID="step-b")
    rerun_job, _ = deploy(SYSTEM_JOBATTEMPT="2")  # re-running a failed job runs again
    assert len({first["id"], other_step["id"], rerun_job["id"]}) == 3
    assert len(_tasks(running_host, admin, noop_project)) == 3


def test_github_actions_run_and_explicit_keys_replay_too(cli: Cli, noop_project: str,
                                                         running_host: RunningHost,
                                                         admin: Any) -> None:
    github = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "1",
              "GITHUB_REPOSITORY": "acme/shop", "GITHUB_JOB": "prod", "GITHUB_ACTION": "deploy"}
    ids = {json.loads(cli.run("backup", noop_project, "prod", "-o", "json",
                              env=cli.env(**github)).stdout)["id"] for _ in range(2)}
    key = f"release-{uuid.uuid4().hex[:8]}"
    explicit = {json.loads(cli.run("deploy", noop_project, "prod", "--version", "1", "-o",
                                   "json", "--idempotency-key", key).stdout)["id"]
                for _ in range(2)}
    assert len(ids) == 1 and len(explicit) == 1
    assert len(_tasks(running_host, admin, noop_project)) == 2


def test_a_key_reused_for_a_different_operation_exits_3_naming_the_key(
        cli: Cli, noop_project: str, running_host: RunningHost, admin: Any) -> None:
    key = f"release-{uuid.uuid4().hex[:8]}"
    deployed = cli.run("deploy", noop_project, "staging", "--version", "14.0.1",
                       "--idempotency-key", key)
    assert deployed.returncode == 0, deployed.stderr
    backup = cli.run("backup", noop_project, "staging", "--idempotency-key", key)
    assert_clean_failure(backup, 3, f"Idempotency-Key {key!r} was already used")
    assert "replayed" not in backup.stderr and "new --idempotency-key" in backup.stderr
    assert len(_tasks(running_host, admin, noop_project)) == 1


def test_the_log_survives_a_dropped_connection_without_gaps_or_repeats(
        cli: Cli, running_host: RunningHost, admin: Any) -> None:
    agent = TestAgent(running_host, admin)
    project = make_project(running_host, admin, {"k8s": agent.target})
    host, port = running_host.base_url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    try:
        with cli.popen("restart", project, "k8s", "--workload", "web", "--wait",
                       "--poll", "0.1", env=cli.env(CLOUDOPS_URL=proxy.url)) as follower:
            out, err = Lines(follower.stdout), Lines(follower.stderr)
            job = agent.next_job()
            assert job is not None
            agent.logs(job["id"], [f"step {i:03d}" for i in range(1, 21)], 30)
            out.wait_for("step 020")
            proxy.cut()  # every connection closed, new ones refused
            agent.logs(job["id"], [f"step {i:03d}" for i in range(21, 41)], 60)
            # a few refused retries while the task goes on
            wait_until(lambda: sum("retrying in" in line for line in err.rest()) >= 3,
                       "three refused retries")
            proxy.restore()  # the CLI's next retry gets through
            agent.logs(job["id"], [f"step {i:03d}" for i in range(41, 61)], 90)
            agent.result(job["id"], "succeeded")
            assert follower.wait(timeout=30) == 0, err.rest()
            steps = [line.split("INFO")[-1].strip() for line in out.rest() if "step " in line]
    finally:
        proxy.close()
    assert steps == [f"step {i:03d}" for i in range(1, 61)]
    assert out.lines[-1].startswith("succeeded: restart task")


def test_a_terminal_gets_a_progress_bar_and_the_outcome(cli: Cli, noop_project: str) -> None:
    controller, terminal = pty.openpty()
    env = {k: v for k, v in cli.env().items() if k != "CI"}
    try:
        proc = subprocess.run([CLOUDOPS, "deploy", noop_project, "staging", "--version", "7",
                               "--wait"], stdout=terminal, stderr=terminal, env=env, cwd=ROOT,
                              timeout=30)
        screen = b""
        while True:
            os.set_blocking(controller, False)
            try:
                chunk = os.read(controller, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(controller)
        os.close(terminal)
    text = screen.decode()
    assert proc.returncode == 0, text
    assert "\r\x1b[K[" in text and "100% succeeded" in text  # the bar, redrawn in place
    assert "would deploy 7" in text and "succeeded: deploy task" in text
