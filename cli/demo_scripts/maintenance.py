"""Demo maintenance script: reports what a cleanup of old files under a folder would free.

Harmless by design (it only reads). Run by the local agent as argv:
maintenance.py --older-than-days 7 --path /tmp
"""

import argparse
import pathlib
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--older-than-days", type=int, default=7)
    args = parser.parse_args()
    root = pathlib.Path(args.path)
    if not root.is_dir():
        print(f"{root} is not a folder")
        return 2
    cutoff = time.time() - args.older_than_days * 86400
    count = size = 0
    for path in root.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                count += 1
                size += path.stat().st_size
        except OSError:
            continue
    print(f"{count} files older than {args.older_than_days} days under {root}: "
          f"{size / 1e6:.1f} MB could be freed (dry run, nothing deleted)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
