"""Keeping secrets out of what is recorded: URLs, log lines, errors, task JSON.

- ``redact_url``: a URL whose key-like query values (``code``, ``sig``, ``token``,
  ``key``, ``secret``, ``password``, …) and user-info password are replaced by
  ``REDACTED``; the rest stays readable (host, path, ``se``/``sp`` of a SAS URL).
- ``redact_text``: every URL inside free text redacted like that.
- ``redact_json``: the same over every string of a JSON-like value (activity details).
- ``mask``: known secret values (a script's ``secret`` parameters) replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "REDACTED"
MASK = "***"
# A query name is key-like when it contains one of these (case-insensitive): over-
# redacting a harmless parameter costs a little readability, missing a key costs the key.
_KEYLIKE = ("sig", "code", "token", "key", "secret", "password", "passwd", "pwd", "auth",
            "credential", "session", "jwt", "bearer", "sas")
_URL = re.compile(r"""[a-zA-Z][a-zA-Z0-9+.-]{1,15}://[^\s"'<>`]+""")


def keylike(name: str) -> bool:
    lowered = name.lower()
    return any(k in lowered for k in _KEYLIKE)


def redact_url(url: str) -> str:
    """``url`` with key-like query values and any user-info password replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = "&".join(_redact_pair(part) for part in parts.query.split("&")) \
        if parts.query else ""
    fragment = REDACTED if parts.fragment and "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url  # nothing to hide: keep it exactly as it was
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_pair(part: str) -> str:
    """One ``name=value`` of a query: the value replaced when the name is key-like; a bare
    long token (no name) replaced too; everything else kept byte for byte."""
    name, eq, _value = part.partition("=")
    if eq:
        return f"{name}={REDACTED}" if keylike(unquote(name)) else part
    return REDACTED if len(part) >= 16 and not part.startswith("<") else part


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (see ``redact_url``)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_json(value: Any) -> Any:
    """A copy of a JSON-like value with ``redact_text`` applied to every string."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each known secret value (longest first) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def scrub_lines(lines: Iterable[str], secrets: dict[str, Any] | None) -> list[str]:
    """Log lines fit to store: URL keys redacted, a task's secret values masked."""
    hidden = secret_values(secrets)
    return [mask(redact_text(line), hidden) for line in lines]


def secret_values(secrets: dict[str, Any] | None) -> list[str]:
    """The string forms of a task's secret values (what ``mask`` must hide)."""
    out: list[str] = []
    for value in (secrets or {}).values():
        if isinstance(value, dict):
            out.extend(secret_values(value))
        elif isinstance(value, list):  # the unmasked argv: its secret parts are above
            continue
        elif value is not None and not isinstance(value, bool) and str(value):
            out.append(str(value))
    return out
