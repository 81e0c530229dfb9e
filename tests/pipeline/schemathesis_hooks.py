"""Schemathesis hooks (loaded with ``SCHEMATHESIS_HOOKS=tests.pipeline.schemathesis_hooks``):
put the ids of real, seeded objects into the generated requests, so every operation is
reached with valid ids and not only answered 404 for want of data.

``CLOUDOPS_FUZZ_SEEDS`` names a JSON file written by ``tests/pipeline/test_schemathesis.py``::

    {"params": {"project": "...", "env": "dev", ...},          # path parameter -> value
     "operations": {"DELETE /api/projects/{project}": {...}},  # per operation, over params
     "headers": {"POST /api/agent/heartbeat": {...}},          # per operation, extra headers
     "query": {"GET /api/agent/jobs/next": {"wait": "1"}}}     # per operation, query values

Two of every three cases of an operation get the seeded values (the first one always); the
third keeps what the fuzzer generated, so unknown and malformed ids are still sent. A
destructive operation (a DELETE, an agent action) gets objects seeded for it alone, so it
does not take the shared ones away from the operations after it. Without the variable the
hooks change nothing (the unauthenticated run).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import schemathesis

_SEEDS: dict[str, Any] | None = None
_SEEN: Counter[str] = Counter()


def _seeds() -> dict[str, Any]:
    global _SEEDS
    if _SEEDS is None:
        path = os.environ.get("CLOUDOPS_FUZZ_SEEDS")
        with open(path) if path else open(os.devnull) as f:
            text = f.read()
        _SEEDS = json.loads(text) if text else {}
    return _SEEDS


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    seeds = _seeds()
    if not seeds:
        return case
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    turn = _SEEN[operation]
    _SEEN[operation] += 1
    if turn % 3 == 2:
        return case  # as generated: a fuzzed id
    values = {**seeds["params"], **seeds["operations"].get(operation, {})}
    if case.path_parameters:
        case.path_parameters = {name: values.get(name, value)
                                for name, value in case.path_parameters.items()}
    extra = seeds["headers"].get(operation)
    if extra:
        case.headers = {**(case.headers or {}), **extra}
    query = seeds.get("query", {}).get(operation)
    if query:
        case.query = {**(case.query or {}), **query}
    return case
