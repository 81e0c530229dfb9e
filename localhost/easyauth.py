"""Easy Auth as the Static Web Apps CLI emulates it, plus the static web folder.

- ``GET /.auth/login/<provider>`` shows a small dev sign-in form (user id, name, roles);
  submitting it sets ``StaticWebAppsAuthCookie`` = base64(JSON client principal) and
  redirects to ``post_login_redirect_uri``. Scripts and tests can set that cookie
  themselves (``principal_cookie(...)``) instead of using the form.
- ``GET /.auth/me`` → ``{"clientPrincipal": {...} | null}``; ``GET /.auth/logout``
  clears the cookie and redirects to ``post_logout_redirect_uri`` (default ``/``).
- Requests to the API get ``x-ms-client-principal`` (base64 JSON ``identityProvider``,
  ``userId``, ``userDetails``, ``userRoles``) from the cookie and
  ``x-ms-client-principal-idp: azureStaticWebApps``, as a Function App linked to a Static
  Web App receives them; client-supplied ``x-ms-client-principal*`` headers are removed
  first, as SWA and App Service authentication do, so callers cannot forge identities.
- ``staticwebapp.config.json`` rules (``swa_rules.py``) guard both the API and the files.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from localhost.problems import problem
from localhost.swa_rules import SwaConfig, denied_status

if TYPE_CHECKING:
    from localhost.host import Host

log = logging.getLogger("localhost.easyauth")
COOKIE = "StaticWebAppsAuthCookie"
PRINCIPAL_HEADER = "x-ms-client-principal"
IDP_HEADER = "x-ms-client-principal-idp"
SWA_IDP = "azureStaticWebApps"
_BUILTIN_ROLES = ("anonymous", "authenticated")


def principal_cookie(user_id: str, user_details: str, roles: list[str],
                     provider: str = "aad") -> str:
    """The ``StaticWebAppsAuthCookie`` value for a signed-in user with ``roles``."""
    principal = {"identityProvider": provider, "userId": user_id,
                 "userDetails": user_details,
                 "userRoles": list(dict.fromkeys([*_BUILTIN_ROLES, *roles])),
                 "claims": [{"typ": "name", "val": user_details}]}
    return base64.b64encode(json.dumps(principal).encode()).decode()


def read_principal(request: web.Request) -> dict[str, Any] | None:
    """The principal in the cookie, or ``None`` (a damaged cookie counts as signed out)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not data.get("userId"):
        return None
    roles = data.get("userRoles")
    roles = [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
    data["userRoles"] = list(dict.fromkeys([*_BUILTIN_ROLES, *roles]))
    return data


def roles_of(principal: dict[str, Any] | None) -> list[str]:
    return list(principal["userRoles"]) if principal else ["anonymous"]


def _safe_redirect(target: str | None, fallback: str = "/") -> str:
    """Only same-site relative paths: SWA refuses open redirects too."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sign in (local)</title><style>
body{{background:#0b0f14;color:#e6edf3;font-family:system-ui,sans-serif;display:grid;
place-items:center;min-height:100vh;margin:0}}form{{background:#121821;border:1px solid #243042;
padding:2rem;border-radius:8px;display:grid;gap:.75rem;min-width:20rem}}
input{{background:#1a2230;color:#e6edf3;border:1px solid #243042;padding:.5rem;border-radius:4px}}
button{{background:#14b8a6;color:#0b0f14;border:0;padding:.6rem;border-radius:4px;font-weight:600}}
small{{color:#9aa7b4}}</style></head><body><form method="post">
<h1>Local sign-in ({provider})</h1><small>Development only: no password is checked.</small>
<label>User id <input name="userId" value="{user_id}" required></label>
<label>User name <input name="userDetails" value="dev@example.com" required></label>
<label>Roles (comma separated) <input name="roles" value=""></label>
<label>Entra group object ids (comma separated) <input name="groups" value=""></label>
<input type="hidden" name="post_login_redirect_uri" value="{redirect}">
<button type="submit">Sign in</button></form></body></html>"""


class StaticWebExtension:
    """Built-in: ``/.auth/*``, SWA rules, principal injection and the web folder."""

    name = "staticweb"

    def __init__(self, web_dir: Path | None, config_path: Path | None = None) -> None:
        self.web_dir = web_dir.resolve() if web_dir else None
        self.config_path = config_path
        self.config = SwaConfig()
        self.host: Host | None = None

    def bind(self, host: Host) -> None:
        path = self.config_path
        if path is None and self.web_dir is not None:
            candidates = [self.web_dir / "staticwebapp.config.json",
                          self.web_dir.parent / "staticwebapp.config.json"]
            path = next((c for c in candidates if c.is_file()), None)
        self.config = SwaConfig.load(path)
        self.host = host
        router = host.web.router
        router.add_get("/.auth/me", self._me)
        router.add_get("/.auth/logout", self._logout)
        router.add_get("/.auth/login/{provider}", self._login_form)
        router.add_post("/.auth/login/{provider}", self._login_submit)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    # -- /.auth ----------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"clientPrincipal": read_principal(request)})

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        response = web.HTTPFound(_safe_redirect(request.query.get("post_logout_redirect_uri")))
        response.del_cookie(COOKIE, path="/")
        return response

    def _blocked(self, request: web.Request) -> web.StreamResponse | None:
        """A route rule answering a sign-in path with an error (a blocked provider)."""
        rule = self.config.first_rule(request.method, request.path)
        if rule is not None and rule.status_code and rule.status_code >= 400:
            return self._error(request, rule.status_code, "this sign-in provider is blocked")
        return None

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        blocked = self._blocked(request)
        if blocked is not None:
            return blocked
        redirect = _safe_redirect(request.query.get("post_login_redirect_uri"))
        page = _FORM.format(provider=html.escape(request.match_info["provider"]),
                            user_id=secrets.token_hex(16), redirect=html.escape(redirect))
        return web.Response(text=page, content_type="text/html")

    async def _login_submit(self, request: web.Request) -> web.StreamResponse:
        blocked = self._blocked(request)
        if blocked is not None:
            return blocked
        try:
            form = await request.post()
        except ValueError:
            return problem(400, "Bad request", "the sign-in form could not be read")
        user_id = str(form.get("userId") or "").strip()
        details = str(form.get("userDetails") or "").strip()
        if not user_id or not details:
            return problem(400, "Bad request", "userId and userDetails are required")
        roles = [r.strip() for r in str(form.get("roles") or "").split(",") if r.strip()]
        provider = request.match_info["provider"]
        if self.config.roles_source:
            # as SWA: the form's roles and groups are the token's claims; the rolesSource
            # function decides which roles they give
            groups = [g.strip() for g in str(form.get("groups") or "").split(",") if g.strip()]
            claims = ([{"typ": "roles", "val": r} for r in roles]
                      + [{"typ": "groups", "val": g} for g in groups])
            fetched = await self._roles_from_source(user_id, details, provider, claims)
            if fetched is None:
                return problem(502, "Bad gateway", "the rolesSource function did not answer "
                               "with {\"roles\": [...]}")
            roles = fetched
        cookie = principal_cookie(user_id, details, roles, provider)
        response = web.HTTPFound(_safe_redirect(str(form.get("post_login_redirect_uri") or "")))
        response.set_cookie(COOKIE, cookie, path="/", httponly=True, samesite="Lax")
        return response

    async def _roles_from_source(self, user_id: str, details: str, provider: str,
                                 claims: list[dict[str, str]]) -> list[str] | None:
        """POST the sign-in to ``auth.rolesSource`` as SWA does; its ``roles``, or None.

        The call goes through this front door like any API call, carrying the new user's
        (role-less) principal, so the function sees a vouched-for caller."""
        assert self.config.roles_source is not None and self.host is not None
        body = {"identityProvider": provider, "userId": user_id, "userDetails": details,
                "claims": claims, "accessToken": ""}
        cookie = principal_cookie(user_id, details, [], provider)
        try:
            async with aiohttp.ClientSession() as session, session.post(
                    self.host.base_url + self.config.roles_source, json=body,
                    headers={"Cookie": f"{COOKIE}={cookie}"},
                    timeout=aiohttp.ClientTimeout(total=30)) as reply:
                if reply.status != 200:
                    log.warning("rolesSource answered %s", reply.status)
                    return None
                data = await reply.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            log.warning("rolesSource could not be called")
            return None
        roles = data.get("roles") if isinstance(data, dict) else None
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            return None
        return [r for r in roles if r not in _BUILTIN_ROLES]

    # -- rules -----------------------------------------------------------------------

    def _rule_response(self, request: web.Request, principal: dict[str, Any] | None,
                       ) -> tuple[web.StreamResponse | None, str | None, dict[str, str]]:
        """Apply the first matching route rule: (response, rewrite target, extra headers)."""
        rule = self.config.first_rule(request.method, request.path)
        if rule is None:
            return None, None, {}
        status = denied_status(rule, roles_of(principal))
        if status is not None:
            return self._error(request, status, "the route requires one of the roles "
                               f"{', '.join(rule.allowed_roles or [])}"), None, {}
        if rule.redirect:
            target = rule.redirect.replace(".referrer", quote(request.path_qs))
            return web.Response(status=rule.status_code or 302,
                                headers={"Location": target, **rule.headers}), None, {}
        if rule.rewrite:
            return None, rule.rewrite, rule.headers
        if rule.status_code and rule.status_code >= 400:
            return self._error(request, rule.status_code, "blocked by a route rule"), None, {}
        return None, None, rule.headers

    def _error(self, request: web.Request, status: int, detail: str) -> web.StreamResponse:
        """A 4xx, replaced by the config's ``responseOverrides`` entry if there is one."""
        override = self.config.response_overrides.get(status)
        if override and override.get("redirect"):
            target = str(override["redirect"]).replace(".referrer", quote(request.path_qs))
            return web.Response(status=int(override.get("statusCode", 302)),
                                headers={"Location": target})
        if override and override.get("rewrite"):
            file = self._file(str(override["rewrite"]))
            if file is not None:
                return web.FileResponse(file, status=int(override.get("statusCode", status)))
        titles = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found"}
        return problem(status, titles.get(status, "Error"), detail)

    async def guard_api(self, request: web.Request) -> web.Request | web.StreamResponse:
        """Rules for an API request, then the trusted principal header."""
        principal = read_principal(request)
        response, _rewrite, _headers = self._rule_response(request, principal)
        if response is not None:
            return response
        headers = request.headers.copy()
        for name in [h for h in headers if h.lower().startswith(PRINCIPAL_HEADER)]:
            del headers[name]
        if principal is not None:
            visible = {k: principal.get(k) for k in
                       ("identityProvider", "userId", "userDetails", "userRoles")}
            headers[PRINCIPAL_HEADER] = base64.b64encode(json.dumps(visible).encode()).decode()
            # as App Service's "Azure Static Web Apps (Linked)" provider vouches for it
            headers[IDP_HEADER] = SWA_IDP
        try:
            return request.clone(headers=headers)
        except UnicodeEncodeError:  # undecodable header bytes (kept as surrogates by aiohttp)
            return problem(400, "Bad request", "request headers must be valid UTF-8")

    # -- static files ----------------------------------------------------------------

    def _file(self, url_path: str) -> Path | None:
        if self.web_dir is None:
            return None
        relative = url_path.split("?", 1)[0].lstrip("/")
        candidate = (self.web_dir / relative).resolve()
        if not candidate.is_relative_to(self.web_dir):
            return None  # path traversal
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None

    async def serve(self, request: web.Request) -> web.StreamResponse:
        principal = read_principal(request)
        response, rewrite, headers = self._rule_response(request, principal)
        if response is not None:
            return response
        if request.method not in ("GET", "HEAD"):
            return problem(405, "Method not allowed",
                           f"{request.method} is not allowed on static content",
                           headers={"Allow": "GET, HEAD"})
        file = self._file(rewrite or request.path)
        if file is None and self.config.falls_back(request.path):
            file = self._file(self.config.fallback_rewrite or "")
        if file is None:
            return self._error(request, 404, f"nothing serves {request.path}")
        served = web.FileResponse(file, headers={**self.config.global_headers, **headers})
        mime = self.config.mime_types.get(file.suffix)
        if mime:
            served.content_type = mime
        return served
