"""The app's function index, computed once per process (``get_functions()`` may only be
called once per app object)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def app_functions() -> tuple[Any, ...]:
    from function_app import app

    return tuple(app.get_functions())
