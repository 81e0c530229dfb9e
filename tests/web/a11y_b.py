"""One check for every page web-b built: no serious or critical axe-core violations, no
console errors, and a full-page screenshot under tests/artifacts/screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.web.conftest import axe_violations, screenshot


def check_page(page: Any, name: str, *, expected_statuses: tuple[int, ...] = ()) -> Path:
    """Assert the page as it stands now is accessible and error-free; save its picture.
    ``expected_statuses``: API answers the test provoked on purpose (a 422 it checks),
    which the browser reports as console errors."""
    violations = axe_violations(page)
    assert violations == [], f"{name}: {violations}"
    provoked = tuple(f"status of {status}" for status in expected_statuses)
    errors = [e for e in page.console_errors if not (provoked and any(p in e for p in provoked))]
    assert errors == [], f"{name}: console errors {errors}"
    return screenshot(page, name)
