"""What every API subcommand shares: connection options, the client, output, exit codes.

Exit codes: 0 succeeded, 1 failed, 2 cancelled or timed out, 3 usage or auth error (any
4xx), 4 could not reach the API. The reason is always the last line printed (stderr),
and no traceback ever reaches the user.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO, TypeAlias

from cli import ci
from cli.client import (
    DEFAULT_URL,
    FIRST_CONTACT_BUDGET,
    ApiClient,
    ApiError,
    Auth,
    CliError,
)
from cli.follow import TERMINAL, LogPrinter, exit_code, follow

Handler = Callable[[argparse.Namespace], int]
# what ArgumentParser.add_subparsers returns (a string annotation: not subscriptable at runtime)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DEFAULT_RETRY_BUDGET = 120.0  # seconds, once the API has answered

CONNECTION_HELP = """\
connection (environment variables in brackets):
  --url [CLOUDOPS_URL]          control plane base URL (default http://127.0.0.1:7071)
  key [CLOUDOPS_KEY]            pipeline function key, sent as x-functions-key
  --aad-scope [CLOUDOPS_AAD_SCOPE]  get an Entra token with DefaultAzureCredential instead

exit codes: 0 succeeded, 1 failed, 2 cancelled or timed out, 3 usage or auth error,
4 could not reach the API; the reason is printed last.
"""


def common_options() -> argparse.ArgumentParser:
    """A parent parser with the options every API subcommand takes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--url", default=None,
                       help=f"API base URL [CLOUDOPS_URL] (default {DEFAULT_URL})")
    group.add_argument("--aad-scope", default=None,
                       help="Entra scope for a bearer token [CLOUDOPS_AAD_SCOPE], e.g. "
                            "api://<app-id>/.default; the key [CLOUDOPS_KEY] wins if set")
    group.add_argument("--output", "-o", choices=("text", "json"), default="text",
                       help="text for people (default) or json for scripts")
    group.add_argument("--retry-timeout", type=float, default=None, metavar="SECONDS",
                       help="keep retrying an unreachable API this long (default 120 once "
                            f"it has answered, {FIRST_CONTACT_BUDGET:.0f} before: a wrong "
                            "URL fails fast)")
    return parent


def wait_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--wait", "-w", action="store_true",
                        help="follow the task: live log, then exit with its outcome")
    parent.add_argument("--quiet", "-q", action="store_true",
                        help="with --wait: do not print the log, only the outcome")
    parent.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)
    return parent


def add_command(subparsers: Subparsers, name: str, handler: Handler, *, help: str,
                description: str, examples: str,
                parents: tuple[argparse.ArgumentParser, ...] = ()) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description,
        epilog="examples:\n" + examples.rstrip() + "\n\n" + CONNECTION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[*parents, common_options()])
    parser.set_defaults(handler=guarded(handler))
    return parser


def guarded(handler: Handler) -> Handler:
    """Map every failure to its exit code with a one-line reason; never a traceback."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as exc:
            fail(exc.reason)
            return exc.exit_code
        except KeyboardInterrupt:
            fail("interrupted (the task, if any, keeps running; see `cloudops task wait`)")
            return 130
        except BrokenPipeError:
            return 0
        except Exception as exc:  # a bug in the CLI still gets one line, not a traceback
            fail(f"unexpected error: {type(exc).__name__}: {exc}")
            return 1
    return run


def fail(reason: str) -> None:
    sys.stdout.flush()
    print(f"error: {reason}", file=sys.stderr, flush=True)


def client_for(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ApiClient:
    env = os.environ if env is None else env
    url = args.url or env.get("CLOUDOPS_URL") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--url must start with http:// or https://, not {url!r}")
    auth = Auth(key=env.get("CLOUDOPS_KEY") or None,
                aad_scope=args.aad_scope or env.get("CLOUDOPS_AAD_SCOPE") or None)

    def on_retry(problem: str, delay: float) -> None:
        print(f"warning: {problem}; retrying in {delay:.1f}s", file=sys.stderr, flush=True)

    if args.retry_timeout is None:
        return ApiClient(url, auth, retry_budget=DEFAULT_RETRY_BUDGET, on_retry=on_retry,
                         first_contact_budget=FIRST_CONTACT_BUDGET)
    return ApiClient(url, auth, retry_budget=args.retry_timeout, on_retry=on_retry)


def emit_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
    out.flush()


def table(rows: list[list[str]], headers: list[str], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                  + "\n")
    out.flush()


def describe(task: dict[str, Any]) -> str:
    """The outcome line: status, operation, short id, and the error or reason."""
    status = task.get("status", "?")
    text = f"{status}: {task.get('operation', 'task')} task {task.get('id')}"
    if task.get("error"):
        # One line: the full error is in the task (and its log) for whoever needs more.
        text += f": {str(task['error']).strip().splitlines()[0]}"
    elif status not in TERMINAL and task.get("reason"):
        text += f" ({task['reason']})"
    return text


def printer_for(args: argparse.Namespace) -> LogPrinter | None:
    if getattr(args, "quiet", False):
        return None
    json_mode = args.output == "json"
    # JSON keeps stdout for the one document; the log goes to stderr.
    out = sys.stderr if json_mode else sys.stdout
    tty = out.isatty() and not ci.is_ci(os.environ) and not json_mode
    return LogPrinter(out, tty=tty, runner=ci.runner(os.environ))


def finish(args: argparse.Namespace, client: ApiClient, task: dict[str, Any],
           wait: bool, *, after: int = 0) -> int:
    """Print the submitted or followed task and return the command's exit code."""
    if wait:
        # Name the task first: whoever watches can `cloudops task wait` it elsewhere.
        operation = f" ({task['operation']})" if task.get("operation") else ""
        print(f"following task {task['id']}{operation}",
              file=sys.stdout if args.output == "text" else sys.stderr, flush=True)
        task = follow(client, str(task["id"]), printer_for(args), after=after,
                      poll=getattr(args, "poll", 0.5))
    if args.output == "json":
        emit_json(task)
    code = exit_code(str(task.get("status"))) if wait else 0
    # The outcome is the last line; a failure's reason goes where errors go.
    out = sys.stdout if args.output == "text" and code == 0 else sys.stderr
    print(describe(task), file=out, flush=True)
    return code


def not_supported(exc: ApiError, what: str) -> CliError:
    """A 404 from a route (not from a missing resource) means the server lacks the feature."""
    if exc.status == 404 and not exc.problem.get("field"):
        return CliError(f"{what} is not supported by this server (HTTP 404)")
    return exc
