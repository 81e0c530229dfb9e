"""The agent's HTTP client for the control plane's agent endpoints (and nothing else).

Errors are sorted by what the agent should do about them: ``AuthRejected`` (401: the key
is no longer valid, stop), ``JobGone`` (404/409 on a job: it is not ours any more, stop
it), ``Transient`` (network, 5xx, 429: back off and retry). A long poll answered 204 is
simply "no job", never an error.
"""

from __future__ import annotations

import platform
from typing import Any, TypedDict

import requests

from agent import __version__

AGENT_KEY_HEADER = "X-CloudOps-Agent-Key"  # the server reads the agent key from it


class Timing(TypedDict):
    """The agent policy's timing, in the register and heartbeat answers."""

    heartbeatIntervalSeconds: float
    leaseSeconds: float
    maxWaitSeconds: float


class Registered(Timing):
    """``POST /agent/register`` (201)."""

    agentId: str
    name: str
    pool: str
    labels: list[str]
    key: str
    keyExpiresAt: str


class KeyRotated(TypedDict):
    """``POST /agent/key``."""

    key: str
    keyExpiresAt: str
    previousKeyValidUntil: str


class HeartbeatAnswer(Timing):
    """``POST /agent/heartbeat``: job ids to cancel or abandon, and whether to rotate."""

    cancel: list[str]
    abandon: list[str]
    enabled: bool
    keyExpiresAt: str
    rotateKey: bool


class JobState(TypedDict):
    """``POST /agent/jobs/{id}/result`` and ``.../release``."""

    jobId: str
    status: str


def _object(resp: requests.Response) -> dict[str, Any]:
    """The JSON object a control-plane endpoint answers (typed for the caller)."""
    body: dict[str, Any] = resp.json()
    return body


class AgentError(Exception):
    """Base of the errors the client raises."""


class AuthRejected(AgentError):
    """The control plane refused the key (unknown, expired, revoked or rotated out)."""


class JobGone(AgentError):
    """The job is no longer leased to this agent (lost, cancelled, handed on)."""


class Transient(AgentError):
    """Worth retrying after a backoff."""


class Rejected(AgentError):
    """A 4xx that retrying will not fix (bad request)."""


def _detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("detail") or body.get("title") or resp.reason)
    except ValueError:
        return resp.reason or str(resp.status_code)


class ControlPlane:
    def __init__(self, url: str, key: str | None = None, *, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/") + "/api"
        self._key = key
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"cloudops-agent/{__version__}"

    def set_key(self, key: str) -> None:
        self._key = key

    def _call(self, method: str, path: str, *, json: Any = None, params: Any = None,
              timeout: float | None = None, job: bool = False,
              auth: bool = True) -> requests.Response:
        # its own header: App Service authentication reads Authorization as an Entra token
        headers = {AGENT_KEY_HEADER: self._key} if auth and self._key else {}
        try:
            resp = self._session.request(method, self.base + path, json=json, params=params,
                                         headers=headers, timeout=timeout or self._timeout)
        except requests.RequestException as exc:
            raise Transient(f"{method} {path}: {type(exc).__name__}") from None
        if resp.status_code < 400:
            return resp
        detail = _detail(resp)
        if resp.status_code == 401:
            raise AuthRejected(detail)
        if job and resp.status_code in (404, 409):
            raise JobGone(detail)
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            raise Transient(f"{method} {path}: {resp.status_code} {detail}")
        raise Rejected(f"{method} {path}: {resp.status_code} {detail}")

    # -- endpoints ---------------------------------------------------------------------
    def register(self, *, token: str, name: str, labels: list[str],
                 capacity: int = 1) -> Registered:
        body = {"token": token, "name": name, "labels": labels, "version": __version__,
                "os": platform.platform(terse=True), "capacity": capacity}
        answer: Registered = self._call("POST", "/agent/register", json=body, auth=False).json()
        return answer

    def rotate_key(self, request_id: str | None = None) -> KeyRotated:
        """Rotate the key; the same ``request_id`` sent again returns the same new key
        (for an answer lost on the way), within the control plane's grace window."""
        body = {"requestId": request_id} if request_id else {}
        answer: KeyRotated = self._call("POST", "/agent/key", json=body).json()
        return answer

    def heartbeat(self, running: list[str]) -> HeartbeatAnswer:
        body = {"running": running, "version": __version__,
                "os": platform.platform(terse=True)}
        answer: HeartbeatAnswer = self._call("POST", "/agent/heartbeat", json=body).json()
        return answer

    def next_job(self, wait: float) -> dict[str, Any] | None:
        resp = self._call("GET", "/agent/jobs/next", params={"wait": f"{wait:g}"},
                          timeout=wait + 20)
        return None if resp.status_code == 204 else _object(resp)

    def logs(self, job_id: str, lines: list[str], progress: int | None = None) -> bool:
        """Send log lines; returns whether the control plane asks to cancel."""
        body: dict[str, Any] = {"lines": lines}
        if progress is not None:
            body["progress"] = progress
        resp = self._call("POST", f"/agent/jobs/{job_id}/logs", json=body, job=True)
        return bool(resp.json().get("cancel"))

    def result(self, job_id: str, status: str, result: dict[str, Any] | None = None,
               error: str | None = None) -> JobState:
        body = {"status": status, "result": result, "error": error}
        answer: JobState = self._call("POST", f"/agent/jobs/{job_id}/result", json=body,
                                      job=True).json()
        return answer

    def release(self, job_id: str) -> JobState:
        """Hand a job back (shutting down): re-queued if safe to repeat, else failed."""
        answer: JobState = self._call("POST", f"/agent/jobs/{job_id}/release", job=True).json()
        return answer

    def close(self) -> None:
        self._session.close()
