"""Function and host keys, and the ``authLevel`` check the Functions host performs.

Keys live in ``<state>/keys.json``: ``{"masterKey": ..., "functionKeys": {"default": ...},
"systemKeys": {...}}``. They are generated once and reused, so scripts can keep a key.
A caller presents a key in the ``x-functions-key`` header or the ``code`` query parameter.
``function`` level accepts any function key or the master key; ``admin`` only the master key.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _new_key() -> str:
    # Same shape as the host's generated keys: URL-safe, ~56 characters.
    return secrets.token_urlsafe(42)


@dataclass
class HostKeys:
    master_key: str
    function_keys: dict[str, str] = field(default_factory=dict)
    system_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> HostKeys:
        path = state_dir / "keys.json"
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                data = loaded if isinstance(loaded, dict) else {}
            except json.JSONDecodeError:
                data = {}  # a damaged file is replaced rather than stopping the host
        keys = cls(master_key=str(data.get("masterKey") or _new_key()),
                   function_keys=dict(data.get("functionKeys") or {}),
                   system_keys=dict(data.get("systemKeys") or {}))
        keys.function_keys.setdefault("default", _new_key())
        if keys.to_json() != data:
            keys._save(state_dir)
        return keys

    def _save(self, state_dir: Path) -> None:
        """Write atomically (readers such as scripts never see half a file), owner-only."""
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / "keys.json.tmp"
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(state_dir / "keys.json")

    def to_json(self) -> dict[str, Any]:
        return {"masterKey": self.master_key, "functionKeys": self.function_keys,
                "systemKeys": self.system_keys}

    def system_key(self, name: str, state_dir: Path) -> str:
        """A named system key (e.g. an extension's webhook key), created on first use."""
        if name not in self.system_keys:
            self.system_keys[name] = _new_key()
            self._save(state_dir)
        return self.system_keys[name]

    def is_master(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.master_key)

    def is_function_key(self, presented: str | None) -> bool:
        if presented is None:
            return False
        # Compare against every key, without short-circuit, to keep timing flat.
        hits = [hmac.compare_digest(presented, k) for k in self.function_keys.values()]
        return any(hits) or self.is_master(presented)

    def authorizes(self, auth_level: str, presented: str | None) -> bool:
        level = auth_level.lower()
        if level == "anonymous":
            return True
        if level == "admin":
            return self.is_master(presented)
        return self.is_function_key(presented)  # function (and the legacy "user")


def presented_key(headers: Any, query: Any) -> str | None:
    """The key from ``x-functions-key`` or ``?code=`` (header wins, like the host)."""
    return headers.get("x-functions-key") or query.get("code") or None
