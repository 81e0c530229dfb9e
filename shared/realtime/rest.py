"""``RestRealtime``: the Realtime port over the Azure SignalR Service REST API (2022-06-01).

The same adapter talks to Azure and to the local host's emulation. Requests are
authorised with an HS256 JWT (``aud`` = the request URL without query) signed with the
AccessKey or, without a key, with a key the service hands out for a Microsoft Entra token
(``DefaultAzureCredential``; role SignalR App Server), named by the JWT's ``kid``.
Publishing is called many times per task from activities and HTTP functions, so it must
cost about one round trip and little CPU: publishes go through a ``KeepAlivePool`` of their
own (``shared.httpclient``: warm connections, the request written in one piece) with a
token signed once per URL and reused; membership changes and the access-key fetch use
the process's urllib3 pool (``shared.httpclient.pool()``).
Called from a coroutine (an ``async def`` function on the host's loop), a publish is
queued to one background thread instead of blocking the loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

from shared.azure_credential import SIGNALR_APP_SERVER, AzureRole
from shared.errors import NotFound, Unavailable
from shared.httpclient import POOL_SIZE, STALE_RETRY, KeepAlivePool, pool
from shared.realtime.connection_string import ServiceEndpoint
from shared.realtime.port import ConnectionInfo

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger("cloudops.realtime")
AZURE_ROLES = (AzureRole("shared/realtime: SignalR REST publish and client tokens with Entra",
                         "Microsoft.SignalRService/signalR", (SIGNALR_APP_SERVER,)),)
API_VERSION = "2022-06-01"
ENTRA_SCOPE = "https://signalr.azure.com/.default"
ACCESS_KEY_PATH = "/api/v1/auth/accessKey"
ENTRA_KEY_REFRESH = 45 * 60
TOKEN_LIFETIME = 3600
# After a failed publish, further publishes are skipped briefly instead of each waiting
# for its own timeout: a task must not slow down because the browser channel is down.
BACKOFF_SECONDS = 1.0


def _segment(name: str) -> str:
    return quote(name, safe="")


class RestRealtime:
    def __init__(self, service: ServiceEndpoint, hub: str, *,
                 credential: TokenCredential | None = None, timeout: float = 3.0,
                 pool_size: int = POOL_SIZE, clock: Callable[[], float] = time.time) -> None:
        if service.access_key is None and credential is None:
            raise ValueError("RestRealtime needs an access key or a credential")
        self.service = service
        self.hub = hub
        self._credential = credential
        self._clock = clock
        # The process's pool (shared.httpclient), as many connections as the worker threads
        # that may call at once, unless a caller asks for another size.
        self._http = pool(pool_size)
        self._own_pool = pool_size != POOL_SIZE
        self._timeout = urllib3.Timeout(connect=min(1.0, timeout), read=timeout)
        self._publisher = KeepAlivePool(service.endpoint, size=pool_size,
                                        connect_timeout=min(1.0, timeout), read_timeout=timeout)
        self._endpoint_path = urlsplit(service.endpoint).path.rstrip("/")
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float, str | None]] = {}
        self._entra_key: tuple[str, str, float] | None = None
        self._down_until = 0.0
        self._executor: ThreadPoolExecutor | None = None

    # authorisation
    def _key(self) -> tuple[str | None, str]:
        """``(kid, key)`` to sign tokens with: the AccessKey, or with managed identity a key
        fetched from ``/api/v1/auth/accessKey`` (what the SignalR App Server role allows,
        and how the Azure SignalR SDKs sign), refreshed well before the service rotates it."""
        if self.service.access_key is not None:
            return None, self.service.access_key
        now = self._clock()
        fetched = self._entra_key
        if fetched is None or now - fetched[2] > ENTRA_KEY_REFRESH:
            with self._lock:
                fetched = self._entra_key
                if fetched is None or now - fetched[2] > ENTRA_KEY_REFRESH:
                    fetched = self._fetch_entra_key(now)
                    self._entra_key = fetched
        return fetched[0], fetched[1]

    def _fetch_entra_key(self, now: float) -> tuple[str, str, float]:
        assert self._credential is not None  # without an access key (checked in __init__)
        entra = self._credential.get_token(ENTRA_SCOPE).token
        response = self._http.request(
            "GET", f"{self.service.endpoint}{ACCESS_KEY_PATH}",
            headers={"Authorization": f"Bearer {entra}"}, timeout=self._timeout,
            retries=STALE_RETRY)
        if response.status != 200:
            raise Unavailable(f"real-time service refused an access key: HTTP {response.status}")
        try:
            body = json.loads(response.data)
            return str(body["KeyId"]), str(body["AccessKey"]), now
        except (ValueError, KeyError, TypeError):
            raise Unavailable("real-time service returned no access key") from None

    def _sign(self, claims: dict[str, Any]) -> str:
        kid, key = self._key()
        return sign_hs256(claims, key, kid)

    def _bearer(self, url: str) -> str:
        now = self._clock()
        kid = self._key()[0]
        cached = self._tokens.get(url)
        if cached and cached[1] - now > 300 and cached[2] == kid:
            return cached[0]
        token = self._sign({"aud": url, "iat": int(now), "exp": int(now) + TOKEN_LIFETIME})
        with self._lock:
            if len(self._tokens) > 4096:  # task groups come and go; keep the cache bounded
                self._tokens.clear()
            self._tokens[url] = (token, now + TOKEN_LIFETIME, kid)
        return token

    def _url(self, path: str) -> str:
        return f"{self.service.endpoint}/api/hubs/{_segment(self.hub)}{path}"

    def _request(self, method: str, path: str, body: Any = None,
                 query: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        url = self._url(path)
        headers = {"Authorization": f"Bearer {self._bearer(url)}"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), default=str).encode()
            headers["Content-Type"] = "application/json"
        params = {"api-version": API_VERSION, **(query or {})}
        return self._http.request(method, f"{url}?{urlencode(params)}", body=data,
                                  headers=headers, timeout=self._timeout, retries=STALE_RETRY)

    # publishing: best effort
    def _publish(self, path: str, target: str, args: list[Any]) -> bool:
        if _on_event_loop():
            # A blocking call here would stall the loop (and, in the local host, the very
            # server it is calling): hand it to one background thread, in call order.
            self._background().submit(self._publish_now, path, target, args)
            return True
        return self._publish_now(path, target, args)

    def _background(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="realtime-publish")
            return self._executor

    def _publish_now(self, path: str, target: str, args: list[Any]) -> bool:
        if self._clock() < self._down_until:
            return False
        try:
            url = self._url(path)
            body = json.dumps({"target": target, "arguments": args}, separators=(",", ":"),
                              default=str).encode()
            response = self._publisher.request(
                "POST", f"{self._endpoint_path}/api/hubs/{_segment(self.hub)}{path}"
                        f"?api-version={API_VERSION}",
                {"Authorization": f"Bearer {self._bearer(url)}",
                 "Content-Type": "application/json"}, body)
        except Exception as exc:  # any transport or credential failure: log, never raise
            self._down_until = self._clock() + BACKOFF_SECONDS
            log.warning("realtime publish of %s to %s failed: %s (skipping publishes for "
                        "%.0f s)", target, path, type(exc).__name__, BACKOFF_SECONDS)
            return False
        if response.status >= 300:
            log.warning("realtime publish of %s to %s refused: HTTP %s", target, path,
                        response.status)
            return False
        return True

    def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        return self._publish(f"/groups/{_segment(group)}/:send", target, args)

    def send_to_user(self, user_id: str, target: str, args: list[Any]) -> bool:
        return self._publish(f"/users/{_segment(user_id)}/:send", target, args)

    def send_to_all(self, target: str, args: list[Any]) -> bool:
        return self._publish("/:send", target, args)

    # membership and negotiation: the caller needs the answer
    def _call(self, method: str, path: str, query: dict[str, str] | None = None
              ) -> urllib3.BaseHTTPResponse:
        try:
            response = self._request(method, path, query=query)
        except Exception as exc:
            log.warning("realtime %s %s failed: %s", method, path, type(exc).__name__)
            raise Unavailable("real-time service unreachable") from None
        if response.status == 404:
            raise NotFound("no such real-time connection", field="connectionId")
        if response.status >= 300:
            log.warning("realtime %s %s refused: HTTP %s", method, path, response.status)
            raise Unavailable("real-time service refused the request")
        return response

    def add_to_group(self, group: str, connection_id: str) -> None:
        self._call("PUT", f"/groups/{_segment(group)}/connections/{_segment(connection_id)}")

    def remove_from_group(self, group: str, connection_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: the wanted end state
            self._call("DELETE",
                       f"/groups/{_segment(group)}/connections/{_segment(connection_id)}")

    def negotiate(self, user_id: str | None, ttl: int = 3600) -> ConnectionInfo:
        url = f"{self.service.client_endpoint}/client/?hub={quote(self.hub, safe='')}"
        now = int(self._clock())
        claims: dict[str, Any] = {"aud": url, "iat": now, "exp": now + ttl}
        if user_id:
            claims["nameid"] = user_id
        try:
            token = self._sign(claims)
        except Unavailable:
            raise
        except Exception as exc:  # credential failures: the caller gets a clean 503
            log.warning("realtime negotiate failed: %s", type(exc).__name__)
            raise Unavailable("real-time service unreachable") from None
        return {"url": url, "accessToken": token}

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._publisher.close()
        if self._own_pool:
            self._http.clear()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_hs256(claims: dict[str, Any], key: str, kid: str | None = None) -> str:
    """An HS256 JWT (what PyJWT's ``encode`` makes for these claims, without its
    per-call overhead: a new task group's first publish signs one)."""
    header: dict[str, str] = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing = b".".join(_b64(json.dumps(part, separators=(",", ":")).encode())
                        for part in (header, claims))
    signature = hmac.new(key.encode(), signing, hashlib.sha256).digest()
    return (signing + b"." + _b64(signature)).decode()
