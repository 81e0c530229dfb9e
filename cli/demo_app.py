"""The demo web app each local demo environment runs: a real process on a loopback port, so
Deploy and Restart in the demo change something a person can see and health-check.

Standard library only (it is started by the process supervisor with the same Python, and
must not depend on anything the agent happens to have installed)::

    python -m cli.demo_app --port 8123 --app shop --version 1.2

``GET /`` is a small page with the app, version, start time and pid; ``GET /health`` and
``GET /version`` answer JSON ``{"status", "app", "version", "pid", "startedAt"}``. A
version containing the word ``broken`` (``2.0-broken``) makes ``/health`` answer 503, so
the demo can show a failed health check keeping the old version serving.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import signal
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_BROKEN = re.compile(r"(?i)(?:^|[^a-z])broken(?:$|[^a-z])")


def is_broken(version: str) -> bool:
    """Whether ``version`` names itself broken (the demo's way to fail a health check)."""
    return bool(_BROKEN.search(version))


class DemoApp:
    """What the app reports about itself; fixed when the process starts."""

    def __init__(self, app: str, version: str) -> None:
        self.app = app
        self.version = version
        self.pid = os.getpid()
        self.started_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")

    def facts(self) -> dict[str, Any]:
        return {"app": self.app, "version": self.version, "pid": self.pid,
                "startedAt": self.started_at}

    def page(self) -> str:
        e = html.escape
        return (
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>CloudOps demo app</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:3rem;color:#222}"
            "dt{font-weight:600}dd{margin:0 0 .6rem 0;font-family:monospace}</style>"
            "</head><body><h1>CloudOps demo app</h1><dl>"
            f"<dt>App</dt><dd id=\"app\">{e(self.app)}</dd>"
            f"<dt>Version</dt><dd id=\"version\">{e(self.version)}</dd>"
            f"<dt>Started (UTC)</dt><dd id=\"started\">{e(self.started_at)}</dd>"
            f"<dt>PID</dt><dd id=\"pid\">{e(str(self.pid))}</dd>"
            "</dl></body></html>\n")


def make_server(port: int, app: DemoApp) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:``port`` (0 = a free port) serving ``app``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "CloudOpsDemo/1"

        def log_message(self, fmt: str, *args: Any) -> None:
            print(f"{self.address_string()} {fmt % args}", flush=True)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data: dict[str, Any]) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, app.page().encode(), "text/html; charset=utf-8")
            elif path in ("/health", "/version"):
                broken = is_broken(app.version)
                body = {"status": "broken" if broken else "ok", **app.facts()}
                # only /health reports a broken version as unavailable
                self._json(503 if broken and path == "/health" else 200, body)
            else:
                self._json(404, {"detail": "not found"})

        do_HEAD = do_GET

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.demo_app",
                                     description="The CloudOps demo web app.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--version", required=True)
    args = parser.parse_args(argv)
    app = DemoApp(args.app, args.version)
    server = make_server(args.port, app)

    def stop(_signum: int, _frame: Any) -> None:
        # shutdown() blocks until serve_forever returns, so it must run on another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"demo app {app.app} {app.version} pid {app.pid} on "
          f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print("demo app stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
