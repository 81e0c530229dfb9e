import datetime
from typing import Any

from .HistoryEventType import HistoryEventType

class HistoryEvent:
    # what HistoryEvent.__init__ sets (localhost/durable/replay.py builds events itself)
    _event_type: int
    _event_id: int
    _is_played: bool
    _timestamp: datetime.datetime
    _is_processed: bool
    Name: Any
    InstanceId: Any
    TaskScheduledId: Any
    Reason: Any
    Details: Any
    Input: Any
    @property
    def event_type(self) -> HistoryEventType: ...
    @property
    def timestamp(self) -> datetime.datetime: ...
    def __init__(self, EventType: int, EventId: int, IsPlayed: bool, Timestamp: str,
                 **kwargs: Any) -> None: ...
