from typing import Any

import azure.functions as func

from .DurableOrchestrationStatus import DurableOrchestrationStatus

class DurableOrchestrationClient:
    def __init__(self, context: str, function_invocation_id: str | None = None) -> None: ...
    async def start_new(self, orchestration_function_name: str,
                        instance_id: str | None = None, client_input: Any | None = None,
                        version: str | None = None) -> str: ...
    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None,
                          task_hub_name: str | None = None,
                          connection_name: str | None = None) -> None: ...
    async def get_status(self, instance_id: str, show_history: bool = False,
                         show_history_output: bool = False,
                         show_input: bool = False) -> DurableOrchestrationStatus: ...
    async def terminate(self, instance_id: str, reason: str) -> None: ...
    def create_check_status_response(self, request: func.HttpRequest,
                                     instance_id: str) -> func.HttpResponse: ...
