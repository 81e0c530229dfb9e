"""Calling a user function the way the Python worker does.

The worker passes each binding by parameter name: the trigger value, every input binding
(resolved by whoever provides that binding type), a ``func.Out`` for each output binding,
and ``func.Context`` to a parameter named ``context`` that no binding claims. The ``$return``
binding receives the return value. Sync functions run on a thread pool so they never block
the event loop; async ones run on the loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc as func_abc

from localhost.functions import FunctionInfo

T = TypeVar("T")
InputProvider = Callable[[FunctionInfo, dict[str, Any]], Any | Awaitable[Any]]


class OutValue(func.Out[T], Generic[T]):
    """The object a function's ``func.Out[...]`` parameter receives."""

    def __init__(self) -> None:
        self._value: T | None = None
        self.is_set = False

    def set(self, val: T) -> None:
        self._value = val
        self.is_set = True

    def get(self) -> T:
        return self._value  # type: ignore[return-value]  # None before set(), like func.Out


class _TraceContext(func_abc.TraceContext):
    def __init__(self, invocation_id: str) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{invocation_id.replace('-', '')[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """``func.Context`` for one invocation."""

    _local = threading.local()

    def __init__(self, fn: FunctionInfo, directory: str) -> None:
        self._id = str(uuid.uuid4())
        self._fn = fn
        self._directory = directory
        self._trace = _TraceContext(self._id)

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._fn.name

    @property
    def function_directory(self) -> str:
        return self._directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return _RetryContext()


@dataclass
class InvocationResult:
    """What a function produced: its ``$return`` value and each ``func.Out`` it set."""

    return_value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)


class MissingBinding(LookupError):
    """An input binding type that no extension provides."""


class Invoker:
    """Builds arguments from bindings and runs user functions (sync ones on a pool)."""

    def __init__(self, app_directory: str, max_workers: int | None = None) -> None:
        self._directory = app_directory
        self._providers: dict[str, InputProvider] = {}
        if max_workers is None:
            # The Python worker's own knob; unset, both use min(32, cores + 4) threads.
            configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
            max_workers = int(configured) if configured.isdigit() and int(configured) > 0 \
                else None
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="localhost-worker")

    def register_input_binding(self, binding_type: str, provider: InputProvider) -> None:
        self._providers[binding_type] = provider

    async def invoke(self, fn: FunctionInfo, trigger_value: Any,
                     extra: dict[str, Any] | None = None) -> InvocationResult:
        """Run ``fn`` with ``trigger_value`` bound to its trigger parameter."""
        return await self.run(fn, await self.bind_inputs(fn, trigger_value, extra))

    async def bind_inputs(self, fn: FunctionInfo, trigger_value: Any,
                          extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The values the host supplies: the trigger and every input binding, by name.

        What the host sends a worker process (``localhost/workers.py``); ``run`` adds
        the ``func.Out`` objects and ``context``, which belong to the process that runs it.
        """
        kwargs: dict[str, Any] = {}
        trigger_name = fn.trigger.get("name")
        if trigger_name in fn.parameters:
            kwargs[trigger_name] = trigger_value
        for binding in fn.input_bindings():
            name = binding.get("name")
            if name not in fn.parameters:
                continue
            provider = self._providers.get(str(binding.get("type")))
            if provider is None:
                raise MissingBinding(
                    f"function {fn.name}: no provider for input binding type "
                    f"{binding.get('type')!r} (is its extension loaded?)")
            value = provider(fn, binding)
            if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
                value = await value
            kwargs[name] = value
        if extra:
            kwargs.update({k: v for k, v in extra.items() if k in fn.parameters})
        return kwargs

    async def run(self, fn: FunctionInfo, values: dict[str, Any]) -> InvocationResult:
        """Call ``fn`` with ``values`` (from ``bind_inputs``) in this process."""
        kwargs = dict(values)
        outs: dict[str, OutValue[Any]] = {}
        for binding in fn.output_bindings():
            name = binding.get("name")
            if name != "$return" and name in fn.parameters and name not in kwargs:
                outs[name] = kwargs[name] = OutValue()
        if "context" in fn.parameters and "context" not in kwargs:
            kwargs["context"] = InvocationContext(fn, self._directory)

        if fn.is_async:
            value = await fn.user_function(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            value = await loop.run_in_executor(self._pool, lambda: fn.user_function(**kwargs))
        return InvocationResult(
            return_value=value,
            outputs={name: out.get() for name, out in outs.items() if out.is_set})

    def shutdown(self) -> None:
        # A sync function still running after the grace period cannot be interrupted;
        # do not hang shutdown on it (its thread ends with the process).
        self._pool.shutdown(wait=False, cancel_futures=True)
