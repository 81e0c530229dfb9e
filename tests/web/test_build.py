"""The built site obeys its own Content-Security-Policy and ships what SWA needs: no
inline scripts, event-handler attributes or style attributes in any page; every page's
scripts and styles exist in the build; the SignalR bundle comes from node_modules."""

from __future__ import annotations

import json
import re
from pathlib import Path

from scripts.build_web import SIGNALR

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTR = re.compile(r"<[^>]+\sstyle\s*=", re.I)
ASSET = re.compile(r'(?:src|href)="(/[^"?#]+)(?:\?[^"]*)?"')


def test_pages_have_no_inline_script_handler_or_style(web_dist: Path) -> None:
    pages = sorted(web_dist.rglob("*.html"))
    assert {p.relative_to(web_dist).as_posix() for p in pages} >= {
        "index.html", "projects/index.html", "project/index.html", "environment/index.html",
        "task/index.html", "tasks/index.html", "agents/index.html", "activity/index.html",
        "admin/index.html", "not-found.html", "forbidden.html"}
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for attrs, body in SCRIPT.findall(html):
            assert "src=" in attrs and not body.strip(), f"inline script in {page}"
        assert not HANDLER.search(html), f"on*= handler in {page}"
        assert not STYLE_ATTR.search(html), f"style attribute in {page}"
        for asset in ASSET.findall(html):
            if asset.startswith(("/.auth/", "/api/")) or asset.endswith("/"):
                continue
            assert (web_dist / asset.lstrip("/")).is_file(), f"{page} links missing {asset}"


def test_signalr_bundle_is_the_npm_package_and_config_ships_with_the_site(
        web_dist: Path) -> None:
    built = web_dist / "assets" / "vendor" / "signalr.min.js"
    assert built.read_bytes() == (SIGNALR / "signalr.min.js").read_bytes()
    config = json.loads((web_dist / "staticwebapp.config.json").read_text())
    csp = config["globalHeaders"]["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
    assert config["responseOverrides"]["401"]["redirect"].startswith("/.auth/login/aad")
    admin = next(r for r in config["routes"] if r["route"] == "/admin/*")
    assert admin["allowedRoles"] == ["admin"]
