"""#18 attack tests: a Teams webhook URL chosen by a project admin cannot reach inside."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from shared.notify.channels import DeliveryError, address_is_public, post_teams
from shared.notify.rules import RuleInput

SECRET_BODY = "internal-secret-body"


class Sink:
    """A loopback HTTP server: counts requests, answers ``status`` (+ Location)."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.hits: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                body = SECRET_BODY.encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254",
    "168.63.129.16", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00::1",
    "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
    "2002:7f00:1::1",
])
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not address_is_public(address)


@pytest.mark.parametrize("address", ["52.96.0.1", "2603:1030::1"])
def test_public_addresses_are(address: str) -> None:
    assert address_is_public(address)


def test_plain_http_is_refused_without_the_local_setting(sink: Sink) -> None:
    with pytest.raises(DeliveryError, match="https"):
        post_teams(sink.url, {"text": "x"})
    assert sink.hits == []


def test_loopback_over_https_is_refused_too(sink: Sink) -> None:
    url = sink.url.replace("http://", "https://")
    with pytest.raises(DeliveryError, match="not public"):
        post_teams(url, {"text": "x"})
    assert sink.hits == []


def test_a_name_resolving_inside_is_refused_before_any_connection(
        sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    port = sink.server.server_address[1]

    def resolve(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("52.96.0.1", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(DeliveryError, match="not public"):
        post_teams(f"https://hooks.example.com:{port}/x", {"text": "x"})
    assert sink.hits == []


def test_the_connection_goes_to_the_address_that_was_checked(
        sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once; a second lookup is never made."""
    port = sink.server.server_address[1]
    answers = iter(["127.0.0.1", "10.9.9.9"])
    lookups: list[str] = []

    def resolve(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    post_teams(f"http://localhost:{port}/hook", {"text": "x"}, allow_loopback=True)
    assert lookups == ["localhost"] and sink.hits == ["/hook"]


def test_redirects_are_not_followed_and_bodies_not_recorded() -> None:
    target = Sink()
    redirector = Sink(status=307, location=target.url)
    failing = Sink(status=500)
    try:
        with pytest.raises(DeliveryError) as info:
            post_teams(redirector.url, {"text": "x"}, allow_loopback=True)
        assert "307" in str(info.value) and target.hits == []
        with pytest.raises(DeliveryError) as info:
            post_teams(failing.url, {"text": "x"}, allow_loopback=True)
        assert "500" in str(info.value) and SECRET_BODY not in str(info.value)
    finally:
        for s in (target, redirector, failing):
            s.close()


@pytest.mark.parametrize("url", ["http://hooks.example.com/x", "ftp://example.com/x",
                                 "file:///etc/passwd"])
def test_rules_refuse_non_https_webhooks(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        RuleInput.model_validate({"name": "r", "events": ["task.failed"], "channel": "teams",
                                  "webhookUrl": url})


def test_the_loopback_setting_is_off_by_default_and_refused_in_azure() -> None:
    from shared.settings import Settings, SettingsError

    assert Settings.from_env({}).webhook_allow_loopback is False
    with pytest.raises(SettingsError):
        Settings.from_env({"CLOUDOPS_MODE": "azure", "CLOUDOPS_WEBHOOK_ALLOW_LOOPBACK": "1",
                           "DATABASE_URL": "postgresql://x/y",
                           "ServiceBusConnection": "Endpoint=sb://x/",
                           "AzureSignalRConnectionString": "Endpoint=https://x;AccessKey=k;",
                           "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                           "CLOUDOPS_AGENT_KEY_SECRET": "s"})
