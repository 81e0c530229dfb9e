"""Access keys and the JWTs Azure SignalR Service accepts, as the emulation checks them.

Azure SignalR Service in serverless mode trusts two kinds of bearer token, both HS256 JWTs
signed with the resource's access key:

- client tokens (from a ``negotiate`` function): ``aud`` = the client URL
  ``{endpoint}/client/?hub={hub}``, the user id in ``nameid``, ``exp`` required;
- REST tokens (from the app server): ``aud`` = the request URL without its query.

Either may be signed with the access key itself or, for servers using managed identity,
with a key fetched from ``/api/v1/auth/accessKey`` and named by the ``kid`` header.

Audiences are compared after normalising case and a trailing slash before the query, as
the service does. Nothing here knows about the app: the key lives under the host's state
folder and is handed to the app through ``AzureSignalRConnectionString``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

ALGORITHMS = ["HS256"]
LEEWAY_SECONDS = 5


class TokenError(Exception):
    """The bearer token is missing, malformed, expired, mis-signed or for another URL."""


@dataclass(frozen=True)
class Claims:
    user_id: str | None
    expires_at: float
    raw: dict[str, Any]


def load_or_create_access_key(state_dir: Path) -> str:
    """The emulation's access key, generated once and kept (owner-only) under ``state_dir``."""
    path = Path(state_dir) / "signalr" / "access-key"
    if path.exists():
        key = path.read_text().strip()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Write then rename so a half-written key is never read by a second host.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    os.replace(tmp, path)
    return key


def connection_string(endpoint: str, access_key: str, *,
                      client_endpoint: str | None = None) -> str:
    client = f"ClientEndpoint={client_endpoint.rstrip('/')};" if client_endpoint else ""
    return f"Endpoint={endpoint.rstrip('/')};{client}AccessKey={access_key};Version=1.0;"


@functools.lru_cache(maxsize=4096)
def normalise_audience(url: str) -> str:
    """Lower-case scheme/host/path, drop a trailing slash of the path, keep the hub query."""
    parts = urlsplit(url.strip())
    path = unquote(parts.path).rstrip("/").lower()
    hub = ""
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() == "hub":
            hub = value.lower()
    base = f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"
    return f"{base}?hub={hub}" if hub else base


class KeyRing:
    """The resource's access key plus the keys handed to identity-authenticated servers.

    Servers without the key (managed identity) fetch a signing key with ``GET
    /api/v1/auth/accessKey`` and put its ``KeyId`` in the ``kid`` header of the tokens
    they sign, as the Azure SignalR SDKs do. Each such key is derived from the master key,
    so it survives a restart of the emulation like the service's keys do.
    """

    def __init__(self, master: str) -> None:
        self.master = master

    def issue(self) -> tuple[str, str]:
        kid = secrets.token_urlsafe(12)
        return kid, self._derive(kid)

    def key_for(self, kid: str | None) -> str:
        return self.master if kid is None else self._derive(kid)

    def _derive(self, kid: str) -> str:
        digest = hmac.new(self.master.encode(), f"kid:{kid}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode()


def verify(token: str, keys: KeyRing | str, audience: str) -> Claims:
    """Check signature, expiry and audience; return the claims or raise TokenError.

    The checks PyJWT's ``decode`` made for these tokens (HS256 signature, ``exp``
    required, ``iat``/``nbf`` not in the future, with a leeway), done directly: every REST
    publish is verified, and PyJWT took about half a millisecond per token, a tenth of
    the local host's CPU in the end-to-end bench. Reasons name PyJWT's exceptions, as
    before. A token verified before for the same URL and key is answered from a cache
    until it expires."""
    if not token:
        raise TokenError("no access token")
    ring = keys if isinstance(keys, KeyRing) else KeyRing(keys)
    now = time.time()
    seen = (token, ring.master, audience)
    if (known := _verified.get(seen)) is not None and known.expires_at > now - LEEWAY_SECONDS:
        return known
    claims = _decode(token, ring, now)
    audiences = claims.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or not any(
        isinstance(a, str) and normalise_audience(a) == normalise_audience(audience)
        for a in audiences
    ):
        raise TokenError("access token audience does not match this URL")
    user = claims.get("nameid") or claims.get("sub")
    verified = Claims(user_id=str(user) if user else None, expires_at=float(claims["exp"]),
                      raw=claims)
    if len(_verified) >= VERIFIED_CACHE:
        _verified.clear()
    _verified[seen] = verified
    return verified


# Tokens that passed, for this URL and key, until they expire: a server signs one token
# per URL and reuses it (``shared.realtime.rest``), so most publishes present a token
# already checked; its signature, audience and times are not checked again (the only
# check that changes with time, expiry, is). Bounded: cleared when full.
VERIFIED_CACHE = 4096
_verified: dict[tuple[str, str, str], Claims] = {}


def _invalid(reason: str) -> TokenError:
    return TokenError(f"invalid access token: {reason}")


def _segment(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("DecodeError") from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(text))
    except ValueError:
        raise _invalid("DecodeError") from None
    if not isinstance(value, dict):
        raise _invalid("DecodeError")
    return value


def _integer(value: Any, reason: str) -> int:
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise _invalid(reason) from None


def _decode(token: str, ring: KeyRing, now: float) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid("DecodeError")
    header = _json_object(parts[0])
    if header.get("alg") not in ALGORITHMS:
        raise _invalid("InvalidAlgorithmError")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _invalid("InvalidTokenError")
    key = ring.key_for(kid)
    signed = f"{parts[0]}.{parts[1]}".encode()
    expected = hmac.new(key.encode(), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _segment(parts[2])):
        raise _invalid("InvalidSignatureError")
    claims = _json_object(parts[1])
    if "exp" not in claims:
        raise _invalid("MissingRequiredClaimError")
    if _integer(claims["exp"], "DecodeError") <= now - LEEWAY_SECONDS:
        raise TokenError("access token expired")
    if "iat" in claims and _integer(claims["iat"], "InvalidIssuedAtError") > now + LEEWAY_SECONDS:
        raise _invalid("ImmatureSignatureError")
    if "nbf" in claims and _integer(claims["nbf"], "DecodeError") > now + LEEWAY_SECONDS:
        raise _invalid("ImmatureSignatureError")
    return claims


def issue(access_key: str, audience: str, *, user_id: str | None, ttl_seconds: int,
          now: float) -> str:
    """A client token, as the service's own ``:generateToken`` REST call returns."""
    payload: dict[str, Any] = {"aud": audience, "iat": int(now),
                               "exp": int(now) + ttl_seconds}
    if user_id:
        payload["nameid"] = user_id
    return jwt.encode(payload, access_key, algorithm="HS256")
