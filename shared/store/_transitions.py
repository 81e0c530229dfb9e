"""Status moves are conditional UPDATEs (``... WHERE id = %s AND status IN (...)
RETURNING *``): no row back means the current status does not allow the move."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import InvalidTransition


def moved(row: dict[str, Any] | None, *, what: str, status_now: Callable[[], str],
          refusal: str) -> dict[str, Any]:
    """``row`` when the guarded UPDATE matched; else ``InvalidTransition`` on ``status``,
    "``what`` is <its status now>; ``refusal``" (``status_now`` is read only then)."""
    if row is None:
        raise InvalidTransition(f"{what} is {status_now()}; {refusal}", field="status")
    return row
