"""A password-checking front for the local Postgres, which trusts every local login.

It speaks the start of the Postgres wire protocol the way Azure's Flexible Server does for
Entra logins — declines TLS/GSS, asks for a cleartext password, refuses a wrong one with
SQLSTATE 28P01 — and then forwards the client's original startup message to the real
server and pipes bytes both ways. So the token really travels as the password and the
queries really run on Postgres.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

_SSL, _GSS, _CANCEL, _V3 = 80877103, 80877104, 80877102, 196608


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


class PasswordProxy:
    def __init__(self, upstream: tuple[str, int] | str,
                 accepts: Callable[[str, str], bool]) -> None:
        """``upstream``: (host, port), or the path of the server's unix socket."""
        self.upstream = upstream
        self.accepts = accepts  # (user, password) -> ok
        self.seen: list[tuple[str, str]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self._closing = True
        self._server.close()

    def _serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            try:
                while True:
                    length, code = struct.unpack("!ii", _read_exact(client, 8))
                    body = _read_exact(client, length - 8)
                    if code in (_SSL, _GSS):
                        client.sendall(b"N")
                        continue
                    break
                if code != _V3:
                    return
                startup = struct.pack("!ii", length, code) + body
                fields = body.rstrip(b"\0").split(b"\0")
                params = dict(zip(fields[::2], fields[1::2], strict=False))
                user = params.get(b"user", b"").decode()
                client.sendall(b"R" + struct.pack("!ii", 8, 3))  # cleartext password, please
                kind = _read_exact(client, 1)
                (size,) = struct.unpack("!i", _read_exact(client, 4))
                password = _read_exact(client, size - 4).rstrip(b"\0").decode()
                self.seen.append((user, password))
                if kind != b"p" or not self.accepts(user, password):
                    msg = (b"SFATAL\0VFATAL\0C28P01\0M"
                           + f'password authentication failed for user "{user}"'.encode()
                           + b"\0\0")
                    client.sendall(b"E" + struct.pack("!i", len(msg) + 4) + msg)
                    return
                upstream = stack.enter_context(_connect(self.upstream))
                upstream.sendall(startup)
                done = threading.Event()
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(src, dst, done), daemon=True).start()
                done.wait()
            except (ConnectionError, OSError):
                return


def _connect(target: tuple[str, int] | str) -> socket.socket:
    if isinstance(target, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target)
        return sock
    return socket.create_connection(target)


def _pipe(src: socket.socket, dst: socket.socket, done: threading.Event) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        done.set()
