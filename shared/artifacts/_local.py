"""Backup artifacts on the local disk, behind HMAC-signed, expiring URLs.

Files live under ``<CLOUDOPS_HOME>/artifacts/<name>``. URLs point at the function app's
own ``/api/artifacts/{name}`` endpoint (functions/http/artifacts.py) and carry
``expires`` (unix seconds) and ``sig`` = HMAC-SHA256 over method, name and expiry, so an
upload URL cannot be used to read and a URL cannot be retargeted at another file. The key
is ``CLOUDOPS_ARTIFACT_SECRET`` or, in local mode, a random key generated once and kept
in ``<CLOUDOPS_HOME>/artifact-secret``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from shared.artifacts._port import ArtifactStore, PayloadTooLarge, check_name, check_ttl
from shared.clock import Clock, SystemClock
from shared.errors import ConstraintViolation, Forbidden, NotFound

LOCATION_PREFIX = "local:"


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: Path, secret: bytes, base_url: str, *,
                 clock: Clock | None = None, max_bytes: int = 4 * 1024**3) -> None:
        if len(secret) < 16:
            raise ValueError("artifact signing secret must be at least 16 bytes")
        self.root = root
        self.max_bytes = max_bytes
        self._secret = secret
        self._base = base_url.rstrip("/") + "/api/artifacts/"
        self._clock = clock or SystemClock()

    # -- URLs -----------------------------------------------------------------------------

    def upload_url(self, name: str, ttl: timedelta) -> str:
        return self._url("PUT", check_name(name), check_ttl(ttl))

    def download_url(self, name: str, ttl: timedelta) -> str:
        return self._url("GET", check_name(name), check_ttl(ttl))

    def _url(self, method: str, name: str, ttl: timedelta) -> str:
        expires = int((self._clock.now() + ttl).timestamp())
        query = urlencode({"expires": expires, "sig": self._sign(method, name, expires)})
        return f"{self._base}{quote(name)}?{query}"

    def _sign(self, method: str, name: str, expires: int) -> str:
        message = f"{method}\n{name}\n{expires}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, method: str, name: str, expires: str | None, sig: str | None) -> None:
        """Raise Forbidden unless ``sig`` signs this method, name and unexpired ``expires``."""
        if not expires or not sig or not expires.isdigit():
            raise Forbidden("artifact URL is not signed")
        expected = self._sign(method.upper(), name, int(expires))
        if not hmac.compare_digest(expected, sig):
            raise Forbidden("artifact URL signature does not match")
        if int(expires) < self._clock.now().timestamp():
            raise Forbidden("artifact URL has expired")

    # -- files ----------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def save(self, name: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write the chunks to ``name`` atomically; return (size, sha256 hex).

        Written to a temporary file beside the target and renamed into place, so a reader
        never sees half a file and a refused upload leaves nothing behind.
        """
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            f"artifact larger than {self.max_bytes} bytes", field="body")
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    def open(self, name: str) -> Path:
        """The file of an existing artifact, or NotFound."""
        path = self.path(name)
        if not path.is_file():
            raise NotFound(f"artifact {name} does not exist")
        return path

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def location(self, name: str) -> str:
        return LOCATION_PREFIX + check_name(name)

    def name_of(self, location: str) -> str:
        if not location.startswith(LOCATION_PREFIX):
            raise ConstraintViolation("not a local artifact location", field="location")
        return check_name(location.removeprefix(LOCATION_PREFIX))


def local_secret(configured: str | None, home: Path) -> bytes:
    """The configured signing key, else one generated once and kept under ``home``."""
    if configured:
        return configured.encode()
    path = home / "artifact-secret"
    if path.exists():
        return path.read_text().strip().encode()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # Written aside, then hard-linked into place: link() fails if the file exists, so when
    # two processes race the loser reads the winner's complete key, never a half-written one.
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".artifact-secret-")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(value)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip().encode()
    finally:
        Path(tmp).unlink(missing_ok=True)
    return value.encode()
