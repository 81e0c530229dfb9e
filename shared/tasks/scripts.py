"""The script catalogue: approved scripts with typed parameters, resolved to argv.

A script is an argv template (``["./deploy.sh", "--version", "{version}"]``); a run
substitutes validated parameter values into its elements. The result runs as argv on an
agent — never through a shell — so metacharacters in values stay literal.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from shared.errors import ConstraintViolation
from shared.tasks.requests import Body, Name, ParamValue, Slug

_PLACEHOLDER = re.compile(r"\{([a-zA-Z][a-zA-Z0-9_]{0,63})\}")
ParamName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")]


class ScriptParameter(Body):
    name: ParamName
    type: Literal["string", "integer", "number", "boolean"] = "string"
    required: bool = True
    default: ParamValue | None = None
    pattern: Annotated[str, StringConstraints(max_length=200)] | None = None
    enum: list[ParamValue] | None = Field(default=None, max_length=100)
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    # a secret value is masked in task JSON, argv shown to readers, logs and errors
    secret: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad pattern: {exc}") from None
        return value


class ScriptDefinition(Body):
    # Each rule is checked on its own field, so a refusal names it (parameters are
    # declared before argv: argv's check reads them).
    name: Slug
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    parameters: list[ScriptParameter] = Field(default_factory=list, max_length=50)
    argv: list[Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = Field(
        min_length=1, max_length=100)
    timeout_seconds: int = Field(default=600, ge=1, le=86400)

    @field_validator("parameters")
    @classmethod
    def _unique_names(cls, value: list[ScriptParameter]) -> list[ScriptParameter]:
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"parameter names must be unique ({', '.join(twice)} twice)")
        return value

    @field_validator("argv")
    @classmethod
    def _placeholders_are_declared(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "parameters" not in info.data:  # the parameters were refused: said there
            return value
        declared = {p.name for p in info.data["parameters"]}
        for element in value:
            for used in _PLACEHOLDER.findall(element):
                if used not in declared:
                    raise ValueError(f"argv uses {{{used}}} but no such parameter is declared")
        return value


def _coerce(param: ScriptParameter, value: ParamValue) -> ParamValue:
    field = f"parameters.{param.name}"
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }[param.type]
    if not ok:
        article = "an" if param.type == "integer" else "a"
        raise ConstraintViolation(f"{field} must be {article} {param.type}", field=field)
    if param.enum is not None and value not in param.enum:
        raise ConstraintViolation(f"{field} must be one of {param.enum}", field=field)
    if param.pattern is not None and not re.fullmatch(param.pattern, str(value)):
        raise ConstraintViolation(f"{field} does not match {param.pattern}", field=field)
    if isinstance(value, str) and ("\x00" in value or len(value) > 4000):
        raise ConstraintViolation(f"{field} contains NUL or is too long", field=field)
    return value


def resolve_argv(script: ScriptDefinition, values: dict[str, ParamValue]) -> list[str]:
    """Validate ``values`` against the script's parameters and fill its argv template."""
    declared = {p.name: p for p in script.parameters}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ConstraintViolation(f"parameters.{unknown[0]} is not a parameter of "
                                  f"{script.name}", field=f"parameters.{unknown[0]}")
    resolved: dict[str, str] = {}
    for name, param in declared.items():
        if name in values:
            value = _coerce(param, values[name])
        elif param.default is not None:
            value = param.default
        elif param.required:
            raise ConstraintViolation(f"parameters.{name} is required",
                                      field=f"parameters.{name}")
        else:
            value = ""
        resolved[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return [_PLACEHOLDER.sub(lambda m: resolved[m.group(1)], element)
            for element in script.argv]


__all__ = ["Name", "ScriptDefinition", "ScriptParameter", "resolve_argv"]
