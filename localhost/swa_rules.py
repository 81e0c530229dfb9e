"""``staticwebapp.config.json`` rules as Azure Static Web Apps evaluates them.

``routes`` are checked in order and the first whose ``route`` (and ``methods``) matches
applies: ``allowedRoles`` (missing role → 401 when anonymous, 403 when signed in),
``redirect`` (+ ``statusCode``, default 302), ``rewrite``, a bare ``statusCode``, and
``headers``. ``responseOverrides`` replace 400/401/403/404 answers with a redirect or a
rewrite; ``navigationFallback`` serves its ``rewrite`` for paths that are no file, except
those matching ``exclude``; ``globalHeaders`` go on every static response.
Route patterns: exact paths, a trailing ``*`` wildcard, and ``*.{png,jpg}`` filters,
case-insensitive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


class SwaConfigError(ValueError):
    """The config file is unreadable or malformed (reported at start-up)."""


@cache
def _pattern(route: str) -> re.Pattern[str]:
    """Compile an SWA route glob: ``*`` is any suffix; ``{a,b}`` alternatives."""
    out = ""
    i = 0
    while i < len(route):
        ch = route[i]
        if ch == "*":
            out += ".*"
        elif ch == "{":
            end = route.index("}", i)
            out += "(?:" + "|".join(re.escape(p) for p in route[i + 1:end].split(",")) + ")"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    # "/admin/*" also covers "/admin" itself, as SWA does for folder wildcards.
    if route.endswith("/*"):
        out = out[: -len(re.escape("/") + ".*")] + "(?:/.*)?"
    return re.compile(out + "/?", re.IGNORECASE)


def route_matches(route: str, path: str) -> bool:
    return _pattern(route).fullmatch(path) is not None


@dataclass
class RouteRule:
    route: str
    methods: frozenset[str] | None = None
    allowed_roles: list[str] | None = None
    redirect: str | None = None
    rewrite: str | None = None
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def applies(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return route_matches(self.route, path)


@dataclass
class SwaConfig:
    routes: list[RouteRule] = field(default_factory=list)
    response_overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    fallback_rewrite: str | None = None
    fallback_exclude: list[str] = field(default_factory=list)
    global_headers: dict[str, str] = field(default_factory=dict)
    mime_types: dict[str, str] = field(default_factory=dict)
    roles_source: str | None = None  # auth.rolesSource: the API route SWA asks for roles

    @classmethod
    def load(cls, path: Path | None) -> SwaConfig:
        if path is None or not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SwaConfigError(f"{path}: {exc}") from exc
        if not isinstance(data, dict):
            raise SwaConfigError(f"{path}: expected a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SwaConfig:
        routes = []
        for raw in data.get("routes") or []:
            if not isinstance(raw, dict) or not isinstance(raw.get("route"), str):
                raise SwaConfigError(f"every route needs a 'route' string: {raw!r}")
            methods = raw.get("methods")
            routes.append(RouteRule(
                route=raw["route"],
                methods=frozenset(m.upper() for m in methods) if methods else None,
                allowed_roles=list(raw["allowedRoles"]) if "allowedRoles" in raw else None,
                redirect=raw.get("redirect"), rewrite=raw.get("rewrite"),
                status_code=int(raw["statusCode"]) if "statusCode" in raw else None,
                headers=dict(raw.get("headers") or {})))
        fallback = data.get("navigationFallback") or {}
        roles_source = (data.get("auth") or {}).get("rolesSource")
        if roles_source is not None and not (isinstance(roles_source, str)
                                             and roles_source.startswith("/api/")):
            raise SwaConfigError(f"auth.rolesSource must be an /api/ route: {roles_source!r}")
        return cls(
            roles_source=roles_source,
            routes=routes,
            response_overrides={int(k): v for k, v in
                                (data.get("responseOverrides") or {}).items()},
            fallback_rewrite=fallback.get("rewrite"),
            fallback_exclude=list(fallback.get("exclude") or []),
            global_headers=dict(data.get("globalHeaders") or {}),
            mime_types=dict(data.get("mimeTypes") or {}))

    def first_rule(self, method: str, path: str) -> RouteRule | None:
        return next((r for r in self.routes if r.applies(method, path)), None)

    def falls_back(self, path: str) -> bool:
        if not self.fallback_rewrite:
            return False
        return not any(route_matches(p, path) for p in self.fallback_exclude)


def denied_status(rule: RouteRule | None, roles: list[str]) -> int | None:
    """401/403 if ``rule`` restricts roles and none of ``roles`` is allowed."""
    if rule is None or rule.allowed_roles is None:
        return None
    if any(role in rule.allowed_roles for role in roles):
        return None
    return 403 if "authenticated" in roles else 401
