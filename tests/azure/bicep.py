"""Bicep read with pycep-parser (no Bicep compiler installs here), plus the structural
rules a parser alone does not check.

pycep-parser's grammar does the syntax: balanced brackets and strings, statement kinds,
decorators, expressions. Its syntax tree (not its JSON, which writes an identifier and a
string literal alike) is turned into small values here: ``Ref`` for a symbol, ``Access`` for
``a.b[0].c``, ``Call``, ``Op``, ``Loop``, ``IfDeploy``, and ``Str`` for a string literal.

What stays hand-written, because the parser cannot express it:

- ``_source``: pycep-parser 0.7 reads a filtered loop's condition without the ``if``
  keyword (``[for x in xs: (cond) {``), so Bicep's ``[for x in xs: if (cond) {`` is
  rewritten to that form here, the one place, before parsing (infra/bicep/modules/
  postgres.bicep uses one).
- ``_interpolations``: ``${…}`` inside a string is one token to the parser; each
  expression is cut out here and parsed on its own, so its references are checked too.
- The rules in ``check_file`` and ``check_modules``: unique symbols (the parser keeps
  duplicates), known types and functions, ``@allowed`` defaults, ``Provider/type@api``
  resource types, references to declared symbols, module parameters and outputs, and
  role assignments named ``guid(scope.id, principal, role)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput
from pycep import BicepParser

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
TYPES = {"string", "int", "bool", "object", "array"}
DECORATORS = {"description", "allowed", "secure", "minLength", "maxLength", "minValue",
              "maxValue", "metadata", "batchSize", "export", "sealed", "discriminator"}
_RESOURCE_TYPE = re.compile(
    r"^[A-Z][A-Za-z0-9]*\.[A-Za-z0-9.]+(/[A-Za-z0-9]+)+@\d{4}-\d{2}-\d{2}(-preview)?$")
_FILTERED_LOOP = re.compile(r"(\[for\b[^\n]*?:\s*)if\s*(?=\()")


class BicepError(AssertionError):
    pass


class Str(str):
    """A string literal (its text between the quotes, interpolations left as written)."""


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Access:
    """``base.member[index].member``: members are names; indexes are expressions."""

    base: Any
    members: tuple[Any, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Op:
    kind: str
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class Loop:
    names: tuple[str, ...]
    source: Any
    condition: Any
    body: Any


@dataclass(frozen=True)
class IfDeploy:
    condition: Any
    body: Any


@dataclass
class Statement:
    kind: str  # param, var, resource, module, output, targetScope
    name: str
    value: Any = None  # the default of a param
    type: str = ""  # data type (param, output), resource type@api, module path
    line: int = 0
    existing: bool = False
    decorators: dict[str, Any] = field(default_factory=dict)


@dataclass
class BicepFile:
    path: Path
    statements: list[Statement]

    def symbols(self, kind: str) -> dict[str, Statement]:
        return {s.name: s for s in self.statements if s.kind == kind}


@cache
def _parser() -> BicepParser:
    return BicepParser()


def _source(text: str) -> str:
    """The one rewrite before parsing: Bicep's filtered loop in pycep-parser's form."""
    return _FILTERED_LOOP.sub(r"\1", text)


def _tree(text: str, where: str) -> Tree[Token]:
    try:
        return _parser()._create_tree(_source(text), None)
    except UnexpectedInput as exc:
        first = str(exc).strip().splitlines()[0]
        raise BicepError(f"{where}:{exc.line}: syntax error: {first}") from None
    except LarkError as exc:
        raise BicepError(f"{where}: {exc}") from None


def parse(path: Path) -> BicepFile:
    tree = _tree(path.read_text(), str(path))
    return BicepFile(path, [_statement(node, path) for node in tree.children
                            if isinstance(node, Tree)])


def _statement(node: Tree[Token], path: Path) -> Statement:
    kind = str(node.data)
    if kind == "scope":
        return Statement("targetScope", "targetScope", _literal(node.children[0]))
    decorators = _decorators(node.children[0], path)
    name = str(node.children[1])
    line = getattr(node.meta, "line", 0) if not node.meta.empty else 0
    rest = node.children[2:]
    if kind in ("param", "output"):
        kind_type = _data_type(rest[0])
        return Statement(kind, name, _value(rest[1]), kind_type, line, decorators=decorators)
    if kind == "var":
        return Statement(kind, name, _value(rest[-1]), "", line, decorators=decorators)
    if kind == "resource":
        return Statement(kind, name, _value(rest[2]), _literal(rest[0]), line,
                         existing=rest[1] is not None, decorators=decorators)
    if kind == "module":
        return Statement(kind, name, _value(rest[1]), _literal(rest[0].children[0]), line,
                         decorators=decorators)
    raise BicepError(f"{path}: unexpected statement {kind} {name}")


def _decorators(node: Any, path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if not isinstance(node, Tree):
        return found
    for decorator in node.children:
        assert isinstance(decorator, Tree)
        head, *args = decorator.children
        name = str(head.data if isinstance(head, Tree) else head).removeprefix("sys.")
        if name not in DECORATORS:
            raise BicepError(f"{path}: unknown decorator @{name}")
        found[name] = _value(args[0]) if args else None
    return found


def _data_type(node: Any) -> str:
    base = node.children[0] if isinstance(node, Tree) else node
    token = base.children[0] if isinstance(base, Tree) else base
    return str(token)


def _literal(token: Any) -> Str:
    if isinstance(token, Tree):
        token = token.children[0]
    text = str(token)
    quote = 3 if text.startswith("'''") else 1
    return Str(text[quote:-quote])


def _value(node: Any) -> Any:
    """pycep-parser's tree node → the values above."""
    if node is None or isinstance(node, Token):
        return None if node is None else str(node)
    kind = str(node.data)
    children = node.children
    if kind in ("string", "key"):
        token = children[0]
        return Str(_literal(token)) if token.type == "QUOTED_INTERPOLATION" else Ref(str(token))
    if kind == "multi_line_string":
        return Str(_literal(children[0]))
    if kind == "int_type":
        return int(children[0])
    if kind in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[kind]
    if kind == "object":
        pairs: dict[str, Any] = {}
        for pair in children:
            key = _value(pair.children[0])
            pairs[key.name if isinstance(key, Ref) else str(key)] = _value(pair.children[1])
        return pairs
    if kind == "array":
        return [_value(c) for c in children]
    if kind == "function":
        name = str(children[0]).rstrip("(")
        return Call(name, tuple(_value(c) for c in children[1:]))
    if kind == "operator":
        return _value(children[0])
    if kind == "property_accessor":
        return Access(_value(children[0]), _members(children[1]))
    if kind == "index_accessor":
        return Access(_value(children[0]), (("index", _value(children[1])),))
    if kind == "loop":
        head, condition, body = children
        names = tuple(str(c) for c in head.children[:-1])
        return Loop(names, _value(head.children[-1]), _value(condition), _value(body))
    if kind == "deploy_condition":
        return IfDeploy(_value(children[0]), _value(children[1]))
    return Op(kind, tuple(_value(c) for c in children))


def _members(node: Any) -> tuple[Any, ...]:
    """The right side of ``.``: pycep nests ``a.b.c`` as ``a . (b . c)``."""
    if isinstance(node, Tree) and node.data == "operator":
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "property_accessor":
        return _members(node.children[0]) + _members(node.children[1])
    if isinstance(node, Tree) and node.data == "index_accessor":
        return (*_members(node.children[0]), ("index", _value(node.children[1])))
    value = _value(node)
    return (value.name if isinstance(value, Ref) else value,)


def text(value: Any) -> str:
    """A value written back as Bicep-like text (for comparing expressions)."""
    if isinstance(value, Str):
        return f"'{value}'"
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, Access):
        out = text(value.base)
        for member in value.members:
            out += f"[{text(member[1])}]" if isinstance(member, tuple) else f".{member}"
        return out
    if isinstance(value, Call):
        return f"{value.name}({', '.join(text(a) for a in value.args)})"
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(text(v) for v in value) + "]"
    if isinstance(value, Op):
        operands = [text(o) for o in value.operands]
        if value.kind in _BINARY and len(operands) == 2:
            return f"{operands[0]} {_BINARY[value.kind]} {operands[1]}"
        if value.kind in _UNARY and len(operands) == 1:
            return f"{_UNARY[value.kind]}{operands[0]}"
        if value.kind == "conditional" and len(operands) == 3:
            return f"{operands[0]} ? {operands[1]} : {operands[2]}"
        return f"{value.kind}({', '.join(operands)})"
    if isinstance(value, Loop | IfDeploy):
        return repr(value)
    return str(value)


_BINARY = {"greater_than_or_equals": ">=", "greater_than": ">", "less_than_or_equals": "<=",
           "less_than": "<", "equals": "==", "not_equals": "!=", "equals_case_insens": "=~",
           "not_equals_case_insens": "!~", "and_op": "&&", "or_op": "||", "coalesce": "??",
           "add": "+", "divide": "/", "modulo": "%", "multiply": "*", "substract": "-"}
_UNARY = {"not_op": "!", "minus": "-"}


def _interpolations(literal: str, where: str) -> list[Any]:
    """Each ``${…}`` of a string literal, parsed as an expression of its own."""
    found: list[Any] = []
    i = 0
    while (start := literal.find("${", i)) >= 0:
        depth, j, quoted = 1, start + 2, False
        while j < len(literal) and depth:
            c = literal[j]
            if c == "'":
                quoted = not quoted
            elif not quoted:
                depth += {"{": 1, "}": -1}.get(c, 0)
            j += 1
        if depth:
            raise BicepError(f"{where}: unterminated interpolation in {literal[:40]!r}")
        tree = _tree(f"var x = {literal[start + 2:j - 1]}\n", where)
        found.append(_value(tree.children[0].children[-1]))
        i = j
    return found


def walk(value: Any) -> list[Any]:
    """``value`` and every value inside it (interpolations included)."""
    out = [value]
    if isinstance(value, Str):
        for inner in _interpolations(value, "interpolation"):
            out += walk(inner)
    elif isinstance(value, dict):
        for v in value.values():
            out += walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            out += walk(v)
    elif isinstance(value, Access):
        out += walk(value.base)
        for member in value.members:
            if isinstance(member, tuple):
                out += walk(member[1])
    elif isinstance(value, Call):
        out += walk(value.args)
    elif isinstance(value, Op):
        out += walk(value.operands)
    elif isinstance(value, Loop):
        out += walk([value.source, value.condition, value.body])
    elif isinstance(value, IfDeploy):
        out += walk([value.condition, value.body])
    return out


def check_file(bicep: BicepFile) -> None:
    """Every structural rule for one file; raises BicepError naming the problem."""
    seen: set[str] = set()
    for s in bicep.statements:
        if s.kind in ("param", "var", "resource", "module", "output"):
            key = f"output:{s.name}" if s.kind == "output" else s.name
            if key in seen:
                raise BicepError(f"{bicep.path}: {s.name} declared twice")
            seen.add(key)
        if s.kind in ("param", "output") and s.type not in TYPES:
            raise BicepError(f"{bicep.path}: {s.kind} {s.name} has no known type")
        if s.kind == "param":
            _check_allowed(bicep, s)
        if s.kind == "resource" and not _RESOURCE_TYPE.match(s.type):
            raise BicepError(f"{bicep.path}: resource {s.name} type {s.type!r} is not "
                             "Provider/type@api-version")
    _check_references(bicep)
    for s in bicep.statements:
        if s.kind == "resource" and s.type.startswith("Microsoft.Authorization/roleAssignments@"):
            check_role_assignment(bicep, s)


def _check_allowed(bicep: BicepFile, s: Statement) -> None:
    allowed = s.decorators.get("allowed")
    if allowed is not None and s.value is not None and s.value not in allowed:
        raise BicepError(f"{bicep.path}: default of {s.name} is not in @allowed")


def _check_references(bicep: BicepFile) -> None:
    declared = {s.name for s in bicep.statements if s.kind in ("param", "var", "resource",
                                                              "module")}
    for s in bicep.statements:
        if s.kind == "targetScope":
            continue
        values = walk([s.value, list(s.decorators.values())])
        local = {n for v in values if isinstance(v, Loop) for n in v.names}
        for v in values:
            if isinstance(v, Call) and v.name.removeprefix("sys.").removeprefix("az.") \
                    not in FUNCTIONS:
                raise BicepError(f"{bicep.path}: {s.name} calls unknown function {v.name}")
            if isinstance(v, Ref) and v.name not in declared | local:
                raise BicepError(f"{bicep.path}: {s.name} refers to undeclared {v.name}")


def body(s: Statement) -> dict[str, Any]:
    """The object a resource or module declares (inside a loop or condition too)."""
    value = s.value
    while isinstance(value, Loop | IfDeploy):
        value = value.body
    return value if isinstance(value, dict) else {}


def check_role_assignment(bicep: BicepFile, s: Statement) -> None:
    spec = body(s)
    name = spec.get("name")
    if not (isinstance(name, Call) and name.name == "guid" and len(name.args) == 3):
        raise BicepError(f"{bicep.path}: role assignment {s.name} is not named "
                         "guid(scope, principal, role)")
    scope = spec.get("scope")
    props = spec.get("properties") or {}
    scope_id, principal, role = (text(a) for a in name.args)
    if scope is None or scope_id != f"{text(scope)}.id":
        raise BicepError(f"{bicep.path}: {s.name}: first guid() argument must be "
                         f"{text(scope)}.id")
    if principal != text(props.get("principalId")):
        raise BicepError(f"{bicep.path}: {s.name}: second guid() argument must be the principal")
    if role not in text(props.get("roleDefinitionId")):
        raise BicepError(f"{bicep.path}: {s.name}: third guid() argument must be the role")


def check_modules(bicep: BicepFile) -> None:
    """Module paths exist, parameters match their declarations, outputs read exist."""
    modules: dict[str, BicepFile] = {}
    for s in bicep.symbols("module").values():
        target = bicep.path.parent / s.type
        if not target.exists():
            raise BicepError(f"{bicep.path}: module {s.name} file missing")
        module = modules[s.name] = parse(target)
        declared = module.symbols("param")
        given = set(body(s).get("params") or {})
        required = {n for n, p in declared.items() if p.value is None}
        if unknown := given - set(declared):
            raise BicepError(f"{bicep.path}: module {s.name} given unknown params {unknown}")
        if missing := required - given:
            raise BicepError(f"{bicep.path}: module {s.name} misses params {missing}")
    for s in bicep.statements:
        for v in walk([s.value]):
            if (isinstance(v, Access) and isinstance(v.base, Ref) and v.base.name in modules
                    and len(v.members) >= 2 and v.members[0] == "outputs"):
                out = v.members[1]
                if out not in modules[v.base.name].symbols("output"):
                    raise BicepError(f"{bicep.path}: module {v.base.name} has no output {out}")
