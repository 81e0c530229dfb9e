"""``cloudops-agent``: register with a control plane, then run.

    cloudops-agent register --url URL --pool POOL --token TOKEN --labels a,b \\
        [--name NAME] [--capacity N] [--connection name=postgresql://...] [--config PATH]
    cloudops-agent run [--config PATH]

The config (default ``~/.config/cloudops-agent/config.json`` or ``$CLOUDOPS_AGENT_CONFIG``)
is written with mode 0600; add ``connections``, ``clusters``, ``services`` and
``allowedExecutables`` to it (or pass ``--connection`` at registration). Without
``allowedExecutables`` the agent runs no scripts; an entry's ``projects`` limits whom it
serves (``agent.config``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from agent import config as config_file
from agent.client import AgentError, ControlPlane, Registered
from agent.config import AgentConfig, ConfigError
from agent.logs import setup

log = logging.getLogger("cloudops.agent")


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"--{what} must look like name=value, got {name!r}")
        out[name] = rest
    return out


def _merge_connections(previous: dict[str, str | dict[str, Any]], given: dict[str, str]
                       ) -> dict[str, str | dict[str, Any]]:
    """``--connection`` URLs over the previous config's; an entry's ``projects`` stay."""
    merged = dict(previous)
    for name, url in given.items():
        entry = previous.get(name)
        merged[name] = {**entry, "url": url} if isinstance(entry, dict) else url
    return merged


def register(args: argparse.Namespace) -> int:
    labels = [x.strip() for x in (args.labels or "").split(",") if x.strip()]
    name = args.name or socket.gethostname().split(".")[0]
    api = ControlPlane(args.url)
    try:
        answer: Registered = api.register(token=args.token, name=name, labels=labels,
                                          capacity=args.capacity)
    except AgentError as exc:
        log.error("registration failed: %s", exc)
        return 2
    finally:
        api.close()
    previous: AgentConfig | None = None
    with contextlib.suppress(ConfigError):
        previous = config_file.load(args.config)
    cfg = AgentConfig(
        url=args.url, agent_id=answer["agentId"], name=answer["name"], pool=answer["pool"],
        key=answer["key"], key_expires_at=str(answer.get("keyExpiresAt", "")),
        key_issued_at=datetime.now(UTC).isoformat(),
        labels=list(answer.get("labels", labels)), capacity=args.capacity,
        heartbeat_interval_seconds=float(answer.get("heartbeatIntervalSeconds", 10)),
        connections=_merge_connections(previous.connections if previous else {},
                                       _pairs(args.connection or [], "connection")),
        clusters=previous.clusters if previous else {},
        services=previous.services if previous else {},
        allowed_executables=previous.allowed_executables if previous else None,
        pg_bin_dir=previous.pg_bin_dir if previous else None,
        pg_bin_dirs=previous.pg_bin_dirs if previous else {})
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif previous:
        cfg.work_dir = previous.work_dir
    path = config_file.save(cfg, args.config)
    log.info("registered agent %s in pool %s; config written to %s", cfg.name, cfg.pool, path)
    return 0


def run(args: argparse.Namespace) -> int:
    from agent.runner import Agent

    try:
        cfg = config_file.load(args.config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    agent = Agent(cfg, config_path=args.config)

    def stop(signum: int, _frame: Any) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return agent.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloudops-agent")
    parser.add_argument("--log-level", default=os.environ.get("CLOUDOPS_AGENT_LOG_LEVEL",
                                                              "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="trade a registration token for an agent key")
    reg.add_argument("--url", required=True, help="control plane base URL")
    reg.add_argument("--pool", required=True, help="agent pool (must match the token's)")
    reg.add_argument("--token", required=True, help="registration token from an admin")
    reg.add_argument("--labels", default="", help="comma-separated labels")
    reg.add_argument("--name", help="agent name (default: host name)")
    reg.add_argument("--capacity", type=int, default=1, help="jobs run at once (1-64)")
    reg.add_argument("--connection", action="append",
                     help="named database connection name=postgresql://... (repeatable)")
    reg.add_argument("--work-dir", help="where jobs keep temporary files")
    reg.add_argument("--config", help="config file path")
    run_p = sub.add_parser("run", help="heartbeat, poll for jobs and run them")
    run_p.add_argument("--config", help="config file path")
    args = parser.parse_args(argv)
    setup(args.log_level)
    if args.command == "register":
        code = register(args)
        if code == 0 and args.pool:
            cfg = config_file.load(args.config)
            if cfg.pool != args.pool:
                log.error("the token belongs to pool %s, not %s", cfg.pool, args.pool)
                return 2
        return code
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
