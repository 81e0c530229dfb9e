"""Service Bus emulation through the local host: sessions, peek-lock, DLQ, dedupe, schedule.

The Azure service speaks AMQP, which cannot run here; the app's local adapter reaches this
emulation over the Service Bus REST send API, so those tests exercise the real adapter.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from localhost.servicebus.broker import BrokeredMessage
from shared.bus import BusError, BusMessage, make_bus
from shared.bus.local import LocalServiceBus
from shared.settings import Settings
from tests.localhost.conftest import RunningHost, start_host
from tests.waiting import wait_until


def send(basic: RunningHost, session: str, message_id: str, body: dict[str, object],
         **extra: object) -> None:
    bus = basic.host.extension("servicebus")
    message = BrokeredMessage(body=json.dumps(body).encode(), message_id=message_id,
                              session_id=session, content_type="application/json", **extra)
    basic.run(lambda: bus.send("work", message))  # type: ignore[union-attr]


def seen(basic: RunningHost, prefix: str) -> list[dict[str, object]]:
    return [m for m in list(basic.host.module.seen_messages)
            if str(m["session"]).startswith(prefix)]


def test_100_sessions_of_50_messages_each_arrive_in_order_and_interleaved(
        basic: RunningHost) -> None:
    bus = basic.host.extension("servicebus")

    def enqueue_all() -> None:
        for seq in range(50):
            for s in range(100):
                bus.send("work", BrokeredMessage(  # type: ignore[union-attr]
                    body=json.dumps({"seq": seq}).encode(), message_id=f"order-{s}-{seq}",
                    session_id=f"order-{s}"))

    basic.host.module.max_active_sessions[0] = 0
    basic.run(enqueue_all)
    wait_until(lambda: len(seen(basic, "order-")) == 5000, "all 5000 messages handled",
               timeout=120)
    received = seen(basic, "order-")
    per_session: dict[str, list[object]] = defaultdict(list)
    for message in received:
        per_session[str(message["session"])].append(message["seq"])
    assert len(per_session) == 100
    assert all(seqs == list(range(50)) for seqs in per_session.values())
    switches = sum(1 for a, b in itertools.pairwise(received)
                   if a["session"] != b["session"])
    assert switches > 100  # sessions were processed side by side, not one after another
    assert 1 < basic.host.module.max_active_sessions[0] <= 8  # host.json maxConcurrentSessions


def test_message_metadata_matches_what_the_functions_host_provides(basic: RunningHost) -> None:
    send(basic, "meta-1", "meta-msg", {"seq": 1},
         application_properties={"operation": "deploy", "attempt": 2})
    wait_until(lambda: len(seen(basic, "meta-")) == 1, "the message handled")
    message = seen(basic, "meta-")[0]
    assert message["id"] == "meta-msg"
    assert message["delivery_count"] == 1
    assert isinstance(message["sequence_number"], int) and message["sequence_number"] > 0
    assert message["enqueued"] is not None and message["enqueued"].endswith("+00:00")
    assert message["props"] == {"operation": "deploy", "attempt": 2}
    assert message["content_type"] == "application/json"


def test_failed_message_is_abandoned_and_redelivered_with_higher_delivery_count(
        basic: RunningHost) -> None:
    send(basic, "retry-1", "retry-a", {"seq": 0, "fail_times": 2})
    send(basic, "retry-1", "retry-b", {"seq": 1})
    wait_until(lambda: len(seen(basic, "retry-")) == 2, "both messages handled")
    first, second = seen(basic, "retry-")
    assert (first["id"], first["delivery_count"]) == ("retry-a", 3)
    assert (second["id"], second["delivery_count"]) == ("retry-b", 1)  # order kept


def test_message_failing_max_delivery_count_times_is_dead_lettered_with_reason(
        basic: RunningHost) -> None:
    send(basic, "dlq-1", "dlq-poison", {"seq": 0, "fail_times": 1000})
    send(basic, "dlq-1", "dlq-next", {"seq": 1})
    wait_until(lambda: len(seen(basic, "dlq-")) == 1, "the message after the poison one")
    assert seen(basic, "dlq-")[0]["id"] == "dlq-next"
    master = {"x-functions-key": basic.host.keys.master_key}
    assert basic.get("/admin/servicebus/work/deadletters").status == 401
    reply = basic.get("/admin/servicebus/work/deadletters", headers=master)
    dead = [m for m in reply.json()["messages"] if m["messageId"] == "dlq-poison"]
    assert len(dead) == 1
    assert dead[0]["deadLetterReason"] == "MaxDeliveryCountExceeded"
    assert dead[0]["deliveryCount"] == 10
    assert basic.host.module.failures["dlq-poison"] == 10


def test_duplicate_message_id_within_window_is_accepted_and_dropped(basic: RunningHost) -> None:
    settings = Settings.from_env()
    bus = make_bus(settings.__class__(**{**settings.__dict__, "task_queue": "work"}))
    message = BusMessage(session_id="dup-1", message_id="dup-same", body={"seq": 0})
    bus.send(message)
    bus.send(message)
    bus.send(BusMessage(session_id="dup-1", message_id="dup-other", body={"seq": 1}))
    wait_until(lambda: len(seen(basic, "dup-")) == 2, "the barrier message handled")
    assert [m["id"] for m in seen(basic, "dup-")] == ["dup-same", "dup-other"]


def test_scheduled_message_is_not_delivered_before_its_time(basic: RunningHost) -> None:
    when = datetime.now(UTC) + timedelta(seconds=1)
    send(basic, "sched-1", "sched-a", {"seq": 0}, scheduled_enqueue_time=when)
    stats = basic.get("/admin/servicebus",
                      headers={"x-functions-key": basic.host.keys.master_key}).json()
    assert next(e for e in stats["entities"] if e["name"] == "work")["scheduledMessages"] >= 1
    wait_until(lambda: len(seen(basic, "sched-")) == 1, "the scheduled message")
    message = seen(basic, "sched-")[0]
    assert datetime.fromisoformat(str(message["enqueued"])) >= when.replace(microsecond=0)
    assert message["scheduled"] is not None


def test_local_adapter_sends_through_the_rest_api_with_properties(basic: RunningHost) -> None:
    settings = Settings.from_env()
    assert settings.service_bus_connection and "UseDevelopmentEmulator=true" in \
        settings.service_bus_connection
    bus = LocalServiceBus("work", settings.service_bus_connection)
    bus.send(BusMessage(session_id="rest-1", message_id="rest-a", body={"seq": 7},
                        application_properties={"operation": "backup"}))
    wait_until(lambda: len(seen(basic, "rest-")) == 1, "the REST-sent message")
    message = seen(basic, "rest-")[0]
    assert message["seq"] == 7 and message["props"] == {"operation": "backup"}
    assert message["content_type"] == "application/json"


def test_rest_send_refusals_are_clear_4xx(basic: RunningHost) -> None:
    connection = str(Settings.from_env().service_bus_connection)
    with pytest.raises(BusError, match="404"):
        LocalServiceBus("no-such-queue", connection).send(
            BusMessage(session_id="x", message_id="y", body={}))
    wrong_key = connection.replace("SharedAccessKey=", "SharedAccessKey=wrong")
    with pytest.raises(BusError, match="401"):
        LocalServiceBus("work", wrong_key).send(BusMessage(session_id="x", message_id="z",
                                                           body={}))
    no_session = basic.post("/servicebus/work/messages", b"{}", headers={
        "Authorization": LocalServiceBus("work", connection)._request(
            BusMessage(session_id="s", message_id="m", body={}))[1]["Authorization"],
        "BrokerProperties": json.dumps({"MessageId": "no-session"})})
    assert no_session.status == 400
    assert "SessionId" in no_session.json()["detail"]
    malformed = basic.post("/servicebus/work/messages", b"{}", headers={
        "Authorization": "SharedAccessSignature garbage"})
    assert malformed.status == 401


def test_undelivered_messages_survive_a_restart(basic: RunningHost, tmp_path: Path) -> None:
    first = start_host("basic", tmp_path)
    later = datetime.now(UTC) + timedelta(hours=1)
    bus = first.host.extension("servicebus")
    first.run(lambda: bus.send("work", BrokeredMessage(  # type: ignore[union-attr]
        body=b'{"seq": 0}', message_id="kept", session_id="keep-1",
        scheduled_enqueue_time=later)))
    first.stop()
    assert (tmp_path / "state" / "servicebus.json").is_file()
    second = start_host("basic", tmp_path)
    try:
        entity = second.host.extension("servicebus").entities["work"]  # type: ignore[union-attr]
        assert [m.message_id for m in second.run(entity.pending)] == ["kept"]
    finally:
        second.stop()


def test_topic_message_reaches_every_subscription(basic: RunningHost) -> None:
    connection = str(Settings.from_env().service_bus_connection)
    LocalServiceBus("events", connection).send(
        BusMessage(session_id="t", message_id="topic-1", body={"hello": "world"}))
    wait_until(lambda: len(basic.host.module.topic_messages) == 2,
               "one message per subscription")
    assert sorted(basic.host.module.topic_messages) == [
        ("audit", '{"hello":"world"}'), ("mail", '{"hello":"world"}')]  # str-annotated: body
