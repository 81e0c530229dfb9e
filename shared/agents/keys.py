"""Agent keys and registration tokens: generation and keyed hashing.

Keys are random (256 bits) and stored only as HMAC-SHA256 under the server secret
``CLOUDOPS_AGENT_KEY_SECRET``, so a leaked database alone cannot be used to forge or
check keys offline. In local mode, when the secret is unset, one is generated once and
kept in ``<CLOUDOPS_HOME>/agent-key-secret`` (mode 0600) so keys survive a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from shared.settings import Settings

KEY_PREFIX = "coa_"     # agent API key
TOKEN_PREFIX = "cor_"   # registration token
_SECRET_FILE = "agent-key-secret"
_lock = threading.Lock()
_cache: dict[tuple[str | None, str, str], bytes] = {}


def new_agent_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_registration_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def key_hash(secret: bytes, key: str) -> str:
    """The stored form of a key or token: hex HMAC-SHA256 under the server secret."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def server_secret(settings: Settings) -> bytes:
    """The HMAC secret: the setting, or (local mode only) a generated, persisted one."""
    cache_key = (settings.agent_key_secret, settings.mode, str(settings.home))
    if cache_key in _cache:
        return _cache[cache_key]
    with _lock:
        if settings.agent_key_secret:
            secret = settings.agent_key_secret.encode()
        elif settings.mode == "azure":  # pragma: no cover - Settings validation forbids it
            raise RuntimeError("CLOUDOPS_AGENT_KEY_SECRET is required in azure mode")
        else:
            secret = _local_secret(Path(settings.home))
        _cache[cache_key] = secret
        return secret


def _local_secret(home: Path) -> bytes:
    path = home / _SECRET_FILE
    if path.exists():
        return path.read_text().strip().encode()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    # O_EXCL: two processes starting at once agree on whichever file was written first
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value.encode()


AGENT_KEY_HEADER = "X-CloudOps-Agent-Key"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The agent key from ``X-CloudOps-Agent-Key`` (what agents send: App Service
    authentication would read ``Authorization`` as an Entra token and refuse it), else
    from ``Authorization: Bearer`` (older agents, the local host)."""
    value = (headers.get(AGENT_KEY_HEADER) or headers.get(AGENT_KEY_HEADER.lower()) or "").strip()
    if value.startswith(KEY_PREFIX) and len(value) <= 200:
        return value
    return bearer_key(headers.get("authorization") or headers.get("Authorization"))


def bearer_key(authorization: str | None) -> str | None:
    """The agent key from an ``Authorization: Bearer`` header, if it looks like one."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value.startswith(KEY_PREFIX) or len(value) > 200:
        return None
    return value
