"""A small structural checker for Bicep, because no Bicep compiler is reachable here.

It is not a compiler: it checks what is cheap to get right by reading and costly to find
only at `azd up` time — balanced brackets and strings, known statement kinds, unique
symbols, resource types with API versions, references to declared symbols and known
functions, module parameters against the module's declarations, outputs read from modules
that exist, and role assignments named ``guid(scope.id, principal, role)``. It also reads
literal values the tests compare against code (an object variable's keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FUNCTIONS = {
    "any", "array", "base64", "bool", "coalesce", "concat", "contains", "dateTimeAdd",
    "deployment", "empty", "endsWith", "environment", "extensionResourceId", "filter",
    "first", "format", "guid", "indexOf", "int", "intersection", "items", "join", "json",
    "last", "length", "loadJsonContent", "loadTextContent", "managementGroup", "map", "max",
    "min", "newGuid", "range", "reference", "replace", "resourceGroup", "resourceId", "skip",
    "split", "startsWith", "string", "subscription", "subscriptionResourceId", "substring",
    "take", "tenant", "tenantResourceId", "toLower", "toUpper", "trim", "union", "uniqueString",
    "uri", "utcNow",
}
KEYWORDS = {"true", "false", "null", "if", "for", "in", "existing", "sys", "az"}
TYPES = {"string", "int", "bool", "object", "array"}
DECORATORS = {"description", "allowed", "secure", "minLength", "maxLength", "minValue",
              "maxValue", "metadata", "batchSize", "export", "sealed", "discriminator"}
STATEMENTS = ("targetScope", "param", "var", "resource", "module", "output", "@", "metadata",
              "import", "type", "func")
_RESOURCE_TYPE = re.compile(
    r"^[A-Z][A-Za-z0-9]*\.[A-Za-z0-9.]+(/[A-Za-z0-9]+)+@\d{4}-\d{2}-\d{2}(-preview)?$")
_IDENT = re.compile(r"(?<![.\w'§])([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*:(?!:))")


class BicepError(AssertionError):
    pass


@dataclass
class Statement:
    kind: str
    name: str
    text: str  # masked text of the whole statement
    decorators: list[str] = field(default_factory=list)


@dataclass
class BicepFile:
    path: Path
    masked: str
    strings: list[str]
    statements: list[Statement]

    def symbols(self, kind: str) -> dict[str, Statement]:
        return {s.name: s for s in self.statements if s.kind == kind}

    def string(self, token: str) -> str:
        """The literal text behind a masked string token like ``'§3'``."""
        m = re.match(r"\s*'§(\d+)'", token)
        if not m:
            raise BicepError(f"{self.path}: expected a string, got {token[:40]!r}")
        return self.strings[int(m.group(1))]


def _lex(src: str, path: Path) -> tuple[str, list[str]]:
    """Remove comments and replace each string literal with ``'§n'``; interpolated
    expressions stay in the masked text (as ``(...)``) so their references are checked."""
    out: list[str] = []
    strings: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            i = src.find("\n", i) if "\n" in src[i:] else n
        elif src.startswith("/*", i):
            end = src.find("*/", i + 2)
            if end < 0:
                raise BicepError(f"{path}: unterminated comment")
            i = end + 2
        elif src.startswith("'''", i):
            end = src.find("'''", i + 3)
            if end < 0:
                raise BicepError(f"{path}: unterminated ''' string")
            strings.append(src[i + 3:end])
            out.append(f"'§{len(strings) - 1}'")
            i = end + 3
        elif c == "'":
            i, text, exprs = _string(src, i + 1, path)
            strings.append(text)
            out.append(f"'§{len(strings) - 1}'")
            for expr in exprs:  # keep interpolations as code for the reference checks
                inner, more = _lex(expr, path)
                base = len(strings)
                strings.extend(more)
                inner = re.sub(r"'§(\d+)'", lambda m, b=base: f"'§{int(m.group(1)) + b}'",
                               inner)
                out.append(f" ({inner})")
        else:
            out.append(c)
            i += 1
    return "".join(out), strings


def _string(src: str, i: int, path: Path) -> tuple[int, str, list[str]]:
    text: list[str] = []
    exprs: list[str] = []
    while i < len(src):
        c = src[i]
        if c == "\n":
            break
        if c == "\\":
            text.append(src[i:i + 2])
            i += 2
        elif src.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(src) and depth:
                if src[j] == "'":  # a string inside the interpolation
                    j, _, _ = _string(src, j + 1, path)
                    continue
                depth += {"{": 1, "}": -1}.get(src[j], 0)
                j += 1
            exprs.append(src[i + 2:j - 1])
            text.append(src[i:j])
            i = j
        elif c == "'":
            return i + 1, "".join(text), exprs
        else:
            text.append(c)
            i += 1
    raise BicepError(f"{path}: unterminated string")


def _balanced(masked: str, path: Path) -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    for lineno, line in enumerate(masked.splitlines(), 1):
        for c in line:
            if c in "([{":
                stack.append((c, lineno))
            elif c in pairs:
                if not stack or stack[-1][0] != pairs[c]:
                    raise BicepError(f"{path}:{lineno}: unbalanced {c!r}")
                stack.pop()
    if stack:
        raise BicepError(f"{path}:{stack[-1][1]}: {stack[-1][0]!r} never closed")


def _statements(masked: str, path: Path) -> list[Statement]:
    out: list[Statement] = []
    decorators: list[str] = []
    lines = masked.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if not line.startswith(STATEMENTS):
            raise BicepError(f"{path}:{i + 1}: unexpected top-level text {line[:40]!r}")
        start, depth = i, 0
        while True:
            depth += sum(lines[i].count(c) for c in "([{") - sum(lines[i].count(c) for c in ")]}")
            i += 1
            if depth <= 0:
                break
        text = "\n".join(lines[start:i]).strip()
        if text.startswith("@"):
            decorators.append(text)
            name = re.match(r"@(?:sys\.)?(\w+)", text)
            if not name or name.group(1) not in DECORATORS:
                raise BicepError(f"{path}:{start + 1}: unknown decorator {text[:30]!r}")
            continue
        kind = text.split(None, 1)[0]
        m = re.match(rf"{kind}\s+(\w+)", text)
        name = m.group(1) if m and kind != "targetScope" else kind
        out.append(Statement(kind, name, text, decorators))
        decorators = []
    return out


def parse(path: Path) -> BicepFile:
    masked, strings = _lex(path.read_text(), path)
    _balanced(masked, path)
    return BicepFile(path, masked, strings, _statements(masked, path))


def object_keys(body: str) -> dict[str, str]:
    """Top-level ``key: value`` pairs of the first ``{...}`` in ``body`` (masked text)."""
    start = body.index("{")
    depth, key_start, pairs = 0, start + 1, {}
    for i in range(start, len(body)):
        c = body[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                _add_pair(body[key_start:i], pairs)
                return pairs
        elif c == "\n" and depth == 1:
            _add_pair(body[key_start:i], pairs)
            key_start = i + 1
    raise BicepError("object not closed")


def _add_pair(chunk: str, pairs: dict[str, str]) -> None:
    chunk = chunk.strip()
    m = re.match(r"^('§\d+'|[A-Za-z_][\w]*)\s*:\s*(.*)$", chunk, re.S)
    if m:
        pairs[m.group(1)] = m.group(2).strip()


def property_value(statement: Statement, key: str) -> str | None:
    return object_keys(statement.text[statement.text.index("=") + 1:]).get(key)


def check_file(bicep: BicepFile) -> None:
    """Every structural rule for one file; raises BicepError naming the problem."""
    seen: set[str] = set()
    for s in bicep.statements:
        if s.kind in ("param", "var", "resource", "module", "output"):
            key = f"output:{s.name}" if s.kind == "output" else s.name
            if key in seen:
                raise BicepError(f"{bicep.path}: {s.name} declared twice")
            seen.add(key)
        if s.kind in ("param", "output"):
            m = re.match(rf"{s.kind}\s+\w+\s+(\w+)", s.text)
            if not m or m.group(1) not in TYPES:
                raise BicepError(f"{bicep.path}: {s.kind} {s.name} has no known type")
        if s.kind == "param":
            _check_allowed(bicep, s)
        if s.kind == "resource":
            token = re.match(r"resource\s+\w+\s+('§\d+')", s.text)
            rtype = bicep.string(token.group(1)) if token else ""
            if not _RESOURCE_TYPE.match(rtype):
                raise BicepError(f"{bicep.path}: resource {s.name} type {rtype!r} is not "
                                 "Provider/type@api-version")
    _check_references(bicep)
    for s in bicep.statements:
        if s.kind == "resource" and "Microsoft.Authorization/roleAssignments" in _rtype(bicep, s):
            check_role_assignment(bicep, s)


def _rtype(bicep: BicepFile, s: Statement) -> str:
    token = re.match(r"resource\s+\w+\s+('§\d+')", s.text)
    return bicep.string(token.group(1)) if token else ""


def _check_allowed(bicep: BicepFile, s: Statement) -> None:
    allowed = [d for d in s.decorators if d.startswith("@allowed")]
    default = re.search(r"=\s*('§\d+'|-?\d+)\s*$", s.text)
    if allowed and default:
        values = {bicep.string(t) for t in re.findall(r"'§\d+'", allowed[0])}
        values |= set(re.findall(r"(?<![§\d])(-?\d+)", allowed[0]))
        value = default.group(1)
        value = bicep.string(value) if value.startswith("'") else value
        if value not in values:
            raise BicepError(f"{bicep.path}: default of {s.name} is not in @allowed")


def _check_references(bicep: BicepFile) -> None:
    declared = {s.name for s in bicep.statements if s.kind in ("param", "var", "resource",
                                                              "module")}
    for s in bicep.statements:
        if s.kind == "targetScope":
            continue
        body = s.text if s.kind == "var" else s.text.split("=", 1)[-1] if "=" in s.text else ""
        local = set(re.findall(r"\bfor\s+\(?\s*(\w+)", body))
        local |= set(re.findall(r"\bfor\s+\(\s*\w+\s*,\s*(\w+)", body))
        local |= set(re.findall(r"\b(\w+)\s*=>", body))
        if s.kind == "var":
            body = body.split("=", 1)[1]
        for m in _IDENT.finditer(body):
            word = m.group(1)
            after = body[m.end():m.end() + 2].lstrip()
            if word in KEYWORDS or word in local or word in declared:
                continue
            if after.startswith("("):
                if word not in FUNCTIONS:
                    raise BicepError(f"{bicep.path}: {s.name} calls unknown function {word}")
                continue
            if s.kind == "resource" and word == "existing":
                continue
            raise BicepError(f"{bicep.path}: {s.name} refers to undeclared {word}")


def check_role_assignment(bicep: BicepFile, s: Statement) -> None:
    name = property_value(s, "name") or ""
    m = re.fullmatch(r"guid\((.*)\)", name, re.S)
    args = [a.strip() for a in m.group(1).split(",")] if m else []
    if len(args) != 3:
        raise BicepError(f"{bicep.path}: role assignment {s.name} is not named "
                         "guid(scope, principal, role)")
    scope = property_value(s, "scope")
    props = object_keys(property_value(s, "properties") or "{}")
    if scope is None or args[0] != f"{scope}.id":
        raise BicepError(f"{bicep.path}: {s.name}: first guid() argument must be {scope}.id")
    if args[1] != props.get("principalId"):
        raise BicepError(f"{bicep.path}: {s.name}: second guid() argument must be the principal")
    if args[2] not in props.get("roleDefinitionId", ""):
        raise BicepError(f"{bicep.path}: {s.name}: third guid() argument must be the role")


def check_modules(bicep: BicepFile) -> None:
    """Module paths exist, parameters match their declarations, outputs read exist."""
    modules: dict[str, BicepFile] = {}
    for s in bicep.symbols("module").values():
        token = re.match(r"module\s+\w+\s+('§\d+')", s.text)
        target = bicep.path.parent / bicep.string(token.group(1)) if token else None
        if target is None or not target.exists():
            raise BicepError(f"{bicep.path}: module {s.name} file missing")
        module = modules[s.name] = parse(target)
        declared = module.symbols("param")
        given = set(object_keys(property_value(s, "params") or "{}"))
        required = {n for n, p in declared.items() if "=" not in p.text}
        if unknown := given - set(declared):
            raise BicepError(f"{bicep.path}: module {s.name} given unknown params {unknown}")
        if missing := required - given:
            raise BicepError(f"{bicep.path}: module {s.name} misses params {missing}")
    for ref, out in re.findall(r"(?<![.\w])(\w+)\.outputs\.(\w+)", bicep.masked):
        if ref in modules and out not in {s.name for s in modules[ref].statements
                                          if s.kind == "output"}:
            raise BicepError(f"{bicep.path}: module {ref} has no output {out}")
