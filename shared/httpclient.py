"""The one HTTP client of ``shared/``: requests, the library azure-core's transport (and so
every Azure SDK adapter here) already uses.

``session()`` is the process's pooled session: keep-alive connections per host in
urllib3 pools (thread-safe), as many per host as the Functions worker has threads, one
retry of a pooled connection the server had already closed, and no proxies or netrc from
the environment (callers talk to Azure endpoints and the local host directly).

``pool()`` is the urllib3 pool under that session, for the SignalR publisher's hot path.

``post_pinned`` is for URLs a user chose (webhooks): the connection goes only to the
address the caller checked, TLS is verified against (and SNI names) the host, redirects
are not followed, nothing is retried, and at most ``read_limit`` bytes of the answer are
read.
"""

from __future__ import annotations

import atexit
import http.client
import socket
import ssl
import threading
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

__all__ = ["STALE_RETRY", "HTTPFailure", "KeepAlivePool", "PinnedResponse", "Reply",
           "RequestException", "keep_alive", "new_session", "pool",
           "post_pinned", "session"]

RequestException = requests.RequestException
# The Functions worker's PYTHON_THREADPOOL_THREAD_COUNT tops out at 32: with fewer pooled
# connections, a burst of calls from its threads opens and drops a connection per call.
POOL_SIZE = 32

# One retry covers a pooled keep-alive connection the server already closed.
STALE_RETRY = Retry(total=1, connect=1, read=1, status=0, redirect=0, other=0,
                    allowed_methods=None, raise_on_status=False)

_lock = threading.Lock()
_session: requests.Session | None = None


def session() -> requests.Session:
    """The process-wide pooled session."""
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                _session = new_session()
    return _session


def new_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A session configured like ``session()``, for a caller that needs its own pool size
    (benchmarks); everything else shares ``session()``."""
    http = requests.Session()
    http.trust_env = False
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=STALE_RETRY)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def pool(pool_size: int = POOL_SIZE) -> PoolManager:
    """The connection pool under ``session()`` (or under a session of its own, for another
    ``pool_size``), for the one hot path where requests' own per-call work shows: SignalR
    publishing, several calls per task (requests costs about 0.2 ms more CPU per call than
    its urllib3 pool here). Same connections; pass ``timeout`` and ``retries=STALE_RETRY``
    with each call."""
    http = session() if pool_size == POOL_SIZE else new_session(pool_size)
    adapter = http.get_adapter("https://")
    assert isinstance(adapter, HTTPAdapter)  # what new_session mounts
    manager: PoolManager = adapter.poolmanager
    return manager


@dataclass(frozen=True)
class PinnedResponse:
    status: int
    head: bytes  # the first ``read_limit`` bytes of the body


def _connect_literal(address: str, port: int, timeout: object) -> socket.socket:
    """A TCP connection to an IP literal with no name lookup at all (urllib3's own connect
    would call getaddrinfo, even for a literal)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout if isinstance(timeout, int | float) else None)
        sock.connect((address, port))
    except OSError:
        sock.close()
        raise
    return sock


class _LiteralHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_literal(self._dns_host, self.port, self.timeout)


class _LiteralHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_literal(self._dns_host, self.port, self.timeout)


class _LiteralHTTPPool(HTTPConnectionPool):
    ConnectionCls = _LiteralHTTPConnection


class _LiteralHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _LiteralHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    """Connections to an IP literal (no lookup) whose TLS is checked against ``host``."""

    def __init__(self, host: str) -> None:
        self._host = host
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, server_hostname=self._host,
                                 assert_hostname=self._host, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _LiteralHTTPPool,
                                                   "https": _LiteralHTTPSPool}


def post_pinned(scheme: str, host: str, port: int, address: str, path: str, body: bytes, *,
                headers: dict[str, str], timeout: float,
                read_limit: int = 1024) -> PinnedResponse:
    """POST to ``address`` (already checked by the caller) as if to ``host``."""
    literal = f"[{address}]" if ":" in address else address
    named = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    with requests.Session() as pinned:
        pinned.trust_env = False
        pinned.mount(f"{scheme}://", _PinnedAdapter(host))
        response = pinned.post(
            f"{scheme}://{literal}:{port}{path}", data=body, timeout=timeout,
            allow_redirects=False, stream=True,
            headers={**headers, "Host": named if port == default_port else f"{named}:{port}"})
        with response:
            return PinnedResponse(response.status_code, response.raw.read(read_limit))


class HTTPFailure(Exception):
    """A request of ``KeepAlivePool`` got no well-formed answer (the connection closed or
    reset before one, or what came back was not HTTP/1.x)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


_keep_alive: dict[tuple[str, float], KeepAlivePool] = {}


def keep_alive(base_url: str, read_timeout: float = 3.0) -> KeepAlivePool:
    """The process's ``KeepAlivePool`` for ``base_url``'s origin (callers built per request,
    like the local Service Bus adapter, share its warm connections)."""
    parts = urlsplit(base_url)
    key = (f"{parts.scheme}://{parts.netloc}", read_timeout)
    found = _keep_alive.get(key)
    if found is None:
        with _lock:
            found = _keep_alive.setdefault(key, KeepAlivePool(key[0],
                                                              read_timeout=read_timeout))
    return found


_open_pools: weakref.WeakSet[KeepAlivePool] = weakref.WeakSet()


@atexit.register
def _close_open_pools() -> None:
    """Idle keep-alive connections are closed at exit, not left to the collector."""
    for open_pool in list(_open_pools):
        open_pool.close()


# What a pooled connection the server had already closed looks like when it is used again.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError, ssl.SSLEOFError)


class KeepAlivePool:
    """Warm keep-alive connections to one origin, for a hot path of small requests (the
    SignalR publisher: several REST publishes per task; the local Service Bus send), on the
    standard library's ``http.client``: a caller takes an idle connection (or opens one),
    sends, reads the whole answer and puts the connection back. urllib3 under requests
    costs several times more CPU per call (URL parsing, pool lookup, retry and header
    objects) for features these calls do not use.

    Like ``STALE_RETRY``, a request on a pooled connection that the server had already
    closed is sent once more on a new connection. No proxies, no redirects; TLS is verified
    against the host (SNI) with the default context. Thread-safe: the idle list is only
    appended to and popped from."""

    def __init__(self, base_url: str, *, size: int = POOL_SIZE, connect_timeout: float = 1.0,
                 read_timeout: float = 3.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._hostname = parts.hostname
        self._port = parts.port
        self._size = size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._closed = False
        _open_pools.add(self)

    def _connect(self) -> http.client.HTTPConnection:
        conn = (http.client.HTTPSConnection(self._hostname, self._port, context=self._tls,
                                            timeout=self._connect_timeout)
                if self._tls is not None else
                http.client.HTTPConnection(self._hostname, self._port,
                                           timeout=self._connect_timeout))
        conn.connect()  # (sets TCP_NODELAY)
        assert conn.sock is not None
        conn.sock.settimeout(self._read_timeout)
        return conn

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Reply:
        """``target``: path and query. Host and Content-Length are added. Raises
        ``HTTPFailure`` (or ``OSError``: refused, timed out) without an answer, and
        ``ValueError`` for a header that would break the request's framing (CR/LF)."""
        for attempt in (0, 1):
            try:
                conn = self._idle.pop()
                reused = True
            except IndexError:
                conn = self._connect()
                reused = False
            try:
                conn.request(method, target, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
            except _STALE as exc:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise HTTPFailure(f"connection closed before an answer ({exc})") from None
            except http.client.HTTPException as exc:
                conn.close()
                raise HTTPFailure(f"not an HTTP/1.x answer ({type(exc).__name__})") from None
            except BaseException:
                conn.close()
                raise
            if not response.will_close and not self._closed and len(self._idle) < self._size:
                self._idle.append(conn)
            else:
                conn.close()
            return Reply(response.status, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
