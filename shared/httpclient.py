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

import socket
import ssl
import threading
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
           "RequestException", "header_lines", "keep_alive", "new_session", "pool",
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
    """A request of ``KeepAlivePool`` got no well-formed answer (connection refused, reset,
    timed out, or not HTTP/1.x)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


_NO_BODY_STATUSES = frozenset({204, 304})
_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


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


def header_lines(headers: dict[str, str]) -> str:
    """``Name: value\r\n`` lines for ``KeepAlivePool.request``; a name or value that would
    break the request's framing is refused."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if lines.count("\n") != len(headers) or lines.count("\r") != len(headers):
        raise ValueError("header names and values must not contain CR or LF")
    return lines


class KeepAlivePool:
    """Keep-alive HTTP/1.1 connections to one origin, for one hot path of small requests
    (the SignalR publisher: several REST publishes per task). Each call takes an idle
    connection (or opens one), writes the whole request in one ``sendall``, reads the
    status line, the headers it needs and the body (``Content-Length`` or chunked), and
    puts the connection back. urllib3 under requests costs several times more CPU per
    call (URL parsing, pool lookup, header objects, the ``email`` header parser).

    Like ``STALE_RETRY``, a request on a pooled connection that the server had already
    closed (nothing at all came back) is sent once more on a new connection. No proxies,
    no redirects; TLS is verified against the host (SNI) with the default context."""

    def __init__(self, base_url: str, *, size: int = POOL_SIZE, connect_timeout: float = 1.0,
                 read_timeout: float = 3.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._hostname = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self._size = size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[socket.socket] = []
        self._closed = False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._hostname, self._port), self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._read_timeout)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._hostname)
        except BaseException:
            sock.close()
            raise
        return sock

    def request(self, method: str, target: str, headers: str = "",
                body: bytes | None = None) -> Reply:
        """``target``: path and query; ``headers``: ``"Name: value\\r\\n"`` lines (no Host
        or Content-Length). Raises ``HTTPFailure`` (or ``OSError``) without an answer."""
        length = "" if body is None and method in ("GET", "HEAD") \
            else f"Content-Length: {len(body or b'')}\r\n"
        data = (f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n{headers}"
                f"{length}\r\n").encode("latin-1")
        if body:
            data += body
        for attempt in (0, 1):
            try:
                sock = self._idle.pop()
                reused = True
            except IndexError:
                sock = self._connect()
                reused = False
            try:
                reply, keep = self._exchange(sock, data, method == "HEAD")
            except _Stale:
                sock.close()
                if reused and attempt == 0:
                    continue
                raise HTTPFailure("connection closed before an answer") from None
            except BaseException:
                sock.close()
                raise
            if keep and not self._closed and len(self._idle) < self._size:
                self._idle.append(sock)
            else:
                sock.close()
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _exchange(sock: socket.socket, data: bytes, head: bool) -> tuple[Reply, bool]:
        try:
            sock.sendall(data)
            buffer = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLError):
            raise _Stale from None  # (a TLS connection the server closed ends like this)
        if not buffer:
            raise _Stale
        while True:
            end = buffer.find(_HEAD_END)
            while end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise HTTPFailure("response head too large")
                more = sock.recv(65536)
                if not more:
                    raise HTTPFailure("connection closed in the response head")
                buffer += more
                end = buffer.find(_HEAD_END)
            lines = buffer[:end].decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
                raise HTTPFailure("not an HTTP/1.x response")
            status = int(rest[:3])
            buffer = buffer[end + 4:]
            if 100 <= status < 200:  # an interim answer: the final one follows
                continue
            break
        length: int | None = None
        chunked = False
        keep = version == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                tokens = value.lower()
                keep = "close" not in tokens and (keep or "keep-alive" in tokens)
        if head or status in _NO_BODY_STATUSES:
            body = b""
        elif chunked:
            body, buffer = _read_chunked(sock, buffer)
        elif length is not None:
            while len(buffer) < length:
                more = sock.recv(max(65536, length - len(buffer)))
                if not more:
                    raise HTTPFailure("connection closed in the response body")
                buffer += more
            body, buffer = buffer[:length], buffer[length:]
        else:  # the body runs to the end of the connection
            parts = [buffer]
            while more := sock.recv(65536):
                parts.append(more)
            body, buffer, keep = b"".join(parts), b"", False
        return Reply(status, body), keep and not buffer

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


class _Stale(Exception):
    """Nothing came back on the connection (a pooled one the server had closed)."""


def _read_chunked(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    parts: list[bytes] = []
    while True:
        while (line_end := buffer.find(b"\r\n")) < 0:
            more = sock.recv(65536)
            if not more:
                raise HTTPFailure("connection closed in a chunked body")
            buffer += more
        size_text = buffer[:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HTTPFailure("malformed chunk size") from None
        buffer = buffer[line_end + 2:]
        if size == 0:  # trailers, then an empty line
            while (trailer_end := buffer.find(b"\r\n")) != 0:
                if trailer_end > 0:
                    buffer = buffer[trailer_end + 2:]
                    continue
                more = sock.recv(65536)
                if not more:
                    raise HTTPFailure("connection closed in chunk trailers")
                buffer += more
            return b"".join(parts), buffer[2:]
        while len(buffer) < size + 2:
            more = sock.recv(65536)
            if not more:
                raise HTTPFailure("connection closed in a chunk")
            buffer += more
        parts.append(buffer[:size])
        buffer = buffer[size + 2:]
