"""Copy third-party browser assets from node_modules into the folders that ship them.

Run by scripts/bootstrap.sh after npm install (and by azd's prepackage hook), so assets
come from the npm packages pinned in package.json, never copied by hand. The targets are
gitignored.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = {
    ROOT / "functions" / "http" / "_assets" / "swagger-ui": (
        ROOT / "node_modules" / "swagger-ui-dist",
        ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
         "favicon-32x32.png"],
    ),
}


def main() -> int:
    for target, (source, files) in ASSETS.items():
        if not source.is_dir():
            print(f"vendor_assets: {source} missing; run npm install", file=sys.stderr)
            return 1
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy2(source / name, target / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
