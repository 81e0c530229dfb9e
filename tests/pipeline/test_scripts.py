"""The script catalogue resolves typed parameters into argv, literally."""

import pytest
from pydantic import ValidationError

from shared.errors import ConstraintViolation
from shared.tasks.scripts import ScriptDefinition, resolve_argv

SCRIPT = ScriptDefinition.model_validate({
    "name": "maintenance",
    "argv": ["./maintain.sh", "--table={table}", "--limit", "{limit}", "--dry-run={dry}"],
    "parameters": [
        {"name": "table", "pattern": "[a-z_;& $()`'\"|/-]+"},
        {"name": "limit", "type": "integer", "required": False, "default": 10},
        {"name": "dry", "type": "boolean", "required": False, "default": True},
    ],
})


def test_shell_metacharacters_stay_literal_inside_one_argument() -> None:
    argv = resolve_argv(SCRIPT, {"table": "a; rm -rf / && echo $(id) `x` | y"})
    assert argv == ["./maintain.sh", "--table=a; rm -rf / && echo $(id) `x` | y", "--limit",
                    "10", "--dry-run=true"]


@pytest.mark.parametrize(("values", "field"), [
    ({}, "parameters.table"),
    ({"table": "ok", "limit": "10"}, "parameters.limit"),
    ({"table": "ok", "limit": True}, "parameters.limit"),
    ({"table": "UPPER"}, "parameters.table"),
    ({"table": "ok", "extra": 1}, "parameters.extra"),
])
def test_bad_parameters_name_the_field(values: dict, field: str) -> None:
    with pytest.raises(ConstraintViolation) as info:
        resolve_argv(SCRIPT, values)
    assert info.value.field == field


def test_a_template_may_only_use_declared_parameters() -> None:
    with pytest.raises(ValidationError, match="no such parameter"):
        ScriptDefinition.model_validate({"name": "x", "argv": ["run", "{undeclared}"]})
