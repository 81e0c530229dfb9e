from typing import Any

class TaskBase:
    id: Any
    result: Any
    @property
    def is_completed(self) -> bool: ...
    @property
    def is_faulted(self) -> bool: ...

class TimerTask(TaskBase):
    @property
    def is_cancelled(self) -> bool: ...
    def cancel(self) -> None: ...
