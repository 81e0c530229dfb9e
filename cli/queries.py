"""Read-side and task subcommands: projects, environments, backups list, and
task show|wait|logs|cancel."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from cli.client import ApiError, CliError
from cli.common import (
    Subparsers,
    add_command,
    client_for,
    describe,
    emit_json,
    finish,
    printer_for,
    table,
    wait_options,
)
from cli.follow import LogPrinter, exit_code, follow, stamp
from cli.operations import env_path, target_arguments


def _task_path(task_id: str, tail: str = "") -> str:
    return f"/api/tasks/{quote(task_id, safe='')}{tail}"


def projects(args: argparse.Namespace) -> int:
    items = client_for(args).get_all("/api/projects")
    if args.output == "json":
        emit_json(items)
    else:
        table([[p["slug"], p["name"], p.get("yourRole") or ""] for p in items],
              ["SLUG", "NAME", "ROLE"])
    return 0


def environments(args: argparse.Namespace) -> int:
    items = client_for(args).get_all(
        f"/api/projects/{quote(args.project, safe='')}/environments")
    if args.output == "json":
        emit_json(items)
    else:
        table([[e["slug"], e["name"], e["kind"], (e.get("target") or {}).get("type", ""),
                stamp(e.get("expiresAt"))] for e in items],
              ["SLUG", "NAME", "KIND", "TARGET", "EXPIRES"])
    return 0


def _parameter_summary(param: dict[str, Any]) -> str:
    text = f"{param['name']}:{param.get('type', 'string')}"
    if param.get("enum"):
        text += "=" + "|".join(str(v) for v in param["enum"])
    if not param.get("required", True) or param.get("default") is not None:
        text = f"[{text}]"
    return text


def scripts(args: argparse.Namespace) -> int:
    items = client_for(args).get_all(f"/api/projects/{quote(args.project, safe='')}/scripts")
    if args.output == "json":
        emit_json(items)
    else:
        table([[s["name"], " ".join(_parameter_summary(p) for p in s.get("parameters", [])),
                s.get("description") or ""] for s in items],
              ["NAME", "PARAMETERS", "DESCRIPTION"])
    return 0


def backups_list(args: argparse.Namespace) -> int:
    items = client_for(args).get_all(env_path(args.project, args.environment, "/backups"))
    if args.output == "json":
        emit_json(items)
    else:
        table([[b["id"], stamp(b["createdAt"]), str(b.get("sizeBytes") or ""),
                b.get("taskId") or "", b.get("kind", "backup")]
               for b in items], ["ID", "CREATED", "BYTES", "TASK", "KIND"])
    return 0


def task_show(args: argparse.Namespace) -> int:
    task = client_for(args).get(_task_path(args.task))
    if args.output == "json":
        emit_json(task)
        return 0
    for name in ("id", "operation", "status", "progress", "reason", "error", "requestedBy",
                 "createdAt", "startedAt", "finishedAt"):
        if task.get(name) not in (None, ""):
            value = stamp(task[name]) if name.endswith("At") else task[name]
            print(f"{name + ':':13} {value}")
    for name in ("parameters", "result"):  # JSON, as the API and `-o json` spell it
        if task.get(name):
            print(f"{name + ':':13} {json.dumps(task[name], sort_keys=True)}")
    return 0


def task_wait(args: argparse.Namespace) -> int:
    client = client_for(args)
    return finish(args, client, {"id": args.task}, True, after=args.after)


def task_logs(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.follow:
        return finish(args, client, {"id": args.task}, True, after=args.after)
    lines: list[dict[str, Any]] = []
    after = args.after
    while True:  # page through everything written so far
        page = client.get(_task_path(args.task, "/logs"), {"after": after, "limit": 1000})
        lines.extend(page["items"])
        if len(page["items"]) < 1000:
            break
        after = page["last"]
    if args.output == "json":
        emit_json(lines)
    else:
        printer = printer_for(args) or LogPrinter(sys.stdout)
        printer.tty = False
        for line in lines:
            printer.line(line)
    return 0


def task_cancel(args: argparse.Namespace) -> int:
    client = client_for(args)
    try:
        task, _ = client.post(_task_path(args.task, "/cancel"))
    except ApiError as exc:
        if exc.status != 409:
            raise
        # Already ended (or a retried cancel that landed): report what it ended as. Asking
        # to stop what has stopped is a usage error (3), whatever the task's outcome was.
        task = client.get(_task_path(args.task))
        if args.output == "json":
            emit_json(task)
        raise CliError(f"cannot cancel: the task has already ended ({describe(task)})"
                       ) from None
    if not args.wait:
        return finish(args, client, task, False)
    task = follow(client, args.task, None, poll=args.poll)
    if args.output == "json":
        emit_json(task)
    code = exit_code(str(task["status"]))
    # Cancelling and ending cancelled is what was asked for: that is a success here.
    print(describe(task), file=sys.stdout if args.output == "text" else sys.stderr)
    return 0 if task["status"] == "cancelled" else code


def add_parser(subparsers: Subparsers) -> None:
    add_command(subparsers, "projects", projects, help="list the projects you can read",
                description="List the projects you can read, with your role on each.",
                examples="  cloudops projects\n  cloudops projects -o json | jq -r '.[].slug'")
    p = add_command(subparsers, "environments", environments,
                    help="list a project's environments",
                    description="List PROJECT's environments (sandboxes with their expiry).",
                    examples="  cloudops environments shop")
    p.add_argument("project", help="project slug")

    p = add_command(subparsers, "scripts", scripts,
                    help="list a project's catalogue scripts",
                    description="List PROJECT's catalogue scripts with their parameters "
                                "(name:type; [optional]; enum values after =), as "
                                "`cloudops script run` takes them.",
                    examples="  cloudops scripts shop\n"
                             "  cloudops scripts shop -o json | jq -r '.[].name'")
    p.add_argument("project", help="project slug")

    backups = subparsers.add_parser("backups", help="list an environment's backups",
                                    description="Backups of an environment's database.")
    actions = backups.add_subparsers(dest="backups_command", metavar="ACTION", required=True)
    p = add_command(actions, "list", backups_list, help="list backups, newest first",
                    description="List PROJECT/ENVIRONMENT's backups.",
                    examples="  cloudops backups list shop prod -o json")
    target_arguments(p)

    task = subparsers.add_parser("task", help="show, follow, read or cancel a task",
                                 description="Tasks started by operations.")
    actions = task.add_subparsers(dest="task_command", metavar="ACTION", required=True)
    p = add_command(actions, "show", task_show, help="show a task",
                    description="Show task TASK.", examples="  cloudops task show 3f2c...")
    p.add_argument("task", help="task id")
    p = add_command(actions, "wait", task_wait, parents=(wait_options(),),
                    help="follow a task to its end and exit with its outcome",
                    description="Follow TASK's live log until it ends; the exit code is its "
                                "outcome (0 succeeded, 1 failed, 2 cancelled/timed out).",
                    examples="  cloudops task wait 3f2c...\n"
                             "  cloudops task wait 3f2c... --quiet -o json")
    p.add_argument("task", help="task id")
    p.add_argument("--after", type=int, default=0, help="start after this log line number")
    p = add_command(actions, "logs", task_logs, parents=(wait_options(),),
                    help="print a task's log",
                    description="Print TASK's log so far, or follow it with --follow.",
                    examples="  cloudops task logs 3f2c...\n"
                             "  cloudops task logs 3f2c... --after 120 --follow")
    p.add_argument("task", help="task id")
    p.add_argument("--after", type=int, default=0, help="start after this log line number")
    p.add_argument("--follow", "-f", action="store_true", help="keep following until it ends")
    p = add_command(actions, "cancel", task_cancel, parents=(wait_options(),),
                    help="cancel a task",
                    description="Ask TASK to stop. With --wait, follow it until it has "
                                "stopped (exit 0 once cancelled).",
                    examples="  cloudops task cancel 3f2c... --wait")
    p.add_argument("task", help="task id")
