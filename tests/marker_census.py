"""A pytest plugin for ``tests/unit/test_markers.py``: after collection (and after the
suite's own marker assignment in ``tests/conftest.py``), write the node ids each marker
selects to the JSON file named by ``CLOUDOPS_MARKER_CENSUS``. Load with
``-p tests.marker_census``; it changes nothing else."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    target = os.environ.get("CLOUDOPS_MARKER_CENSUS")
    if not target:
        return
    selected: dict[str, list[str]] = defaultdict(list)
    for item in items:
        for name in {mark.name for mark in item.iter_markers()}:
            selected[name].append(item.nodeid)
    Path(target).write_text(json.dumps(selected, sort_keys=True))
