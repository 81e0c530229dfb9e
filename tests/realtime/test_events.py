"""The event helpers: which target, which groups, which shape (on the in-memory adapter)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.errors import Unavailable
from shared.logs import MemoryLogStore
from shared.realtime import InMemoryRealtime, make_realtime
from shared.realtime.events import (
    AGENTS_GROUP,
    publish_agent_update,
    publish_task_end,
    publish_task_log,
    publish_task_update,
)
from shared.settings import Settings, SettingsError

TASK = {"id": "t1", "projectId": "p1", "status": "running", "updatedAt": "2026-01-01T00:00:00Z"}


def test_task_update_goes_to_its_project_and_task_groups() -> None:
    rt = InMemoryRealtime()
    assert publish_task_update(rt, TASK)
    assert [(s.name, s.target, s.args) for s in rt.sent] == [
        ("project:p1", "taskUpdated", [TASK]), ("task:t1", "taskUpdated", [TASK])]


def test_task_log_carries_sorted_lines_and_the_first_seq() -> None:
    rt = InMemoryRealtime()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    publish_task_log(rt, "t1", "p1", [{"seq": 8, "at": at, "level": "warn", "text": "b"},
                                      {"seq": 7, "at": at, "text": "a"}])
    (sent,) = rt.sent
    assert (sent.kind, sent.name, sent.target) == ("group", "task:t1", "taskLog")
    assert sent.args == [{"taskId": "t1", "from": 7, "lines": [
        {"seq": 7, "at": "2026-01-01T00:00:00Z", "level": "info", "text": "a"},
        {"seq": 8, "at": "2026-01-01T00:00:00Z", "level": "warn", "text": "b"}]}]


def test_task_log_accepts_stored_log_lines_and_skips_empty_batches() -> None:
    rt = InMemoryRealtime()
    stored = MemoryLogStore().append("t1", ["one", "two"])
    publish_task_log(rt, "t1", "p1", stored)
    publish_task_log(rt, "t1", "p1", [])
    (sent,) = rt.sent
    assert [line["seq"] for line in sent.args[0]["lines"]] == [1, 2]


def test_task_end_carries_its_closing_lines_to_the_task_group_only() -> None:
    rt = InMemoryRealtime()
    ended = dict(TASK, status="succeeded")
    line = {"seq": 3, "at": "2026-01-01T00:00:00Z", "level": "info", "text": "done"}
    assert publish_task_end(rt, ended, [line])
    assert [(s.name, s.target, s.args) for s in rt.sent] == [
        ("project:p1", "taskUpdated", [ended]),
        ("task:t1", "taskUpdated", [{**ended, "log": {"taskId": "t1", "from": 3,
                                                       "lines": [line]}}])]
    rt.sent.clear()
    publish_task_end(rt, ended, [])
    assert [s.args for s in rt.sent] == [[ended], [ended]]


def test_agent_update_goes_to_the_agents_group() -> None:
    rt = InMemoryRealtime()
    publish_agent_update(rt, {"id": "a1", "status": "online"})
    assert [(s.name, s.target) for s in rt.sent] == [(AGENTS_GROUP, "agentUpdated")]


def test_make_realtime_picks_the_adapter_from_settings() -> None:
    keyed = make_realtime(Settings.from_env({
        "AzureSignalRConnectionString": "Endpoint=https://x.service.signalr.net;"
                                        "AccessKey=abc;Version=1.0;"}))
    assert type(keyed).__name__ == "RestRealtime"
    unset = make_realtime(Settings.from_env({}))
    with pytest.raises(Unavailable):
        unset.negotiate("u")
    assert unset.send_to_all("x", []) is True  # publishing stays harmless


def test_connection_string_without_key_or_identity_is_a_settings_error() -> None:
    with pytest.raises(SettingsError):
        make_realtime(Settings.from_env({
            "AzureSignalRConnectionString": "Endpoint=https://x.service.signalr.net;"}))
