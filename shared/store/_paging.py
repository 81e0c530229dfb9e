"""Keyset paging: a page is "the rows after this sort key", never an offset.

Every list function that pages takes ``after`` (the sort key of the last row the caller
saw, a tuple in the order of the ``ORDER BY``) and ``limit`` (``None``: every row, for
internal callers that must see all of them). The sort key always ends in a unique column,
so a row inserted or deleted between two pages neither repeats nor hides another row.
The HTTP layer turns a key into an opaque cursor and back (``functions/http/_common.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Key = tuple[Any, ...]


def after(columns: Sequence[str], key: Key | None, *, descending: bool = False,
          ) -> tuple[str, list[Any]]:
    """A WHERE condition selecting the rows past ``key`` in ``ORDER BY columns``
    (all ascending, or all descending), and its parameters."""
    if key is None:
        return "TRUE", []
    if len(key) != len(columns):
        raise ValueError(f"sort key {key!r} does not match columns {list(columns)}")
    placeholders = ", ".join(["%s"] * len(columns))
    return f"({', '.join(columns)}) {'<' if descending else '>'} ({placeholders})", list(key)


def limit(n: int | None) -> tuple[str, list[Any]]:
    """A LIMIT clause (empty for every row) and its parameters."""
    return ("LIMIT %s", [n]) if n is not None else ("", [])
