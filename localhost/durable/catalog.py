"""Which functions the engine runs, and how to call them without the host.

``FunctionRef`` names an orchestrator or activity function; ``handle`` is whatever the
invoker needs (the host's ``FunctionInfo``, or the azure-functions ``Function``).
``functions_from_app`` reads a ``DFApp``/``FunctionApp`` (``get_functions()`` may be
called once per app), and ``direct_invoker`` calls user code the way the Functions worker
does, so the engine runs and is tested without the host.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

KINDS = {"orchestrationTrigger": "orchestrator", "activityTrigger": "activity",
         "entityTrigger": "entity"}


@dataclass(frozen=True)
class FunctionRef:
    name: str
    kind: str  # orchestrator | activity | entity
    user_function: Any
    trigger_param: str
    handle: Any = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


def functions_from_app(app: Any) -> list[FunctionRef]:
    """The durable functions of an app object (calls ``app.get_functions()``)."""
    return functions_from_index(app.get_functions())


def functions_from_index(functions: Iterable[Any]) -> list[FunctionRef]:
    refs = []
    for fn in functions:
        trigger = fn.get_trigger()
        kind = KINDS.get(getattr(trigger, "type", ""))
        if kind:
            name = fn.get_function_name()
            if kind == "entity":
                name = getattr(trigger, "entity_name", None) or name
            refs.append(FunctionRef(name, kind, fn.get_user_function(),
                                    trigger.name, fn))
    return refs


def direct_invoker(executor: Executor | None = None) -> Any:
    """An invoker that calls user functions directly: sync ones on ``executor``."""

    async def invoke(fn: FunctionRef, trigger_value: Any) -> Any:
        if fn.kind == "orchestrator":
            return fn.user_function(trigger_value)
        kwargs = {fn.trigger_param: trigger_value}
        if fn.is_async:
            return await fn.user_function(**kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, lambda: fn.user_function(**kwargs))

    return invoke
