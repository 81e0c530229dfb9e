"""The accessibility and console check every settings page ends with: no serious or
critical axe-core violation (``axe_violations``: axe from the npm package, run through
Playwright), and no script error in the console. A refusal the test provoked on purpose
is logged by the browser itself ("Failed to load resource: … status of 422"); pass its
statuses as ``refused`` so only that note is let through."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import axe_violations


def assert_accessible(page: Any, *, refused: tuple[int, ...] = ()) -> None:
    violations = axe_violations(page)
    assert violations == [], violations
    notes = tuple(f"the server responded with a status of {s} " for s in refused)
    errors = [e for e in page.console_errors if not any(n in e for n in notes)]
    assert errors == [], errors
