"""A client of the process supervisor's control API (``agent/supervisor.py``), shared by
the agent's ``service`` handler and the demo scripts, so both find the supervisor the
same way (its state dir) and turn every failure into one readable ``SupervisorError``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests


class SupervisorError(Exception):
    """The supervisor refused the request or cannot be reached; the message says why."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class SupervisorClient:
    """Talks to one supervisor over loopback HTTP with its bearer token."""

    def __init__(self, url: str, token: str, *, state_dir: Path | None = None,
                 timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._where = str(state_dir) if state_dir else self.url
        self._session = requests.Session()
        self._session.trust_env = False  # loopback: never through an HTTP proxy
        self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_state_dir(cls, state_dir: str | Path, *, timeout: float = 120.0
                       ) -> SupervisorClient:
        """Find the supervisor through the files it writes in its state dir."""
        path = Path(state_dir).expanduser()
        try:
            info = json.loads((path / "supervisor.json").read_text())
            token = (path / "control-token").read_text().strip()
            url = str(info["url"])
        except (OSError, ValueError, KeyError, TypeError):
            raise SupervisorError(f"the process supervisor at {path} is not running"
                                  ) from None
        return cls(url, token, state_dir=path, timeout=timeout)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SupervisorClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            resp = self._session.request(method, self.url + path, json=body,
                                         timeout=self.timeout)
        except requests.RequestException:
            raise SupervisorError(f"the process supervisor at {self._where} is not running"
                                  ) from None
        if resp.status_code >= 400:
            try:
                detail = str(resp.json().get("detail") or resp.text)
            except ValueError:
                detail = resp.text.strip() or resp.reason
            raise SupervisorError(detail, resp.status_code)
        return resp.json()

    @staticmethod
    def _app(app: str) -> str:
        return "/apps/" + quote(app, safe="@")

    def list(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/apps"))

    def get(self, app: str) -> dict[str, Any]:
        return dict(self._call("GET", self._app(app)))

    def deploy(self, app: str, version: str) -> dict[str, Any]:
        """Start ``version`` and switch to it once healthy (the old one keeps serving
        otherwise, and this raises with the reason)."""
        return dict(self._call("PUT", self._app(app), {"version": version}))

    def restart(self, app: str) -> dict[str, Any]:
        """A new process at the same version, switched to once healthy."""
        return dict(self._call("POST", self._app(app) + "/restart"))

    def delete(self, app: str) -> None:
        self._call("DELETE", self._app(app))
