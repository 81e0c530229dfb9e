from collections.abc import Callable, Generator
from typing import Any

from .models.DurableOrchestrationContext import DurableOrchestrationContext
from .models.TaskOrchestrationExecutor import TaskOrchestrationExecutor

class Orchestrator:
    task_orchestration_executor: TaskOrchestrationExecutor
    def __init__(self, activity_func: Callable[[DurableOrchestrationContext],
                                               Generator[Any, Any, Any]]) -> None: ...
    def handle(self, context: DurableOrchestrationContext) -> str: ...
