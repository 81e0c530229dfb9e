"""``POST /api/auth/roles``: the Static Web App's ``rolesSource``.

After a sign-in, SWA posts ``{identityProvider, userId, userDetails, claims, accessToken}``
and puts the roles this answers (``{"roles": [...]}``) into the user's principal. Entra
app roles ``reader``/``operator``/``admin`` pass through (global roles); each security
group in the ``groups`` claim becomes ``group:<object id>`` (the app reads those as group
memberships and matches group role assignments and approvers on the object id). Nothing
else passes: no ``anonymous``/``authenticated``, no free-form names.

The call must come through the platform (a principal vouched for by
``x-ms-client-principal-idp``) and be about that same user; the answer only reflects the
claims posted, so a direct caller learns nothing it did not send.
"""

from __future__ import annotations

import re
from typing import Any

import azure.functions as func

from functions.http._common import api, caller
from functions.http._responses import json_response
from shared.auth.principal import GROUP_ROLE_PREFIX
from shared.auth.roles import ROLE_RANK
from shared.errors import BadRequest, ConstraintViolation

bp = func.Blueprint()
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_GROUP_CLAIMS = ("groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12}$")
MAX_ROLES = 50


def roles_from_claims(claims: Any) -> list[str]:
    """The SWA roles for a token's claims: app roles we know, groups by object id."""
    roles: list[str] = []
    for claim in claims if isinstance(claims, list) else []:
        if not isinstance(claim, dict):
            continue
        typ, val = claim.get("typ"), claim.get("val")
        if not isinstance(typ, str) or not isinstance(val, str):
            continue
        if typ in _ROLE_CLAIMS and val in ROLE_RANK:
            roles.append(val)
        elif typ in _GROUP_CLAIMS and _OBJECT_ID.fullmatch(val):
            roles.append(GROUP_ROLE_PREFIX + val.lower())
    return list(dict.fromkeys(roles))[:MAX_ROLES]


@bp.route(route="auth/roles", methods=["POST"])
@api
def auth_roles(req: func.HttpRequest) -> func.HttpResponse:
    principal = caller(req)
    try:
        body = req.get_json()
    except ValueError:
        raise BadRequest("body is not valid JSON", field="body") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", field="body")
    if principal.kind != "user" or body.get("userId") != principal.id:
        # nothing to tell: the answer would only mirror the claims posted
        raise ConstraintViolation("userId must be the signed-in user's own id",
                                  field="userId")
    return json_response({"roles": roles_from_claims(body.get("claims"))},
                         headers={"Cache-Control": "no-store"})
