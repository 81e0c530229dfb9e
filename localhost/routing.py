"""ASP.NET-style route templates, as the Functions host matches HTTP trigger routes.

Supported: literal segments, ``{name}``, optional ``{name?}``, defaults ``{name=value}``,
catch-all ``{*rest}``, and constraints ``{id:int}`` (int, long, bool, guid, alpha,
float, double, decimal, datetime, minlength(n), maxlength(n), length(n), min(n), max(n),
range(a,b), regex(expr)), several chained with ``:``. Matching is case-insensitive for
literals, like the real router; parameter values keep their case and are URL-decoded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

_PARAM = re.compile(r"\{([^{}]+)\}")


class RouteTemplateError(ValueError):
    """A route template the host cannot parse (reported at start-up)."""


def _is_int(v: str) -> bool:
    return re.fullmatch(r"-?\d+", v) is not None


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _is_decimal(v: str) -> bool:
    try:
        Decimal(v)
    except InvalidOperation:
        return False
    return True


def _is_guid(v: str) -> bool:
    try:
        uuid.UUID(v)
    except ValueError:
        return False
    return True


def _is_datetime(v: str) -> bool:
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


_SIMPLE: dict[str, Callable[[str], bool]] = {
    "int": _is_int, "long": _is_int, "bool": lambda v: v.lower() in ("true", "false"),
    "guid": _is_guid, "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "float": _is_float, "double": _is_float, "decimal": _is_decimal,
    "datetime": _is_datetime,
}


def _constraint(text: str) -> Callable[[str], bool]:
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", text, re.S)
    if not match:
        raise RouteTemplateError(f"bad constraint {text!r}")
    name, arg = match.group(1).lower(), match.group(2)
    if name in _SIMPLE and arg is None:
        return _SIMPLE[name]
    if arg is None:
        raise RouteTemplateError(f"unknown route constraint {text!r}")
    try:
        if name == "minlength":
            n = int(arg)
            return lambda v: len(v) >= n
        if name == "maxlength":
            n = int(arg)
            return lambda v: len(v) <= n
        if name == "length":
            parts = [int(p) for p in arg.split(",")]
            lo, hi = (parts[0], parts[-1])
            return lambda v: lo <= len(v) <= hi
        if name in ("min", "max", "range"):
            parts = [int(p) for p in arg.split(",")]
            least = parts[0] if name != "max" else None
            most = parts[-1] if name != "min" else None
            return lambda v: _is_int(v) and (least is None or int(v) >= least) and (
                most is None or int(v) <= most)
        if name == "regex":
            pattern = re.compile(arg)
            return lambda v: pattern.search(v) is not None
    except (ValueError, re.error) as exc:
        raise RouteTemplateError(f"bad constraint {text!r}: {exc}") from exc
    raise RouteTemplateError(f"unknown route constraint {text!r}")


@dataclass
class _Segment:
    literal: str | None = None
    name: str | None = None
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    checks: tuple[Callable[[str], bool], ...] = ()


class RouteTemplate:
    """One compiled template; ``match(path)`` returns route params or ``None``."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.segments: list[_Segment] = []
        parts = [p for p in template.strip("/").split("/") if p != ""]
        for index, part in enumerate(parts):
            whole = re.fullmatch(r"\{(.+)\}", part)
            if whole is None:
                if _PARAM.search(part) or "{" in part or "}" in part:
                    raise RouteTemplateError(
                        f"route {template!r}: mixed literal/parameter segment {part!r} "
                        "is not supported")
                self.segments.append(_Segment(literal=part.lower()))
                continue
            self.segments.append(self._parameter(whole.group(1), index == len(parts) - 1))
        names = [s.name for s in self.segments if s.name]
        if len(names) != len({n.lower() for n in names}):
            raise RouteTemplateError(f"route {template!r}: repeated parameter name")
        # Literal-heavy routes win over parameter routes, as in ASP.NET's ordering.
        self.precedence = tuple(
            0 if s.literal is not None else 2 if s.catch_all else 1 for s in self.segments)

    def _parameter(self, body: str, last: bool) -> _Segment:
        catch_all = body.startswith("*")
        body = body.lstrip("*")
        default = None
        if "=" in body:
            body, default = body.split("=", 1)
        optional = body.endswith("?")
        body = body.rstrip("?")
        name, *constraints = _split_constraints(body)
        if not re.fullmatch(r"\w+", name):
            raise RouteTemplateError(f"route {self.template!r}: bad parameter {name!r}")
        if catch_all and not last:
            raise RouteTemplateError(f"route {self.template!r}: catch-all must be last")
        return _Segment(name=name, optional=optional or catch_all or default is not None,
                        default=default, catch_all=catch_all,
                        checks=tuple(_constraint(c) for c in constraints))

    def match(self, path: str) -> dict[str, str] | None:
        parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.catch_all:
                rest = "/".join(unquote(p) for p in parts[index:])
                if rest:
                    params[segment.name or ""] = rest
                return params
            if index >= len(parts):
                if not segment.optional:
                    return None
                if segment.default is not None and segment.name:
                    params[segment.name] = segment.default
                continue
            value = unquote(parts[index])
            if segment.literal is not None:
                if value.lower() != segment.literal:
                    return None
                continue
            if value == "" or not all(check(value) for check in segment.checks):
                return None
            params[segment.name or ""] = value
        if len(parts) > len(self.segments):
            return None
        return params


def _split_constraints(body: str) -> list[str]:
    """Split ``name:c1:c2(x:y)`` on colons outside parentheses (regexes may hold colons)."""
    out, depth, current = [], 0, ""
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == ":" and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return out
