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

from psycopg import Connection

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


def rows(conn: Connection[Any], query: str, args: Sequence[Any], *, order: Sequence[str],
         after_key: Key | None, limit_to: int | None, descending: bool = False,
         group_by: str = "") -> list[dict[str, Any]]:
    """Run ``query`` (a SELECT ending in its WHERE clause) for the rows past
    ``after_key`` in ``order``, at most ``limit_to`` of them."""
    past, past_args = after(order, after_key, descending=descending)
    cut, cut_args = limit(limit_to)
    direction = " DESC" if descending else ""
    grouped = f" GROUP BY {group_by}" if group_by else ""
    return conn.execute(
        f"{query} AND {past}{grouped} ORDER BY {', '.join(c + direction for c in order)} {cut}",
        (*args, *past_args, *cut_args)).fetchall()
