"""The OpenAPI document describes every HTTP route the function app serves — compared
with the function index, so a new route cannot go undocumented — grouped by tag, with a
schema for every success response."""

from __future__ import annotations

import re

from shared.api.openapi import build_openapi
from tests.function_index import app_functions


def _served() -> set[tuple[str, str]]:
    """(method, /api/path) of every HTTP trigger, route constraints and catch-alls
    written as plain OpenAPI parameters ({action:alpha} → {action}, {*name} → {name})."""
    routes = set()
    for fn in app_functions():
        trigger = fn.get_trigger()
        if trigger.get_binding_name() != "httpTrigger":
            continue
        path = "/api/" + re.sub(r"\{\*?(\w+)(:[^}]*)?\}", r"{\1}", trigger.route)
        for method in trigger.methods:
            routes.add((str(getattr(method, "value", method)).lower(), path))
    return routes


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in build_openapi()["paths"].items()
            for method in ops}


def test_every_served_route_is_documented_and_nothing_else() -> None:
    served, documented = _served(), _documented()
    assert len(served) > 40  # the index really was read
    assert sorted(served - documented) == []
    assert sorted(documented - served) == []


def test_operations_are_grouped_by_tags_the_document_describes() -> None:
    doc = build_openapi()
    declared = {t["name"] for t in doc["tags"]}
    used = {op["tags"][0] for ops in doc["paths"].values() for op in ops.values()}
    assert used == declared and len(used) >= 8
    assert doc["paths"]["/api/projects/{project}/roles"]["post"]["tags"] == ["Access"]
    assert doc["paths"]["/api/pools"]["get"]["tags"] == ["Agents"]
    assert doc["paths"]["/api/tasks/{id}/cancel"]["post"]["tags"] == ["Tasks"]


def test_every_success_response_has_a_schema() -> None:
    doc = build_openapi()
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                content = response.get("content")
                assert content, f"{method} {path} {status} has no content"
                for media in content.values():
                    schema = media["schema"]
                    assert schema, f"{method} {path} {status}: empty schema"
                    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                    assert not ref or ref in schemas, f"{method} {path}: {ref} undefined"
            for name in re.findall(r"\{(\w+)\}", path):
                assert name in {p["name"] for p in op["parameters"] if p["in"] == "path"}
    created = doc["paths"]["/api/projects/{project}/scripts"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ScriptOut"}
    assert set(schemas["ScriptOut"]["required"]) >= {"name", "argv", "parameters"}
