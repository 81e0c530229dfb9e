"""The check every web test ends a page with: a full-page screenshot under
tests/artifacts/screenshots (when named), no serious or critical axe-core violation
(``axe_violations``: axe from the npm package, run through Playwright), and no script
error in the console. A refusal the test provoked on purpose is logged by the browser
itself ("Failed to load resource: … status of 422"); pass its statuses as ``refused`` so
only that note is let through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.web.conftest import axe_violations, screenshot


def check_page(page: Any, name: str | None = None, *,
               refused: tuple[int, ...] = ()) -> Path | None:
    """Screenshot the page as it stands now as ``name`` (taken first, so a failing check
    still leaves its picture), then assert it is accessible and error-free."""
    picture = screenshot(page, name) if name else None
    violations = axe_violations(page)
    assert violations == [], f"{name or page.url}: {violations}"
    notes = tuple(f"the server responded with a status of {s} " for s in refused)
    errors = [e for e in page.console_errors if not any(n in e for n in notes)]
    assert errors == [], f"{name or page.url}: console errors {errors}"
    return picture
