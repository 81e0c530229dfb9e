"""GET /api/openapi.json and the Swagger UI at /api/docs (assets from the npm package)."""

from __future__ import annotations

import functools
import json
import mimetypes
from pathlib import Path

import azure.functions as func

from functions.http._responses import problem
from shared.api.openapi import build_openapi

bp = func.Blueprint()
ASSETS = Path(__file__).resolve().parent / "_assets" / "swagger-ui"

# No inline script: the initializer is its own file so a strict CSP can apply.
DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CloudOps API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>"""
INIT_JS = """window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, withCredentials: true});"""


@functools.cache
def _document() -> str:
    return json.dumps(build_openapi())


@bp.route(route="openapi.json", methods=["GET"])
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_document(), mimetype="application/json",
                             headers={"Cache-Control": "public, max-age=300"})


@bp.route(route="docs/{*asset}", methods=["GET"])
def api_docs(req: func.HttpRequest) -> func.HttpResponse:
    asset = req.route_params.get("asset") or ""
    if asset in ("", "index.html"):
        return func.HttpResponse(DOCS_HTML, mimetype="text/html")
    if asset == "init.js":
        return func.HttpResponse(INIT_JS, mimetype="text/javascript")
    path = (ASSETS / asset).resolve()
    if path.parent != ASSETS or not path.is_file():
        return problem(404, "Not found", f"no documentation asset {asset}", field="asset")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return func.HttpResponse(path.read_bytes(), mimetype=mime,
                             headers={"Cache-Control": "public, max-age=86400"})
