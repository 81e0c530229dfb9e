"""Operation subcommands: deploy, backup, restore, restart, sandbox, script run.

Each POSTs to ``/api/projects/{p}/environments/{e}/...`` with an ``Idempotency-Key``
(``--idempotency-key``, else derived from the pipeline run, see ``cli.ci``), prints the
task, and with ``--wait`` follows it and exits with its outcome.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any
from urllib.parse import quote

from cli import ci
from cli.client import ApiClient, ApiError, CliError
from cli.common import (
    Subparsers,
    add_command,
    client_for,
    emit_json,
    finish,
    not_supported,
    wait_options,
)
from cli.follow import stamp

# Sandbox lifetime routes. Extend answers the environment; delete (tear down now) has no
# route yet — expiry tears sandboxes down by timer — so a server without it answers 404.
SANDBOX_EXTEND = "/api/projects/{project}/environments/{sandbox}/extend"
SANDBOX_DELETE = "/api/projects/{project}/environments/{sandbox}/teardown"


def env_path(project: str, env: str, tail: str = "") -> str:
    return f"/api/projects/{quote(project, safe='')}/environments/{quote(env, safe='')}{tail}"


def idempotency_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--idempotency-key", default=None, metavar="KEY",
        help="replaying a key answers with the task it started instead of running again "
             "(default in Azure DevOps / GitHub Actions: the run, attempt and step)")
    return parent


def target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="project slug")
    parser.add_argument("environment", help="environment slug")


def submit(args: argparse.Namespace, operation: str, path: str, body: dict[str, Any],
           client: ApiClient | None = None) -> int:
    """POST one operation with its idempotency key; print or follow the task."""
    client = client or client_for(args)
    key = args.idempotency_key
    if key is None:
        key, from_pipeline = ci.default_idempotency_key(os.environ, operation, path, body)
        if from_pipeline and args.output == "text":
            print(f"idempotency key {key}", file=sys.stderr)
    elif not (1 <= len(key) <= 200 and key.isprintable()):
        raise CliError("--idempotency-key must be 1-200 printable characters")
    try:
        task, headers = client.post(path, body, {"Idempotency-Key": key})
    except ApiError as exc:
        if exc.problem.get("field") != "Idempotency-Key":
            raise
        # Never mistake another request's task for this one: say so, and how to proceed.
        raise CliError(f"{exc.problem.get('detail') or exc.reason} (pass a new "
                       "--idempotency-key for a new request)") from None
    if headers.get("Idempotent-Replayed", "").lower() == "true":
        print(f"replayed: task {task['id']} was already started with this idempotency key; "
              "not running it again", file=sys.stderr, flush=True)
    return finish(args, client, task, args.wait)


# --- handlers ------------------------------------------------------------------------

def _body(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """A request body: the required fields, and each optional one the user gave."""
    return {**required, **{name: value for name, value in optional.items() if value}}


def deploy(args: argparse.Namespace) -> int:
    body = _body({"version": args.version}, image=args.image, packageUrl=args.package_url)
    return submit(args, "deploy", env_path(args.project, args.environment, "/deployments"),
                  body)


def backup(args: argparse.Namespace) -> int:
    return submit(args, "backup", env_path(args.project, args.environment, "/backups"), {})


def restore(args: argparse.Namespace) -> int:
    client = client_for(args)
    backup_id = args.backup_id
    if backup_id == "latest":
        items = [b for b in client.get_all(env_path(args.project, args.environment,
                                                    "/backups"))
                 if b.get("kind", "backup") == "backup"]  # never a restore's safety copy
        if not items:
            raise CliError(f"{args.project}/{args.environment} has no backups to restore")
        backup_id = max(items, key=lambda b: b["createdAt"])["id"]
    return submit(args, "restore", env_path(args.project, args.environment, "/restores"),
                  {"backupId": backup_id}, client)


def refresh(args: argparse.Namespace) -> int:
    """Restore ENVIRONMENT from a backup of --from (its latest unless --backup-id)."""
    client = client_for(args)
    body = _body({"sourceEnvironment": args.source}, backupId=args.backup_id)
    if args.mask_params and not args.mask_script:
        raise CliError("--mask-param needs --mask-script")
    if args.mask_script:
        body["maskScript"] = args.mask_script
        raw = dict(_pair(p) for p in args.mask_params)
        types: dict[str, str] = {}
        if raw:
            catalogue = client.get_all(f"/api/projects/{quote(args.project, safe='')}/scripts")
            script: dict[str, Any] = next(
                (s for s in catalogue if s.get("name") == args.mask_script), {})
            types = {p["name"]: p.get("type", "string") for p in script.get("parameters", [])}
        body["maskParameters"] = {name: _typed(name, value, types.get(name, "string"))
                                  for name, value in raw.items()}
    return submit(args, "refresh", env_path(args.project, args.environment, "/refreshes"),
                  body, client)


def restart(args: argparse.Namespace) -> int:
    body = _body({"workload": args.workload}, namespace=args.namespace, kind=args.kind)
    return submit(args, "restart", env_path(args.project, args.environment, "/restarts"),
                  body)


def sandbox_create(args: argparse.Namespace) -> int:
    body = _body({"name": args.name, "ttlHours": args.ttl_hours}, backupId=args.backup_id)
    return submit(args, "sandbox_create",
                  env_path(args.project, args.environment, "/sandboxes"), body)


def _sandbox_call(args: argparse.Namespace, route: str, body: dict[str, Any] | None,
                  what: str) -> int:
    client = client_for(args)
    path = route.format(project=quote(args.project, safe=""),
                        sandbox=quote(args.sandbox, safe=""))
    key = args.idempotency_key or ci.default_idempotency_key(os.environ, what, path, body)[0]
    try:
        # Extending twice is not the same as once: never resend after a lost connection.
        result, _ = client.post(path, body or {}, {"Idempotency-Key": key},
                                idempotent=what != "extend")
    except ApiError as exc:
        raise not_supported(exc, f"sandbox {what}") from None
    if isinstance(result, dict) and "status" in result and "operation" in result:
        return finish(args, client, result, args.wait)  # the server queued a task
    if args.output == "json":
        emit_json(result)
    elif isinstance(result, dict) and result.get("expiresAt"):
        print(f"sandbox {args.sandbox} now expires at {stamp(result['expiresAt'])}")
    else:
        print(f"sandbox {args.sandbox}: {what} done")
    return 0


def sandbox_extend(args: argparse.Namespace) -> int:
    return _sandbox_call(args, SANDBOX_EXTEND, {"hours": args.hours}, "extend")


def sandbox_delete(args: argparse.Namespace) -> int:
    return _sandbox_call(args, SANDBOX_DELETE, None, "delete")


def script_run(args: argparse.Namespace) -> int:
    client = client_for(args)
    raw = dict(_pair(p) for p in args.param)
    catalogue = client.get_all(f"/api/projects/{quote(args.project, safe='')}/scripts")
    script = next((s for s in catalogue if s.get("name") == args.script), None)
    if script is None:
        names = ", ".join(sorted(s["name"] for s in catalogue)) or "none"
        raise CliError(f"project {args.project} has no script {args.script} "
                       f"(scripts: {names})")
    types = {p["name"]: p.get("type", "string") for p in script.get("parameters", [])}
    parameters = {name: _typed(name, value, types.get(name, "string"))
                  for name, value in raw.items()}
    return submit(args, "script_run", env_path(
        args.project, args.environment, f"/scripts/{quote(args.script, safe='')}/runs"),
        {"parameters": parameters}, client)


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CliError(f"--param takes NAME=VALUE, not {text!r}")
    return name, value


def _typed(name: str, value: str, kind: str) -> Any:
    """The catalogue says each parameter's JSON type; the command line only has text."""
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        article = "an" if kind[0] in "aeiou" else "a"
        raise CliError(f"--param {name} must be {article} {kind}, not {value!r}") from None
    if kind == "boolean":
        if value.lower() in ("true", "yes", "1"):
            return True
        if value.lower() in ("false", "no", "0"):
            return False
        raise CliError(f"--param {name} must be true or false, not {value!r}")
    return value


# --- parsers -------------------------------------------------------------------------

def add_parser(subparsers: Subparsers) -> None:
    ops = (wait_options(), idempotency_options())
    p = add_command(subparsers, "deploy", deploy, parents=ops,
                    help="deploy a version to an environment",
                    description="Deploy VERSION to PROJECT/ENVIRONMENT.",
                    examples="  cloudops deploy shop staging --version 1.4.2 --wait\n"
                             "  cloudops deploy shop prod --version 1.4.2 --image "
                             "acr.io/shop:1.4.2 -o json")
    target_arguments(p)
    p.add_argument("--version", required=True, help="version to deploy")
    p.add_argument("--image",
                   help="container image the App Service slot runs (linuxFxVersion)")
    p.add_argument("--package-url",
                   help="https URL of a zip package the App Service slot runs from "
                        "(WEBSITE_RUN_FROM_PACKAGE)")

    p = add_command(subparsers, "backup", backup, parents=ops,
                    help="back up an environment's database",
                    description="Back up PROJECT/ENVIRONMENT's database.",
                    examples="  cloudops backup shop prod --wait\n"
                             "  cloudops backups list shop prod")
    target_arguments(p)

    p = add_command(subparsers, "restore", restore, parents=ops,
                    help="restore an environment's database from a backup",
                    description="Restore PROJECT/ENVIRONMENT's database from one of its "
                                "backups.",
                    examples="  cloudops restore shop staging --backup-id latest --wait\n"
                             "  cloudops restore shop staging --backup-id 5b0e...e1 --wait")
    target_arguments(p)
    p.add_argument("--backup-id", required=True,
                   help="backup id (see `cloudops backups list`), or `latest`")

    p = add_command(subparsers, "refresh", refresh, parents=ops,
                    help="refresh an environment from another environment's backup",
                    description="Restore PROJECT/ENVIRONMENT's database from a backup of "
                                "another environment (a safety backup of ENVIRONMENT is "
                                "taken first), then run the masking script, if named.",
                    examples="  cloudops refresh shop staging --from prod --mask-script "
                             "mask-pii --wait\n"
                             "  cloudops refresh shop staging --from prod --backup-id 5b0e...e1")
    target_arguments(p)
    p.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                   help="the environment whose backup is restored")
    p.add_argument("--backup-id", help="a backup of SOURCE (default: its latest)")
    p.add_argument("--mask-script", help="catalogue script run after the restore; the "
                                         "refresh fails if it fails")
    p.add_argument("--mask-param", dest="mask_params", action="append", default=[],
                   metavar="NAME=VALUE", help="a masking-script parameter; repeat for more")

    p = add_command(subparsers, "restart", restart, parents=ops,
                    help="restart a workload", description="Restart WORKLOAD in "
                    "PROJECT/ENVIRONMENT (rolling restart on Kubernetes targets).",
                    examples="  cloudops restart shop prod --workload web --wait")
    target_arguments(p)
    p.add_argument("--workload", required=True,
                   help="a Kubernetes workload, a service of the agent, or on App Service "
                        "the site's or its slot's name")
    p.add_argument("--namespace", help="Kubernetes namespace (default: the target's)")
    p.add_argument("--kind", choices=("deployment", "statefulset", "daemonset"),
                   help="the Kubernetes workload's kind (default: deployment)")

    sandbox = subparsers.add_parser(
        "sandbox", help="create, extend or delete a sandbox environment",
        description="Sandboxes: short-lived copies of an environment.")
    actions = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    p = add_command(actions, "create", sandbox_create, parents=ops,
                    help="create a sandbox from an environment",
                    description="Create sandbox NAME as a copy of PROJECT/ENVIRONMENT, "
                                "seeded from a fresh backup of it taken first, or from "
                                "the backup --backup-id names.",
                    examples="  cloudops sandbox create shop staging --name pr-42 "
                             "--ttl-hours 24 --wait\n"
                             "  cloudops sandbox create shop staging --name pr-43 "
                             "--backup-id 5b0e...e1 --wait")
    target_arguments(p)
    p.add_argument("--name", required=True, help="sandbox slug (a new environment)")
    p.add_argument("--ttl-hours", type=int, default=8, help="hours until expiry (1-168)")
    p.add_argument("--backup-id",
                   help="seed from this regular backup of ENVIRONMENT (default: a fresh "
                        "backup taken first)")
    p = add_command(actions, "extend", sandbox_extend, parents=ops,
                    help="push a sandbox's expiry back",
                    description="Extend sandbox SANDBOX of PROJECT by HOURS.",
                    examples="  cloudops sandbox extend shop pr-42 --hours 24")
    p.add_argument("project", help="project slug")
    p.add_argument("sandbox", help="sandbox slug")
    p.add_argument("--hours", type=int, required=True, help="hours to add")
    p = add_command(actions, "delete", sandbox_delete, parents=ops,
                    help="tear a sandbox down now",
                    description="Delete sandbox SANDBOX of PROJECT now.",
                    examples="  cloudops sandbox delete shop pr-42 --wait")
    p.add_argument("project", help="project slug")
    p.add_argument("sandbox", help="sandbox slug")

    script = subparsers.add_parser("script", help="run a catalogue script",
                                   description="Scripts from the project's catalogue.")
    actions = script.add_subparsers(dest="script_command", metavar="ACTION", required=True)
    p = add_command(actions, "run", script_run, parents=ops,
                    help="run a script on an environment",
                    description="Run SCRIPT from PROJECT's catalogue on ENVIRONMENT. Values "
                                "are converted to the parameter types the catalogue declares.",
                    examples="  cloudops script run shop prod reindex --param index=orders "
                             "--param full=true --wait")
    target_arguments(p)
    p.add_argument("script", help="script name (see GET /api/projects/{p}/scripts)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a script parameter; repeat for more")
