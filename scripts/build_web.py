"""Build the static web app: ``web/`` source → ``web/dist/`` (what SWA deploys and the
local host serves).

- ``web/templates/pages/*.html.j2`` are rendered with jinja2 into the shared layout
  (``web/templates/_layout.html.j2``: header, nav, user menu, footer). A page named
  ``projects.html.j2`` becomes ``dist/projects/index.html`` so URLs are ``/projects/``;
  ``index``, ``not-found`` and ``forbidden`` stay files at the root.
- ``web/src/`` (CSS and ES modules) is copied to ``dist/assets/``; ``web/public/`` (logo,
  favicon) to the root; ``web/staticwebapp.config.json`` to the root.
- The official ``@microsoft/signalr`` browser bundle is copied from ``node_modules`` (the
  npm package pinned in ``package.json``), never committed.

Run by ``scripts/bootstrap.sh`` after ``vendor_assets.py``; ``python scripts/build_web.py``
rebuilds by hand. Exits non-zero with a message when a source or the npm bundle is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
SIGNALR = ROOT / "node_modules" / "@microsoft" / "signalr" / "dist" / "browser"
# Pages that stay plain files at the root (SWA fallbacks and overrides point at them).
ROOT_PAGES = {"index", "not-found", "forbidden"}


def page_target(dist: Path, name: str) -> Path:
    if name in ROOT_PAGES:
        return dist / f"{name}.html"
    return dist / Path(*name.split("__")) / "index.html"


def asset_version(src: Path) -> str:
    """A short hash of every asset, appended to asset URLs so browsers never mix builds."""
    digest = hashlib.sha256()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        digest.update(path.relative_to(src).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def build(web: Path = WEB, dist: Path | None = None, signalr: Path = SIGNALR) -> Path:
    dist = dist or web / "dist"
    bundle = signalr / "signalr.min.js"
    if not bundle.is_file():
        raise FileNotFoundError(f"{bundle} missing; run npm ci (scripts/bootstrap.sh does)")
    if dist.exists():
        shutil.rmtree(dist)
    shutil.copytree(web / "src", dist / "assets")
    vendor = dist / "assets" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    shutil.copy2(bundle, vendor / "signalr.min.js")
    shutil.copytree(web / "public", dist, dirs_exist_ok=True)
    shutil.copy2(web / "staticwebapp.config.json", dist / "staticwebapp.config.json")

    env = Environment(loader=FileSystemLoader(web / "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    version = asset_version(web / "src")
    pages = sorted((web / "templates" / "pages").glob("*.html.j2"))
    for page in pages:
        name = page.name.removesuffix(".html.j2")
        html = env.get_template(f"pages/{page.name}").render(page=name, v=version)
        target = page_target(dist, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
    return dist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (web/dist)")
    args = parser.parse_args(argv)
    try:
        dist = build(dist=args.out)
    except (FileNotFoundError, OSError) as exc:
        print(f"build_web: {exc}", file=sys.stderr)
        return 1
    print(f"build_web: built {dist.relative_to(ROOT) if dist.is_relative_to(ROOT) else dist}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
