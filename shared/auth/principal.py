"""Parse the caller from request headers.

Three kinds of caller reach the user API:
- people, through Static Web Apps or App Service Easy Auth: ``x-ms-client-principal`` is
  base64 JSON, in the SWA shape ``{identityProvider, userId, userDetails, userRoles}`` or
  the App Service shape ``{auth_typ, claims: [{typ, val}], name_typ, role_typ}``;
- pipelines with a named key (``x-functions-key`` header or ``code`` query), checked
  against hashed keys in ``CLOUDOPS_PIPELINE_KEYS``: they act as service principal
  ``<name>``. (The Functions host's own key check cannot sit in front of routes that
  the SWA linked backend also serves, so the app verifies keys itself.)
- pipelines with an Entra app token: App Service Easy Auth validates it and passes a
  principal whose claims carry ``appid``/``azp`` and no user: a service principal.

Agents never authenticate here: their keys reach only the agent endpoints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.errors import Unauthorized

_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_GROUP_CLAIMS = ("groups",)
_NAME_CLAIMS = ("name", "preferred_username",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
_OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "service"]
    id: str
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    identity_provider: str = "aad"

    @property
    def actor(self) -> str:
        """How this caller appears in the activity log and on tasks."""
        return self.name if self.kind == "user" else f"service:{self.id}"


def _b64json(raw: str) -> dict[str, Any]:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = json.loads(base64.b64decode(padded, validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Unauthorized("x-ms-client-principal is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise Unauthorized("x-ms-client-principal must encode a JSON object")
    return data


def _from_swa(data: dict[str, Any]) -> Principal:
    user_id, details = data.get("userId"), data.get("userDetails")
    roles = data.get("userRoles") or []
    if not isinstance(user_id, str) or not user_id or not isinstance(roles, list):
        raise Unauthorized("x-ms-client-principal lacks userId/userRoles")
    return Principal(kind="user", id=user_id, name=str(details or user_id),
                     roles=frozenset(str(r) for r in roles) - {"anonymous"},
                     identity_provider=str(data.get("identityProvider") or "aad"))


def _from_app_service(data: dict[str, Any]) -> Principal:
    claims = data.get("claims")
    if not isinstance(claims, list):
        raise Unauthorized("x-ms-client-principal claims must be a list")
    values: dict[str, list[str]] = {}
    for claim in claims:
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str):
            values.setdefault(claim["typ"], []).append(str(claim.get("val", "")))
    role_typ = data.get("role_typ") or _ROLE_CLAIMS[1]
    name_typ = data.get("name_typ") or _NAME_CLAIMS[2]

    def first(*types: str) -> str | None:
        for t in types:
            if values.get(t):
                return values[t][0]
        return None

    roles = frozenset(v for t in {role_typ, *_ROLE_CLAIMS} for v in values.get(t, []))
    groups = frozenset(v for t in _GROUP_CLAIMS for v in values.get(t, []))
    oid = first(*_OID_CLAIMS)
    name = first(name_typ, *_NAME_CLAIMS)
    app_id = first("appid", "azp")
    if name is None and app_id is not None:  # an app token: no user behind it
        return Principal(kind="service", id=app_id, name=app_id, roles=roles, groups=groups)
    if oid is None and name is None:
        raise Unauthorized("x-ms-client-principal carries no user or app identity")
    return Principal(kind="user", id=oid or str(name), name=name or str(oid), roles=roles,
                     groups=groups, identity_provider=str(data.get("auth_typ") or "aad"))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_pipeline_keys(raw: str | None) -> dict[str, str]:
    """``name=sha256hex,name2=sha256hex`` → {hash: name}."""
    keys: dict[str, str] = {}
    for part in (raw or "").split(","):
        if "=" in part:
            name, digest = part.split("=", 1)
            keys[digest.strip().lower()] = name.strip()
    return keys


def parse_principal(headers: Mapping[str, str], params: Mapping[str, str] | None = None, *,
                    pipeline_keys: Mapping[str, str] | None = None) -> Principal:
    """The authenticated caller, or ``Unauthorized`` naming what is wrong or missing."""
    lower = {k.lower(): v for k, v in headers.items()}
    key = lower.get("x-functions-key") or (params or {}).get("code")
    if key:
        digest = hash_key(key)
        for known, name in (pipeline_keys or {}).items():
            if hmac.compare_digest(known, digest):
                return Principal(kind="service", id=name, name=name)
        raise Unauthorized(
            "the key is not valid: it is none of the pipeline keys (CLOUDOPS_PIPELINE_KEYS). "
            "A host's master key opens only the admin API (/admin/*); send a function key "
            "(locally the 'function (default)' key `cloudops local` prints)", field="key")
    raw = lower.get("x-ms-client-principal")
    if not raw:
        raise Unauthorized("sign in first: no Easy Auth principal or key on the request")
    data = _b64json(raw)
    # SWA principals carry userId (SWA CLI cookies add claims too); App Service ones don't.
    return _from_swa(data) if "userId" in data else _from_app_service(data)
