"""Discovery: load a v2-model ``function_app.py`` and describe each function it declares.

The Functions host learns an app's functions from the worker's indexing call, which runs
``app.get_functions()`` once and ships each function's binding JSON. We do the same and
keep the results as ``FunctionInfo`` records; every trigger handler works from them.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

_module_counter = itertools.count(1)
_SETTING_REF = re.compile(r"%([^%]+)%")


class AppLoadError(RuntimeError):
    """The app folder holds no loadable function app; the message says why."""


@dataclass
class FunctionInfo:
    """One function as the host sees it: its binding JSON and the callable to run."""

    name: str
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    user_function: Callable[..., Any]
    is_async: bool
    parameters: list[str] = field(default_factory=list)
    annotations: dict[str, Any] = field(default_factory=dict)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type", ""))

    def input_bindings(self) -> list[dict[str, Any]]:
        """Non-trigger bindings with direction IN (e.g. ``durableClient``)."""
        return [b for b in self.bindings
                if b is not self.trigger and str(b.get("direction", "")).upper() == "IN"]

    def output_bindings(self) -> list[dict[str, Any]]:
        return [b for b in self.bindings if str(b.get("direction", "")).upper() == "OUT"]


def load_app_module(app_dir: Path) -> ModuleType:
    """Import ``app_dir/function_app.py`` under a unique module name.

    A unique name lets several hosts (tests) load different apps in one process; the app
    folder goes first on ``sys.path`` so the app's own packages import as they do in Azure.
    """
    script = app_dir / "function_app.py"
    if not script.is_file():
        raise AppLoadError(f"{app_dir} has no function_app.py")
    folder = str(app_dir.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"_localhost_app_{next(_module_counter)}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:  # pragma: no cover - file exists, so never
        raise AppLoadError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_function_app(module: ModuleType) -> Any:
    """The module-level ``FunctionApp`` (or ``DFApp``) object, as the worker finds it."""
    import azure.functions as func

    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if not apps:
        raise AppLoadError(f"{module.__file__} defines no FunctionApp instance")
    if len(apps) > 1:
        raise AppLoadError(f"{module.__file__} defines more than one FunctionApp instance")
    return apps[0]


def index_functions(app: Any) -> list[FunctionInfo]:
    """``app.get_functions()`` once, turned into ``FunctionInfo`` records."""
    infos: list[FunctionInfo] = []
    for fn in app.get_functions():
        spec = json.loads(fn.get_function_json())
        bindings: list[dict[str, Any]] = spec.get("bindings", [])
        trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")),
                       None)
        if trigger is None:
            raise AppLoadError(f"function {fn.get_function_name()} has no trigger binding")
        user = fn.get_user_function()
        try:
            signature = inspect.signature(user)
            parameters = list(signature.parameters)
        except (TypeError, ValueError):  # builtins or odd callables: pass bindings by name
            parameters = [b["name"] for b in bindings if b.get("name") != "$return"]
        infos.append(FunctionInfo(
            name=fn.get_function_name(), trigger=trigger, bindings=bindings,
            user_function=user, is_async=_is_async(user), parameters=parameters,
            annotations=dict(getattr(user, "__annotations__", {}) or {})))
    return infos


def _is_async(user: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(user):
        return True
    call = getattr(user, "__call__", None)  # noqa: B004 - callable objects (orchestrators)
    return inspect.iscoroutinefunction(call)


def resolve_setting(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``%NAME%`` app-setting references with their values (strings only).

    As in the Functions host, an unknown setting is an error rather than a silent blank,
    because a queue or schedule named ``""`` would misbehave far from the cause.
    """
    if not isinstance(value, str):
        return value
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(f"app setting {name!r} is referenced as %{name}% but is not set")
        return env[name]

    return _SETTING_REF.sub(substitute, value)


def read_host_json(app_dir: Path) -> dict[str, Any]:
    """``host.json`` of the app (empty when absent); the only config the host honours."""
    path = app_dir / "host.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AppLoadError(f"{path} is not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def extension_config(host_json: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``host.json`` ``extensions.<name>`` (case-insensitive, as the host reads it)."""
    extensions = host_json.get("extensions") or {}
    for key, value in extensions.items():
        if key.lower() == name.lower() and isinstance(value, dict):
            return value
    return {}


def parse_timespan(value: Any, default: float) -> float:
    """A .NET TimeSpan string (``[d.]hh:mm:ss[.fff]``) in seconds; ``default`` if unset."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", str(value).strip())
    if not match:
        raise AppLoadError(f"invalid TimeSpan {value!r} in host.json")
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60
            + float(seconds))
