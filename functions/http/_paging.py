"""Paged lists: ``?limit=`` and an opaque ``?cursor=`` in, ``{"items", "nextCursor"}`` out.

A cursor is base64url of the last row's sort key as JSON (the store pages by that key,
``shared/store/_paging.py``); it is checked against the types the list's key has, so a
cursor from another list, or made up, answers 400 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import azure.functions as func

from functions.http._common import page_limit
from shared.errors import BadRequest
from shared.store._paging import Key

R = TypeVar("R")


@dataclass(frozen=True)
class PageRequest:
    """``?limit=`` and the sort key decoded from ``?cursor=``: the rows to answer with."""

    limit: int
    after: Key | None

    @property
    def fetch(self) -> int:
        """Rows to ask the store for: one more than a page tells whether another follows."""
        return self.limit + 1



def page_request(req: func.HttpRequest, *kinds: type, default: int = 50,
                 maximum: int = 200) -> PageRequest:
    """The page a list request asks for; ``kinds`` are the types of its sort key's parts."""
    return PageRequest(page_limit(req, default, maximum), decode_cursor(req, *kinds))



def page_json(rows: Sequence[R], page: PageRequest, key: Callable[[R], Key],
              render: Callable[[R], Any]) -> dict[str, Any]:
    """``{"items", "nextCursor"}`` from up to ``page.fetch`` rows in sort order."""
    shown = rows[:page.limit]
    more = len(rows) > page.limit
    return {"items": [render(r) for r in shown],
            "nextCursor": encode_cursor(key(shown[-1])) if more and shown else None}



def decode_cursor(req: func.HttpRequest, *kinds: type) -> Key | None:
    """The sort key a cursor of ours carries, checked against the types of its parts."""
    raw = req.params.get("cursor")
    if not raw:
        return None
    bad = BadRequest("cursor is not one this API issued", field="cursor")
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, UnicodeDecodeError, binascii.Error, RecursionError):
        raise bad from None
    if not isinstance(value, list):
        value = [value]  # a one-part key is also accepted bare, as cursors once were
    if len(value) != len(kinds):
        raise bad
    try:
        return tuple(_key_part(v, kind) for v, kind in zip(value, kinds, strict=True))
    except (TypeError, ValueError):
        raise bad from None



def _key_part(value: Any, kind: type) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError(value)
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed
    if kind is UUID:
        if not isinstance(value, str):
            raise TypeError(value)
        return UUID(value)
    if type(value) is not kind:  # exact: a bool is no int here, nor an int a bool
        raise TypeError(value)
    return value



def encode_cursor(key: Key) -> str:
    """An opaque cursor: base64url of the sort key as JSON."""
    parts = [p.isoformat() if isinstance(p, datetime) else str(p) if isinstance(p, UUID) else p
             for p in key]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
