"""The app's function index, computed once per process (``get_functions()`` may only be
called once per app object)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def app_functions() -> tuple[Any, ...]:
    from function_app import app

    # An in-process host in another test may have indexed this app object already; the
    # SDK then refuses a second index as "duplicate names" unless its registry is reset.
    app.functions_bindings = {}
    return tuple(app.get_functions())
