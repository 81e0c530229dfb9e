"""Demo deploy script: 'ships' a version by recording it, with progress on stdout.

Run by the local agent as argv (never a shell): deploy.py --environment dev --version 1.2.3
"""

import argparse
import json
import pathlib
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--environment", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--state", default=str(pathlib.Path.home() / ".cloudops-demo"))
    args = parser.parse_args()
    steps = ["fetching artifact", "stopping old version", "starting new version",
             "warming up", "health check"]
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {step} ({args.version} → {args.environment})", flush=True)
        time.sleep(0.3)
    state = pathlib.Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    (state / f"{args.environment}.json").write_text(
        json.dumps({"version": args.version, "deployedAt": time.time()}))
    print(f"{args.environment} now runs {args.version}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
