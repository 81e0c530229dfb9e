"""The in-memory broker on its own, with an injected clock: windows and schedules move in
test time, not wall time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from localhost.servicebus.broker import BrokeredMessage, EntityError, QueueEntity


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def message(session: str | None, mid: str, **kw: object) -> BrokeredMessage:
    return BrokeredMessage(body=b"{}", message_id=mid, session_id=session, **kw)  # type: ignore[arg-type]


def test_session_entity_rejects_a_message_without_session_id() -> None:
    entity = QueueEntity("q", requires_session=True)
    with pytest.raises(EntityError, match="SessionId"):
        entity.send(message(None, "a"))


def test_duplicate_is_dropped_inside_the_window_and_accepted_after_it() -> None:
    clock = FakeClock()
    entity = QueueEntity("q", requires_session=True, duplicate_window=60, clock=clock)
    assert entity.send(message("s", "m1")) is True
    clock.now += timedelta(seconds=59)
    assert entity.send(message("s", "m1")) is False
    clock.now += timedelta(seconds=2)
    assert entity.send(message("s", "m1")) is True
    assert entity.duplicates == 1


def test_a_locked_session_is_not_given_to_a_second_receiver() -> None:
    async def scenario() -> None:
        entity = QueueEntity("q", requires_session=True)
        entity.send(message("a", "1"))
        entity.send(message("b", "2"))
        first = await entity.accept_session(0.1)
        second = await entity.accept_session(0.1)
        assert first and second and {first.session_id, second.session_id} == {"a", "b"}
        assert await entity.accept_session(0.05) is None
        entity.send(message("a", "3"))  # goes to the holder of "a", not a new receiver
        assert await entity.accept_session(0.05) is None
    asyncio.run(scenario())


def test_next_message_waits_until_the_previous_one_is_settled() -> None:
    async def scenario() -> None:
        entity = QueueEntity("q", requires_session=True)
        entity.send(message("a", "1"))
        entity.send(message("a", "2"))
        session = await entity.accept_session(0.1)
        assert session is not None
        got = await session.receive(0.1)
        assert got is not None and got.message_id == "1"
        with pytest.raises(EntityError):
            await session.receive(0.1)
        session.abandon(got)
        again = await session.receive(0.1)
        assert again is got and again.delivery_count == 2
        session.complete(again)
        following = await session.receive(0.1)
        assert following is not None and following.message_id == "2"
    asyncio.run(scenario())


def test_released_session_with_unsettled_message_is_redelivered_to_the_next_taker() -> None:
    async def scenario() -> None:
        entity = QueueEntity("q", requires_session=True)
        entity.send(message("a", "1"))
        session = await entity.accept_session(0.1)
        assert session is not None
        await session.receive(0.1)
        session.release()
        again = await entity.accept_session(0.1)
        assert again is not None
        redelivered = await again.receive(0.1)
        assert redelivered is not None and redelivered.delivery_count == 2
    asyncio.run(scenario())


def test_abandon_past_max_delivery_count_dead_letters_with_reason() -> None:
    async def scenario() -> None:
        entity = QueueEntity("q", requires_session=False, max_delivery_count=3)
        entity.send(message(None, "poison"))
        for _ in range(3):
            got = await entity.receive(0.1)
            assert got is not None
            entity.abandon(got)
        assert await entity.receive(0.01) is None
        assert [m.dead_letter_reason for m in entity.dead_letters] == [
            "MaxDeliveryCountExceeded"]
        assert entity.dead_letters[0].delivery_count == 3
    asyncio.run(scenario())


def test_scheduled_message_becomes_visible_at_its_time_with_its_sequence_number() -> None:
    clock = FakeClock()
    entity = QueueEntity("q", requires_session=True, clock=clock)
    entity.send(message("s", "later", scheduled_enqueue_time=clock.now + timedelta(minutes=5)))
    entity.send(message("t", "now"))
    assert entity.activate_due() == 0
    assert entity.stats()["scheduledMessages"] == 1
    clock.now += timedelta(minutes=5)
    assert entity.activate_due() == 1
    pending = entity.pending()
    assert [m.message_id for m in pending] == ["later", "now"]  # by sequence number
    assert pending[0].enqueued_time == clock.now


def test_direct_message_build_agrees_with_the_library_converter() -> None:
    from azure.functions import meta
    from azure.functions.servicebus import ServiceBusMessageInConverter

    from localhost.servicebus.wire import to_library_message, trigger_metadata

    now = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    original = message("s-1", "m-1", content_type="application/json", correlation_id="c",
                       subject="deploy", application_properties={"a": 1, "b": "x"},
                       time_to_live=timedelta(hours=1), delivery_count=2,
                       sequence_number=17, enqueued_time=now, lock_token="lt",
                       locked_until=now + timedelta(minutes=1),
                       scheduled_enqueue_time=now - timedelta(seconds=5))
    ours = to_library_message(original)
    theirs = ServiceBusMessageInConverter.decode(
        meta.Datum(original.body, "bytes"), trigger_metadata=trigger_metadata(original))
    fields = ["message_id", "session_id", "content_type", "correlation_id", "label",
              "subject", "delivery_count", "sequence_number", "enqueued_sequence_number",
              "enqueued_time_utc", "locked_until", "lock_token", "scheduled_enqueue_time_utc",
              "expires_at_utc", "time_to_live", "application_properties", "user_properties",
              "state", "metadata"]
    for name in fields:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.get_body() == theirs.get_body()


def test_message_past_its_time_to_live_is_discarded_not_delivered() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        entity = QueueEntity("q", requires_session=True, clock=clock)
        entity.send(message("a", "old", time_to_live=timedelta(seconds=30)))
        entity.send(message("a", "fresh"))
        clock.now += timedelta(seconds=31)
        session = await entity.accept_session(0.1)
        assert session is not None
        got = await session.receive(0.1)
        assert got is not None and got.message_id == "fresh"
        assert entity.expired == 1
    asyncio.run(scenario())
