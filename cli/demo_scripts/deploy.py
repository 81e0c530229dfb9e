"""Demo deploy script: ships a version of the demo web app through the process supervisor.

Run by the local agent as argv (never a shell):

    deploy.py --supervisor STATE_DIR --environment dev --version 1.2.3

The supervisor starts the new version beside the old one, health-checks it, then switches
the environment's stable URL to it; an unhealthy version is stopped and the old one keeps
serving (try a version containing "broken"). The URL is reported to the control plane
through ``$CLOUDOPS_OUTPUT``, so a new environment (a sandbox) gets its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The script runs as a file, so the project root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.supervisor_client import SupervisorClient, SupervisorError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--supervisor", required=True, help="the supervisor's state folder")
    parser.add_argument("--environment", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--program", default="demo-web")
    args = parser.parse_args()
    app = f"{args.program}@{args.environment}"
    client = SupervisorClient.from_state_dir(Path(args.supervisor))
    try:
        before = client.get(app)
    except SupervisorError:
        before = None
    print(f"[1/3] {app} runs {before['version'] if before else 'nothing yet'}", flush=True)
    print(f"[2/3] starting {args.version} beside it and health-checking it", flush=True)
    try:
        after = client.deploy(app, args.version)
    except SupervisorError as exc:
        print(f"deploy of {args.version} failed: {exc}", flush=True)
        if before:
            print(f"{args.environment} still runs {before['version']}", flush=True)
        return 1
    print(f"[3/3] switched {after['url']} to {args.version} (process {after['pid']})",
          flush=True)
    print(f"{args.environment} now runs {args.version}", flush=True)
    output = os.environ.get("CLOUDOPS_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(f"url={after['url']}\nversion={args.version}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
