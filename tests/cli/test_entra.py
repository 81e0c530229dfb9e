"""Entra auth (``--aad-scope``) through the real azure-identity ``DefaultAzureCredential``.

Entra cannot run offline, so a small loopback stand-in plays both sides: the App Service
managed-identity endpoint (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``, the shape
azure-identity's ``AppServiceCredential`` calls) and an API that accepts only the bearer
token it issued. ``AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential`` keeps the chain to
that one credential, so nothing is sent anywhere but loopback.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.cli.conftest import CLOUDOPS, ROOT, assert_clean_failure, clean_env

TOKEN = "tok-from-managed-identity"
SECRET = "identity-header-secret"


class StandIn(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    refuse_tokens = False

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any], kind: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.seen.append({"path": url.path, "query": query, "headers": dict(self.headers)})
        if url.path == "/msi/token":
            if self.refuse_tokens or self.headers.get("X-IDENTITY-HEADER") != SECRET:
                self._send(400, {"error": "invalid_request",
                                 "error_description": "no identity for this resource"})
                return
            self._send(200, {"access_token": TOKEN, "expires_on": "4102444800",
                             "resource": query.get("resource"), "token_type": "Bearer"})
        elif self.headers.get("Authorization") == f"Bearer {TOKEN}":
            self._send(200, {"items": [{"slug": "shop", "name": "Shop", "yourRole": "operator"}],
                             "nextCursor": None})
        else:
            self._send(401, {"title": "Unauthorized", "status": 401,
                             "detail": "bearer token missing or invalid"},
                       "application/problem+json")


@pytest.fixture
def stand_in() -> Iterator[str]:
    StandIn.seen = []
    StandIn.refuse_tokens = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(IDENTITY_ENDPOINT=f"{url}/msi/token", IDENTITY_HEADER=SECRET,
                    AZURE_TOKEN_CREDENTIALS="ManagedIdentityCredential", CI="true")
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        env.pop(name, None)
    return subprocess.run([CLOUDOPS, "projects", "--url", url, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_an_entra_token_from_managed_identity_is_sent_as_bearer(stand_in: str) -> None:
    result = _run(stand_in, "--aad-scope", "api://cloudops-api/.default", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [p["slug"] for p in json.loads(result.stdout)] == ["shop"]
    token_call = next(s for s in StandIn.seen if s["path"] == "/msi/token")
    assert token_call["query"]["resource"] == "api://cloudops-api"
    api_call = next(s for s in StandIn.seen if s["path"] == "/api/projects")
    assert "x-functions-key" not in {k.lower() for k in api_call["headers"]}


def test_no_token_is_an_auth_error_with_one_line(stand_in: str) -> None:
    StandIn.refuse_tokens = True
    result = _run(stand_in, "--aad-scope", "api://cloudops-api/.default")
    assert_clean_failure(result, 3, "could not get an Entra token for api://cloudops-api")
    assert result.stderr.count("\n") == 1  # azure-identity's own warnings stay quiet
    assert not any(s["path"] == "/api/projects" for s in StandIn.seen)
