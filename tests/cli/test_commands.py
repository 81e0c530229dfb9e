"""Every subcommand, run as the real ``cloudops`` process against our app on the local
host, on dry-run (noop) environments that succeed at once."""

from __future__ import annotations

import json
from typing import Any

from tests.cli._agent import TestAgent
from tests.cli.conftest import Cli, assert_clean_failure, last_line, make_project
from tests.conftest import RunningHost


def test_projects_and_environments_list_as_text_and_json(cli: Cli, noop_project: str) -> None:
    text = cli.run("projects")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split() == ["SLUG", "NAME", "ROLE"]
    assert any(line.split()[:1] == [noop_project] and "operator" in line
               for line in text.stdout.splitlines())
    listed = json.loads(cli.run("projects", "-o", "json").stdout)
    assert noop_project in {p["slug"] for p in listed}
    envs = cli.run("environments", noop_project)
    assert envs.returncode == 0 and "staging" in envs.stdout and "prod" in envs.stdout
    as_json = json.loads(cli.run("environments", noop_project, "--output", "json").stdout)
    assert {e["slug"]: e["target"]["type"] for e in as_json} == {"staging": "noop",
                                                                 "prod": "noop"}


def test_deploy_wait_streams_timestamped_log_and_exits_0(cli: Cli, noop_project: str) -> None:
    result = cli.run("deploy", noop_project, "staging", "--version", "1.4.2", "--wait")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    log = [line for line in lines if " INFO " in line]
    assert any("dry run: would deploy 1.4.2 to staging" in line for line in log)
    # CI mode: every log line starts with the server's ISO timestamp, no progress bar.
    assert all(line[:4].isdigit() and line[10] == "T" for line in log)
    assert "\r" not in result.stdout and "\033[" not in result.stdout
    assert last_line(result.stdout).startswith("succeeded: deploy task ")


def test_submit_without_wait_then_task_wait_show_and_logs(cli: Cli, noop_project: str) -> None:
    submitted = cli.run("deploy", noop_project, "prod", "--version", "2.0.0", "-o", "json")
    assert submitted.returncode == 0, submitted.stderr
    task = json.loads(submitted.stdout)  # stdout is exactly one JSON document
    assert task["operation"] == "deploy" and task["parameters"] == {"version": "2.0.0"}
    waited = cli.run("task", "wait", task["id"], "--quiet", "-o", "json")
    assert waited.returncode == 0, waited.stderr
    final = json.loads(waited.stdout)
    assert final["id"] == task["id"] and final["status"] == "succeeded"
    shown = cli.run("task", "show", task["id"])
    assert shown.returncode == 0 and "status:       succeeded" in shown.stdout
    logs = cli.run("task", "logs", task["id"], "-o", "json")
    items = json.loads(logs.stdout)
    assert [i["seq"] for i in items] == list(range(1, len(items) + 1))
    assert items[-1]["text"].startswith("succeeded")
    later = json.loads(cli.run("task", "logs", task["id"], "--after", "1", "-o", "json").stdout)
    assert later == items[1:]
    followed = cli.run("task", "logs", task["id"], "--follow")
    assert followed.returncode == 0 and "would deploy 2.0.0" in followed.stdout


def test_backup_then_list_then_restore_latest(cli: Cli, served_project: str) -> None:
    backed = cli.run("backup", served_project, "db", "--wait", "-o", "json")
    assert backed.returncode == 0, backed.stderr
    assert "agent: backup started" in backed.stderr  # JSON mode: the log goes to stderr
    backup_id = json.loads(backed.stdout)["result"]["backup"]["id"]
    listed = json.loads(cli.run("backups", "list", served_project, "db", "-o", "json").stdout)
    assert [b["id"] for b in listed] == [backup_id]
    assert backup_id in cli.run("backups", "list", served_project, "db").stdout
    restored = cli.run("restore", served_project, "db", "--backup-id", "latest", "--wait",
                       "-o", "json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["parameters"]["backupId"] == backup_id


def test_restore_latest_without_backups_is_a_usage_error(cli: Cli, noop_project: str) -> None:
    empty = cli.run("restore", noop_project, "prod", "--backup-id", "latest")
    assert_clean_failure(empty, 3, f"{noop_project}/prod has no backups to restore")


def test_restart_and_script_run_with_typed_parameters(cli: Cli, noop_project: str,
                                                      running_host: RunningHost,
                                                      admin: Any) -> None:
    restarted = cli.run("restart", noop_project, "prod", "--workload", "web", "--wait")
    assert restarted.returncode == 0, restarted.stderr
    stateful = cli.run("restart", noop_project, "prod", "--workload", "db", "--kind",
                       "statefulset", "--wait", "-o", "json")
    assert stateful.returncode == 0, stateful.stderr
    assert json.loads(stateful.stdout)["parameters"] == {"workload": "db",
                                                          "kind": "statefulset"}
    script = {"name": "reindex", "argv": ["reindex", "--index", "{index}", "--batch",
                                          "{batch}", "--full={full}"],
              "parameters": [{"name": "index"}, {"name": "batch", "type": "integer"},
                             {"name": "full", "type": "boolean"}]}
    r = admin.post(running_host.url(f"/api/projects/{noop_project}/scripts"), json=script)
    assert r.status_code == 201, r.text
    ran = cli.run("script", "run", noop_project, "prod", "reindex", "--param", "index=orders",
                  "--param", "batch=500", "--param", "full=true", "--wait")
    assert ran.returncode == 0, ran.stderr
    assert "would run reindex --index orders --batch 500 --full=true" in ran.stdout
    wrong = cli.run("script", "run", noop_project, "prod", "reindex", "--param", "batch=many")
    assert_clean_failure(wrong, 3, "--param batch must be an integer, not 'many'")
    missing = cli.run("script", "run", noop_project, "prod", "nope")
    assert_clean_failure(missing, 3, "has no script nope (scripts: reindex)")
    listed = cli.run("scripts", noop_project)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["NAME", "PARAMETERS", "DESCRIPTION"]
    assert listed.stdout.splitlines()[1].split() == [
        "reindex", "index:string", "batch:integer", "full:boolean"]
    as_json = json.loads(cli.run("scripts", noop_project, "-o", "json").stdout)
    assert [s["name"] for s in as_json] == ["reindex"]


def test_task_show_prints_parameters_and_result_as_json(cli: Cli, noop_project: str) -> None:
    task = json.loads(cli.run("deploy", noop_project, "prod", "--version", "2.1", "--wait",
                              "--quiet", "-o", "json").stdout)
    shown = cli.run("task", "show", task["id"])
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(":", 1) for line in shown.stdout.splitlines())
    assert json.loads(fields["parameters"]) == {"version": "2.1"}
    assert json.loads(fields["result"]) == task["result"]


def test_version_prints_the_installed_version() -> None:
    import subprocess
    from importlib.metadata import version

    from tests.cli.conftest import CLOUDOPS

    shown = subprocess.run([CLOUDOPS, "--version"], capture_output=True, text=True,
                           timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"cloudops {version('cloudops-control-plane')}"


def test_deploy_passes_the_package_or_image_to_ship(cli: Cli, noop_project: str) -> None:
    shipped = cli.run("deploy", noop_project, "prod", "--version", "2.0.0", "--image",
                      "acr.example/shop:2.0.0", "--wait", "-o", "json")
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout)["parameters"] == {"version": "2.0.0",
                                                         "image": "acr.example/shop:2.0.0"}
    both = cli.run("deploy", noop_project, "prod", "--version", "2.0.1", "--image", "a/b:1",
                   "--package-url", "https://pkgs.example/b.zip")
    assert_clean_failure(both, 3, "not both")


def test_sandbox_create_and_lifetime_commands(cli: Cli, noop_project: str) -> None:
    created = cli.run("sandbox", "create", noop_project, "staging", "--name", "pr-42",
                      "--ttl-hours", "4", "--wait")
    assert created.returncode == 0, created.stderr
    envs = json.loads(cli.run("environments", noop_project, "-o", "json").stdout)
    sandbox = next(e for e in envs if e["slug"] == "pr-42")
    assert sandbox["kind"] == "sandbox" and sandbox["expiresAt"]
    extended = cli.run("sandbox", "extend", noop_project, "pr-42", "--hours", "2", "-o", "json")
    assert extended.returncode == 0, extended.stderr
    assert json.loads(extended.stdout)["expiresAt"] > sandbox["expiresAt"]
    assert "now expires at" in cli.run("sandbox", "extend", noop_project, "pr-42",
                                       "--hours", "1").stdout
    not_a_sandbox = cli.run("sandbox", "extend", noop_project, "staging", "--hours", "2")
    assert_clean_failure(not_a_sandbox, 3, "HTTP 4")
    deleted = cli.run("sandbox", "delete", noop_project, "pr-42", "--wait")
    assert deleted.returncode == 0, deleted.stderr
    envs = json.loads(cli.run("environments", noop_project, "-o", "json").stdout)
    assert "pr-42" not in {e["slug"] for e in envs}
    not_a_sandbox = cli.run("sandbox", "delete", noop_project, "staging")
    assert_clean_failure(not_a_sandbox, 3, "not a sandbox")


def test_sandbox_create_seeds_from_the_backup_named_by_backup_id(
        cli: Cli, running_host: RunningHost, admin: Any) -> None:
    agent = TestAgent(running_host, admin).serve()
    try:
        env = {"target": agent.target, "database": {"connection": "main"}}
        project = make_project(running_host, admin, {"prod": env, "staging": env})
        backed = cli.run("backup", project, "prod", "--wait", "-o", "json")
        assert backed.returncode == 0, backed.stderr
        backup_id = json.loads(backed.stdout)["result"]["backup"]["id"]
        created = cli.run("sandbox", "create", project, "prod", "--name", "pr-7",
                          "--backup-id", backup_id, "--wait", "-o", "json")
        assert created.returncode == 0, created.stderr
        task = json.loads(created.stdout)
        assert task["status"] == "succeeded", task
        assert task["parameters"]["backupId"] == backup_id
        assert task["result"]["seedBackupId"] == backup_id
        elsewhere = cli.run("sandbox", "create", project, "staging", "--name", "pr-8",
                            "--backup-id", backup_id)
        assert_clean_failure(elsewhere, 3, "not a backup of staging")
    finally:
        agent.stop()


def test_refresh_from_another_environment_restores_its_latest_backup(
        cli: Cli, running_host: RunningHost, admin: Any) -> None:
    agent = TestAgent(running_host, admin).serve()
    try:
        env = {"target": agent.target, "database": {"connection": "main"}}
        project = make_project(running_host, admin, {"prod": env, "staging": env})
        backed = cli.run("backup", project, "prod", "--wait", "-o", "json")
        assert backed.returncode == 0, backed.stderr
        backup_id = json.loads(backed.stdout)["result"]["backup"]["id"]
        refreshed = cli.run("refresh", project, "staging", "--from", "prod", "--wait",
                            "-o", "json")
        assert refreshed.returncode == 0, refreshed.stderr
        task = json.loads(refreshed.stdout)
        assert task["operation"] == "refresh" and task["status"] == "succeeded"
        assert task["parameters"] == {"sourceEnvironment": "prod", "backupId": backup_id,
                                      "maskParameters": {}}
        assert task["reason"] == f"refreshed staging from prod backup {backup_id[:8]}"
        usage = cli.run("refresh", project, "staging", "--from", "prod", "--mask-param", "a=b")
        assert_clean_failure(usage, 3, "--mask-param needs --mask-script")
        gone = cli.run("refresh", project, "staging", "--from", "nowhere")
        assert gone.returncode != 0 and "nowhere" in gone.stderr
    finally:
        agent.stop()
