import pytest

from shared.domain.task_states import ALLOWED, TERMINAL, TaskStatus, can_move, sources_of


def test_terminal_states_allow_no_further_transition() -> None:
    for status in TERMINAL:
        assert ALLOWED[status] == frozenset()
        assert status.terminal


@pytest.mark.parametrize(("current", "target", "allowed"), [
    (TaskStatus.QUEUED, TaskStatus.WAITING, True),
    (TaskStatus.QUEUED, TaskStatus.CANCELLED, True),
    (TaskStatus.WAITING, TaskStatus.RUNNING, True),
    (TaskStatus.RUNNING, TaskStatus.SUCCEEDED, True),
    (TaskStatus.QUEUED, TaskStatus.SUCCEEDED, False),
    (TaskStatus.SUCCEEDED, TaskStatus.RUNNING, False),
    (TaskStatus.CANCELLED, TaskStatus.FAILED, False),
])
def test_transition_table(current: TaskStatus, target: TaskStatus, allowed: bool) -> None:
    assert can_move(current, target) is allowed


def test_sources_of_running_are_the_open_states() -> None:
    assert sources_of(TaskStatus.RUNNING) == ["queued", "running", "waiting"]
    assert sources_of(TaskStatus.SUCCEEDED) == ["running"]
