"""One contract for every LogStore: in-memory, Postgres (real server) and Azure Table storage
(against Azurite). Each test uses a fresh task id, so the stores need no cleanup."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from shared.clock import ManualClock
from shared.db import Database
from shared.errors import ConstraintViolation
from shared.logs import MAX_LINE_CHARS, LogStore, MemoryLogStore
from shared.logs._postgres import PostgresLogStore
from shared.logs._table import TableLogStore
from tests.azure.conftest import Azurite

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "postgres", "table"])
def store(request: pytest.FixtureRequest) -> Iterator[LogStore]:
    clock = ManualClock(START)
    if request.param == "memory":
        made: LogStore = MemoryLogStore(clock)
    elif request.param == "postgres":
        db: Database = request.getfixturevalue("db")
        made = PostgresLogStore(db, clock)
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        made = TableLogStore.from_connection_string(azurite.connection_string, "tasklogs", clock)
    yield made
    if request.param == "table":
        made.close()


def new_task() -> str:
    return str(uuid.uuid4())


def test_first_append_numbers_lines_from_one_and_returns_them(store: LogStore) -> None:
    task = new_task()
    stored = store.append(task, ["cloning", ("warning", "slow mirror"), "done"])
    assert [(ln.seq, ln.level, ln.text) for ln in stored] == [
        (1, "info", "cloning"), (2, "warning", "slow mirror"), (3, "info", "done")]
    assert all(ln.at == START for ln in stored)
    assert store.read(task) == stored


def test_later_appends_continue_the_sequence_with_the_given_level(store: LogStore) -> None:
    task = new_task()
    store.append(task, ["a", "b"])
    more = store.append(task, ["c"], level="error")
    assert [(ln.seq, ln.level) for ln in more] == [(3, "error")]
    assert [ln.seq for ln in store.read(task)] == [1, 2, 3]


def test_read_resumes_strictly_after_the_last_seen_number_and_honours_limit(
        store: LogStore) -> None:
    task = new_task()
    store.append(task, [f"line {i}" for i in range(1, 11)])
    assert [ln.text for ln in store.read(task, after=7)] == ["line 8", "line 9", "line 10"]
    assert [ln.seq for ln in store.read(task, after=2, limit=3)] == [3, 4, 5]
    assert store.read(task, after=10) == []


def test_unknown_task_has_an_empty_log_and_tasks_do_not_share_numbers(store: LogStore) -> None:
    first, second = new_task(), new_task()
    assert store.read(first) == []
    store.append(first, ["x", "y"])
    assert [ln.seq for ln in store.append(second, ["z"])] == [1]
    assert [ln.text for ln in store.read(second)] == ["z"]


def test_empty_append_stores_nothing(store: LogStore) -> None:
    task = new_task()
    assert store.append(task, []) == []
    assert [ln.seq for ln in store.append(task, ["first"])] == [1]


def test_text_is_stored_exactly_as_given(store: LogStore) -> None:
    task = new_task()
    texts = ["  indented and trailing  ", "multi\nline\ttext", "quotes ' \" and \\ ; -- DROP",
             "unicode: größe 日本 🚀", "", "%s %(x)s {0}"]
    store.append(task, texts)
    assert [ln.text for ln in store.read(task)] == texts


def test_nul_becomes_replacement_char_and_long_lines_split_without_loss(
        store: LogStore) -> None:
    task = new_task()
    long = "x" * MAX_LINE_CHARS + "tail"
    stored = store.append(task, ["a\x00b", long])
    assert [ln.text for ln in stored] == ["a\ufffdb", "x" * MAX_LINE_CHARS, "tail"]
    assert [ln.text for ln in store.read(task)] == [ln.text for ln in stored]


def test_concurrent_appenders_to_one_task_get_consecutive_unique_numbers(
        store: LogStore) -> None:
    task = new_task()

    def writer(n: int) -> list[int]:
        seqs: list[int] = []
        for i in range(6):
            seqs.extend(ln.seq for ln in store.append(task, [f"w{n} {i} a", f"w{n} {i} b"]))
        return seqs

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(writer, range(6)))
    every = sorted(s for r in results for s in r)
    assert every == list(range(1, 6 * 6 * 2 + 1))
    lines = store.read(task)
    assert [ln.seq for ln in lines] == every
    # each append's two lines stay adjacent: no writer interleaves into another's batch
    for a, b in zip(lines[::2], lines[1::2], strict=True):
        assert a.text.removesuffix(" a") == b.text.removesuffix(" b")


def test_a_large_append_is_numbered_consecutively(store: LogStore) -> None:
    task = new_task()
    stored = store.append(task, [f"row {i}" for i in range(250)])
    assert [ln.seq for ln in stored] == list(range(1, 251))
    assert [ln.seq for ln in store.read(task, after=95, limit=10)] == list(range(96, 106))
    assert len(store.read(task)) == 250


@pytest.mark.parametrize(("call", "field"), [
    (lambda s: s.append("", ["x"]), "taskId"),
    (lambda s: s.append("bad/id", ["x"]), "taskId"),
    (lambda s: s.append("t1", ["x"], level="Loud Noise"), "level"),
    (lambda s: s.append("t1", "just a string"), "lines"),
    (lambda s: s.append("t1", [42]), "lines[0]"),
    (lambda s: s.read("t1", after=-1), "after"),
    (lambda s: s.read("t1", limit=0), "limit"),
    (lambda s: s.read("t1", limit=1001), "limit"),
])
def test_bad_input_is_refused_naming_the_field(store: LogStore, call: object,
                                               field: str) -> None:
    with pytest.raises(ConstraintViolation) as info:
        call(store)  # type: ignore[operator]
    assert info.value.field == field
