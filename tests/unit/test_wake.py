"""Waking an orchestration is a hint: no instance to wake is not an error for the caller,
anything else is."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from functions.wake import wake


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """On a thread of its own: a browser test's event loop may be running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Client:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.raised = error, []

    async def raise_event(self, instance_id: str, event: str, data: Any) -> None:
        if self.error:
            raise self.error
        self.raised.append((instance_id, event, data))


def test_a_running_instance_gets_the_event() -> None:
    client = Client()
    assert run(wake(client, "t1", "approval", {"by": "ann"})) is True
    assert client.raised == [("t1", "approval", {"by": "ann"})]


@pytest.mark.parametrize("message", ["No instance with ID t1 found.",
                                     "Instance with ID t1 is gone: either completed or failed"])
def test_an_instance_not_started_yet_or_already_done_needs_no_wake_up(message: str) -> None:
    assert run(wake(Client(Exception(message)), "t1", "cancel")) is False


def test_other_failures_are_not_swallowed() -> None:
    with pytest.raises(Exception, match="Webhook"):
        run(wake(Client(Exception("Webhook returned unrecognized status code 500")),
                         "t1", "cancel"))
