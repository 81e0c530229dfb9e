"""Parse the caller from request headers.

Three kinds of caller reach the user API:
- people, through the Static Web App linked to the Function App: App Service
  authentication (the "Azure Static Web Apps (Linked)" provider) vouches for them with
  ``x-ms-client-principal-idp: azureStaticWebApps`` and ``x-ms-client-principal`` in the
  SWA shape ``{identityProvider, userId, userDetails, userRoles}``;
- pipelines with an Entra app token: App Service authentication validates it (only the
  applications the Bicep allows) and vouches with ``x-ms-client-principal-idp: aad`` and
  the App Service shape ``{auth_typ, claims: [{typ, val}]}``: a service principal named
  by its application id;
- pipelines with a named key in the ``x-functions-key`` header (never ``?code=``: a URL
  ends up in logs), checked by ``check_key`` against keyed hashes in Postgres
  (``shared/store/pipeline_keys.py``): they act as service principal ``<name>``.

A principal header is read only when ``-idp`` names the provider that set it, and only in
that provider's format: App Service strips both from client requests when its
authentication is on (the Bicep turns it on), so a forged header without the platform's
word is refused. Agents never authenticate here: their keys reach only the agent
endpoints, in their own header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.errors import Unauthorized

_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_GROUP_CLAIMS = ("groups",)
_NAME_CLAIMS = ("name", "preferred_username",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
# Roles every caller has at the front door: never a grant, never a group
BUILTIN_ROLES = frozenset({"anonymous", "authenticated"})
# SWA roles from rolesSource (functions/http/auth_roles.py) that name an Entra group
GROUP_ROLE_PREFIX = "group:"
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
        """How this caller is keyed in the activity log, on tasks, approvals and
        idempotency: the stable id (a user's ``userId``/``oid``), never the display name,
        which users can share or change. Names are shown beside it (``display_name``)."""
        return self.id if self.kind == "user" else f"service:{self.id}"


# The display names of the callers this thread (request) has seen, by actor: what the
# activity log and tasks show beside the stable id. Only ever filled from principals the
# platform vouched for; a stale entry can only name the same id.
_names: ContextVar[dict[str, str] | None] = ContextVar("cloudops_display_names", default=None)


def note_display_name(principal: Principal) -> None:
    names = _names.get()
    if names is None or len(names) > 100:
        names = {}
        _names.set(names)
    names[principal.actor] = principal.name


def display_name(actor: str) -> str | None:
    """The display name of ``actor`` if a request in this context authenticated it."""
    return (_names.get() or {}).get(actor)


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
    names = {str(r) for r in roles} - BUILTIN_ROLES
    groups = frozenset(r[len(GROUP_ROLE_PREFIX):] for r in names
                       if r.startswith(GROUP_ROLE_PREFIX))
    return Principal(kind="user", id=user_id, name=str(details or user_id),
                     roles=frozenset(r for r in names if not r.startswith(GROUP_ROLE_PREFIX)),
                     groups=groups, identity_provider=str(data.get("identityProvider") or "aad"))


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
    if oid is None:  # a name is not an identity: it can be shared or changed
        raise Unauthorized("x-ms-client-principal carries no object id (oid) or app id")
    return Principal(kind="user", id=oid, name=name or oid, roles=roles - BUILTIN_ROLES,
                     groups=groups, identity_provider=str(data.get("auth_typ") or "aad"))


# What ``x-ms-client-principal-idp`` says vouched for the principal → how to read it.
SWA_IDP = "azureStaticWebApps"
ENTRA_IDP = "aad"
KeyCheck = Callable[[str], "str | None"]


def hash_key(key: str) -> str:
    """SHA-256 of a local host function key (``CLOUDOPS_PIPELINE_KEYS``, local mode)."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_pipeline_keys(raw: str | None) -> dict[str, str]:
    """``name=sha256hex,name2=sha256hex`` → {hash: name} (the local host's function keys)."""
    keys: dict[str, str] = {}
    for part in (raw or "").split(","):
        if "=" in part:
            name, digest = part.split("=", 1)
            keys[digest.strip().lower()] = name.strip()
    return keys


def _local_key(key: str, pipeline_keys: Mapping[str, str] | None) -> str | None:
    digest = hash_key(key)
    for known, name in (pipeline_keys or {}).items():
        if hmac.compare_digest(known, digest):
            return name
    return None


def parse_principal(headers: Mapping[str, str], params: Mapping[str, str] | None = None, *,
                    pipeline_keys: Mapping[str, str] | None = None,
                    check_key: KeyCheck | None = None) -> Principal:
    """The authenticated caller, or ``Unauthorized`` naming what is wrong or missing.

    ``check_key`` resolves a pipeline key to its service name (None: not valid);
    ``pipeline_keys`` are the local host's function keys (local mode only)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if params is not None and "code" in params:
        raise Unauthorized("keys in the URL are refused (URLs are logged): send the key in "
                           "the x-functions-key header")
    key = lower.get("x-functions-key")
    if key:
        name = check_key(key) if check_key is not None else None
        if name is None:
            name = _local_key(key, pipeline_keys)
        if name is None:
            raise Unauthorized(
                "the key is not valid: unknown, expired or revoked. A host's master key "
                "opens only the admin API (/admin/*); send a pipeline key (locally the "
                "'function (default)' key `cloudops local` prints)", field="key")
        return Principal(kind="service", id=name, name=name)
    raw = lower.get("x-ms-client-principal")
    if not raw:
        raise Unauthorized("sign in first: no Easy Auth principal or key on the request")
    idp = lower.get("x-ms-client-principal-idp")
    if idp is None:
        raise Unauthorized("x-ms-client-principal without x-ms-client-principal-idp: the "
                           "platform did not vouch for it")
    data = _b64json(raw)
    if idp == SWA_IDP:
        return _from_swa(data)
    if idp == ENTRA_IDP:
        return _from_app_service(data)
    raise Unauthorized(f"principals from identity provider {idp!r} are not accepted")
