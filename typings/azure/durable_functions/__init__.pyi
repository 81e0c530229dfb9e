# Typing stubs for the part of azure-functions-durable 1.7.0 this project uses (the package
# ships no py.typed marker). Signatures copied from the SDK's own annotations; private
# attributes listed only where localhost/durable/replay.py drives the SDK's executor.
from collections.abc import Callable
from typing import Any

from azure.functions import BindingApi, FunctionRegister, SettingsApi, TriggerApi

from .models.DurableOrchestrationClient import (
    DurableOrchestrationClient as DurableOrchestrationClient,
)
from .models.DurableOrchestrationContext import (
    DurableOrchestrationContext as DurableOrchestrationContext,
)
from .models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus as DurableOrchestrationStatus,
)
from .models.OrchestrationRuntimeStatus import (
    OrchestrationRuntimeStatus as OrchestrationRuntimeStatus,
)
from .models.RetryOptions import RetryOptions as RetryOptions
from .orchestrator import Orchestrator as Orchestrator

class Blueprint(TriggerApi, BindingApi, SettingsApi):
    def __init__(self, http_auth_level: Any = ...) -> None: ...
    def orchestration_trigger(self, context_name: str,
                              orchestration: str | None = None,
                              input_type: type | None = None) -> Callable[..., Any]: ...
    def activity_trigger(self, input_name: str,
                         activity: str | None = None) -> Callable[..., Any]: ...
    def entity_trigger(self, context_name: str,
                       entity_name: str | None = None) -> Callable[..., Any]: ...
    def durable_client_input(self, client_name: str, task_hub: str | None = None,
                             connection_name: str | None = None) -> Callable[..., Any]: ...

class DFApp(Blueprint, FunctionRegister):
    def __init__(self, http_auth_level: Any = ...) -> None: ...
