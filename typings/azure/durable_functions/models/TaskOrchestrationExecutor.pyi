from collections import namedtuple as namedtuple
from collections.abc import Callable, Generator
from typing import Any

from .DurableOrchestrationContext import DurableOrchestrationContext
from .history.HistoryEvent import HistoryEvent

class TaskOrchestrationExecutor:
    _is_processing_new_events: bool
    def execute(self, context: DurableOrchestrationContext, history: list[HistoryEvent],
                fn: Callable[[DurableOrchestrationContext], Generator[Any, Any, Any]]) -> str: ...
    def process_event(self, event: HistoryEvent) -> None: ...
    def get_orchestrator_state_str(self) -> str: ...
    @property
    def has_execution_completed(self) -> bool: ...
