"""Waiting for facts, not for time.

A test that needs something to have happened polls for that fact with a deadline and,
when it never comes, fails saying what it waited for and what it saw last. Absence is
proven by a barrier (a later event that must come after the one that did not happen),
never by sleeping. ``tests/unit/test_no_bare_sleeps.py`` keeps bare sleeps out of tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")

# How often a condition is re-checked. Short enough that a test ends soon after its fact
# holds, long enough not to busy-spin the two shared CPU cores.
INTERVAL = 0.05


class WaitTimeout(AssertionError):
    """A fact a test waited for did not hold before its deadline."""


def _message(what: str, timeout: float, last: object) -> str:
    return f"timed out after {timeout:g} s waiting for {what} (last seen: {last!r})"


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 30.0, *,
               interval: float = INTERVAL) -> T:
    """Call ``predicate`` until it returns something truthy and return that value.

    Fails with :class:`WaitTimeout` naming ``what`` (and the last value seen) when the
    deadline passes first. The predicate is always called at least once after the deadline
    is reached, so a slow predicate cannot make the wait give up without a last look.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_message(what, timeout, value))
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], T | Awaitable[T]], what: str,
                           timeout: float = 30.0, *, interval: float = 0.01) -> T:
    """:func:`wait_until` for a running event loop: yields to the loop between checks.

    ``predicate`` may be a plain function or a coroutine function.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return cast(T, value)  # awaited above when it was awaitable
        if time.monotonic() >= deadline:
            raise WaitTimeout(_message(what, timeout, value))
        await asyncio.sleep(interval)
