"""Text from agents made storable: any bytes a process can print must reach the task.

Postgres ``text`` and ``jsonb`` refuse NUL, and UTF-8 cannot encode a lone surrogate
(which JSON's ``\\udXXX`` escapes can carry). Rejecting such a result or log batch loses
the real reason a job failed, so both are written as visible escapes instead
(``\\x00``, ``\\udcff``) and nothing is ever refused for its characters.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\x00" if char == "\x00" else f"\\u{ord(char):04x}"


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates escaped (other characters unchanged)."""
    return _UNSTORABLE.sub(_escape, text) if _UNSTORABLE.search(text) else text


def storable_json(value: Any) -> Any:
    """``value`` (decoded JSON) with every string, keys included, made storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_json(v) for v in value]
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    return value
