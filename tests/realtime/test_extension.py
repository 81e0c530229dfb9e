"""How the extension plugs into a host: settings it hands the app, config, key persistence."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from localhost.signalr import CONNECTION_SETTING, SignalRExtension


class StubHost:
    """The slice of ``localhost.host.Host`` an extension's ``bind`` uses."""

    def __init__(self, state_dir: Path, config: dict[str, Any] | None = None) -> None:
        self.web = web.Application()
        self.base_url = "http://127.0.0.1:7999"
        self.state_dir = state_dir
        self.env: dict[str, str] = {}
        self._config = config or {}

    def set_env(self, name: str, value: str) -> None:
        self.env[name] = value

    def extension_config(self, name: str) -> dict[str, Any]:
        assert name == "signalr"
        return self._config


def test_bind_points_the_app_at_the_emulation_unless_a_service_is_configured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONNECTION_SETTING, raising=False)
    host = StubHost(tmp_path)
    ext = SignalRExtension()
    ext.bind(host)  # type: ignore[arg-type]
    value = host.env[CONNECTION_SETTING]
    # publishes go to the REST API's own port; clients negotiate under the host's /signalr
    assert ext.rest is not None and ext.rest.url.startswith("http://127.0.0.1:")
    assert value == (f"Endpoint={ext.rest.url};ClientEndpoint=http://127.0.0.1:7999/signalr;"
                     f"AccessKey={ext.access_key};Version=1.0;")
    asyncio.run(ext.stop())
    bare = SignalRExtension(lean_rest=False)
    bare.bind(StubHost(tmp_path))  # type: ignore[arg-type]
    assert bare.connection_string == (f"Endpoint=http://127.0.0.1:7999/signalr;"
                                      f"AccessKey={ext.access_key};Version=1.0;")
    monkeypatch.setenv(CONNECTION_SETTING, "Endpoint=https://real.service.signalr.net;...")
    other = StubHost(tmp_path)
    SignalRExtension().bind(other)  # type: ignore[arg-type]
    assert CONNECTION_SETTING not in other.env


def test_access_key_is_kept_private_and_reused_across_restarts(tmp_path: Path) -> None:
    first, second = SignalRExtension(lean_rest=False), SignalRExtension(lean_rest=False)
    first.attach(web.Application(), base_url="http://x", state_dir=tmp_path,
                 set_env=lambda *_: None)
    second.attach(web.Application(), base_url="http://x", state_dir=tmp_path,
                  set_env=lambda *_: None)
    assert first.access_key == second.access_key and len(first.access_key) >= 32
    mode = os.stat(tmp_path / "signalr" / "access-key").st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_host_json_settings_tune_keepalive_size_and_cors(tmp_path: Path) -> None:
    host = StubHost(tmp_path, {"pingIntervalSeconds": 5, "clientTimeoutSeconds": 12,
                               "maxMessageBytes": 4096, "corsOrigins": ["http://ui"]})
    ext = SignalRExtension(lean_rest=False)
    ext.bind(host)  # type: ignore[arg-type]
    assert (ext.options.ping_interval, ext.options.client_timeout,
            ext.options.max_message_bytes) == (5.0, 12.0, 4096)
    assert ext.cors_origins == frozenset({"http://ui"})
