"""The CLI's HTTP client for the control-plane API: auth, retries, problem+json errors.

One ``ApiClient`` per invocation. It authenticates with a pipeline key (``CLOUDOPS_KEY``,
sent as ``x-functions-key``) or an Entra token from azure-identity (``--aad-scope``), and
turns every way a call can go wrong into one of two exceptions the commands map to exit
codes: ``ApiError`` (the API answered 4xx/5xx) and ``Unreachable`` (it did not answer).

Every request the CLI sends is safe to repeat — reads are GETs and operation POSTs always
carry an ``Idempotency-Key`` — so connection errors and 502/503/504 are retried with
exponential backoff and jitter. Until the API has answered once, the budget is short
(``first_contact_budget``): a wrong URL is reported in seconds, while an API that answered
and then went away (a restart mid-deploy) gets the whole ``retry_budget``. A host name
that does not resolve is not retried at all.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:7071"
RETRY_STATUSES = {502, 503, 504}
FIRST_CONTACT_BUDGET = 10.0  # seconds of retrying before the API has ever answered


def cli_version() -> str:
    """The installed package's version (``cloudops --version``, the User-Agent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cloudops-control-plane")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


USER_AGENT = f"cloudops-cli/{cli_version()}"


class CliError(Exception):
    """An error that ends the command with ``exit_code`` and a one-line reason."""

    exit_code = 3

    def __init__(self, reason: str, exit_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if exit_code is not None:
            self.exit_code = exit_code


class Unreachable(CliError):
    """The API could not be reached (refused, reset, timed out, or kept answering 5xx)."""

    exit_code = 4


class ApiError(CliError):
    """The API answered with an error; ``problem`` is its RFC 9457 body when it sent one."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        title = problem.get("title") or _phrase(status)
        detail = problem.get("detail") or ""
        reason = f"HTTP {status} {title}" + (f": {detail}" if detail else "")
        if status == 401:
            reason += " (set CLOUDOPS_KEY, or --aad-scope for an Entra token)"
        # 4xx is the caller's to fix (usage/auth: exit 3); a 5xx means the API is unwell.
        super().__init__(reason, 3 if status < 500 else 4)


@dataclass
class Auth:
    """How requests are authenticated: a pipeline key, or an Entra token scope."""

    key: str | None = None
    aad_scope: str | None = None
    token_source: Callable[[str], str] | None = None  # default: entra_token

    def headers(self) -> dict[str, str]:
        if self.key:
            return {"x-functions-key": self.key}
        if self.aad_scope:
            token = (self.token_source or entra_token)(self.aad_scope)
            return {"Authorization": f"Bearer {token}"}
        return {}


def entra_token(scope: str) -> str:
    """A token for ``scope`` from DefaultAzureCredential (workload identity, managed
    identity, Azure CLI login...); a failure is an auth error, not a traceback."""
    try:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:  # pragma: no cover - azure-identity is a dependency
        raise CliError(f"azure-identity is not installed: {exc}") from None
    # azure-identity logs each failed credential as a warning; the reason below says it once.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    try:
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return str(credential.get_token(scope).token)
    except ClientAuthenticationError as exc:
        raise CliError(f"could not get an Entra token for {scope}: {_credential_reason(exc)}"
                       ) from None


def _credential_reason(exc: Exception) -> str:
    """The per-credential lines of DefaultAzureCredential's message, on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    attempted = [line for line in lines if line.split(":", 1)[0].endswith("Credential")]
    return "; ".join(attempted or lines[:1]) or type(exc).__name__


class ApiClient:
    """Sync JSON client: ``get``/``post`` return (parsed body, response headers)."""

    def __init__(self, base_url: str, auth: Auth, *, timeout: float = 30,
                 retry_budget: float = 60, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, float], None] | None = None,
                 first_contact_budget: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.retry_budget = retry_budget
        self.first_contact_budget = (retry_budget if first_contact_budget is None
                                     else min(first_contact_budget, retry_budget))
        self.answered = False  # has the API ever answered this client?
        self.clock = clock
        self.sleep = sleep
        self.on_retry = on_retry
        self.http = requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        self.http.headers["Accept"] = "application/json, application/problem+json"
        self._auth_headers: dict[str, str] | None = None

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)[0]

    def post(self, path: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, *,
             idempotent: bool = True) -> tuple[Any, dict[str, str]]:
        return self.request("POST", path, body=body if body is not None else {},
                            headers=headers, idempotent=idempotent)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None,
                idempotent: bool = True) -> tuple[Any, dict[str, str]]:
        """Send, retrying what is safe: anything never sent or answered 503; and, when
        ``idempotent``, also a connection lost mid-request and a gateway's 502/504."""
        if self._auth_headers is None:
            self._auth_headers = self.auth.headers()
        budget = self.retry_budget if self.answered else self.first_contact_budget
        deadline = self.clock() + budget
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            response: requests.Response | None = None
            try:
                response = self.http.request(
                    method, self.url(path), params=params, json=body, timeout=self.timeout,
                    headers={**self._auth_headers, **(headers or {})})
            except requests.RequestException as exc:
                problem = _describe(exc)
                if not idempotent and not _never_sent(exc):
                    raise Unreachable(f"lost the connection to {self.base_url} ({problem}); "
                                      "the request may or may not have been applied") from None
                if problem == "name or service not known":  # retrying will not make it resolve
                    raise Unreachable(self._unreachable(problem)) from None
            else:
                self.answered = True
                if response.status_code == 401 and self.auth.aad_scope and not self.auth.key \
                        and not refreshed:
                    # A long follow can outlive an Entra token (about an hour): get a new one.
                    refreshed = True
                    self._auth_headers = self.auth.headers()
                    continue
                retryable = RETRY_STATUSES if idempotent else {503}
                if response.status_code not in retryable:
                    return _parse(response)
                problem = f"HTTP {response.status_code}"
                if self.clock() >= deadline:
                    return _parse(response)
            delay = backoff(attempt, _retry_after(response))
            if self.clock() + delay > deadline:
                raise Unreachable(self._unreachable(problem, budget))
            if self.on_retry is not None:
                self.on_retry(problem, delay)
            self.sleep(delay)


    def _unreachable(self, problem: str, budget: float | None = None) -> str:
        tried = f" (retried for {budget:.0f}s)" if budget else ""
        hint = "" if self.answered else (
            "; check --url / CLOUDOPS_URL (`cloudops local` prints the line to export)")
        return f"could not reach the API at {self.base_url}: {problem}{tried}{hint}"


def backoff(attempt: int, floor: float | None = None, cap: float = 8.0) -> float:
    """Exponential backoff with full jitter on the top half: 0.25s, 0.5s, 1s ... ``cap``."""
    base = min(cap, 0.25 * 2.0 ** (attempt - 1))
    delay = base / 2 + random.uniform(0, base / 2)
    return max(delay, floor or 0.0)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("Retry-After", "")
    return min(float(raw), 30.0) if raw.isdigit() else None


def _never_sent(exc: requests.RequestException) -> bool:
    """Refused or timed out while connecting: the server never saw the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return "NewConnectionError" in repr(reason) or "Connection refused" in str(exc)


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        for marker in ("Connection refused", "Name or service not known",
                       "Connection reset", "Connection aborted", "RemoteDisconnected"):
            if marker in text:
                return marker.lower()
        return "connection failed"
    return type(exc).__name__


def _parse(response: requests.Response) -> tuple[Any, dict[str, str]]:
    headers = dict(response.headers)
    content_type = response.headers.get("Content-Type", "")
    body: Any = None
    if response.content:
        if "json" in content_type:
            try:
                body = response.json()
            except ValueError:
                body = None
        else:
            body = response.text
    if response.status_code >= 400:
        problem = body if isinstance(body, dict) else {
            "detail": (body or "").strip().splitlines()[0][:300] if isinstance(body, str)
            and body.strip() else ""}
        raise ApiError(response.status_code, problem)
    return body, headers
