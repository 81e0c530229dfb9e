from enum import IntEnum

# Only the members the local host names (stubtest runs with --ignore-missing-stub);
# localhost/durable/history.py keeps the whole table as plain ints.
class HistoryEventType(IntEnum):
    EXECUTION_STARTED = 0
    ORCHESTRATOR_STARTED = 12
