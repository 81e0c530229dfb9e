"""The one polling helper: returns the fact once it holds, and a fact that never holds
fails naming what was waited for and what was seen last."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import WaitTimeout, async_wait_until, wait_until


def test_wait_until_returns_the_first_truthy_value_it_sees() -> None:
    answers = iter([None, 0, [], {"status": "done"}])
    assert wait_until(lambda: next(answers), "the task to end", interval=0) == {
        "status": "done"}


def test_a_fact_that_never_holds_fails_naming_it_and_the_last_value() -> None:
    calls = itertools.count()
    with pytest.raises(WaitTimeout, match=r"waiting for the job to start \(last seen: ''\)"):
        wait_until(lambda: "" if next(calls) >= 0 else "x", "the job to start", timeout=0)
    assert next(calls) == 1  # looked once, at the deadline, before giving up


def test_a_wait_timeout_is_an_assertion_error_so_pytest_reports_it_as_a_failure() -> None:
    assert issubclass(WaitTimeout, AssertionError)


def test_async_wait_until_awaits_coroutine_predicates_and_yields_to_the_loop() -> None:
    async def scenario() -> str:
        event = asyncio.Event()
        asyncio.get_running_loop().call_soon(event.set)

        async def ready() -> str | None:
            return "set" if event.is_set() else None

        return await async_wait_until(ready, "the event", timeout=5)

    assert asyncio.run(scenario()) == "set"


def test_async_wait_until_fails_naming_the_fact() -> None:
    with pytest.raises(WaitTimeout, match="waiting for nothing at all"):
        asyncio.run(async_wait_until(lambda: False, "nothing at all", timeout=0))
