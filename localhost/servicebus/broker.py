"""An in-memory Service Bus queue with the broker semantics the Functions trigger relies on.

- Session-enabled entities reject messages without a SessionId. A session is locked by
  one receiver at a time and its messages are delivered strictly in sequence order; the
  next message is not delivered until the previous one is completed or dead-lettered.
- Peek-lock: a delivered message stays on the entity until completed. Abandon puts it
  back at the head with DeliveryCount + 1; reaching ``max_delivery_count`` moves it to the
  dead-letter queue with ``DeadLetterReason = MaxDeliveryCountExceeded``.
- Duplicate detection: a MessageId seen within ``duplicate_window`` seconds is accepted
  and dropped, as the real broker does.
- Messages past their TimeToLive are discarded when they reach the head of the queue.
- ``attach_dead_letter_queue`` gives the entity its ``$DeadLetterQueue`` sub-queue, which
  receives every message dead-lettered from then on (for a trigger on the sub-queue).
- Scheduled messages get their sequence number when scheduled and become visible at their
  ``ScheduledEnqueueTimeUtc`` (``activate_due``).

Everything runs on one event loop; no method blocks. The clock is injectable for tests.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Clock = Callable[[], datetime]
DEAD_LETTER_SUFFIX = "$DeadLetterQueue"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EntityError(ValueError):
    """A send the broker refuses (the REST API answers it with 400)."""


@dataclass
class BrokeredMessage:
    body: bytes
    message_id: str = ""
    session_id: str | None = None
    content_type: str | None = None
    correlation_id: str | None = None
    subject: str | None = None
    reply_to: str | None = None
    reply_to_session_id: str | None = None
    to: str | None = None
    partition_key: str | None = None
    application_properties: dict[str, Any] = field(default_factory=dict)
    time_to_live: timedelta | None = None
    scheduled_enqueue_time: datetime | None = None
    sequence_number: int = 0
    enqueued_time: datetime | None = None
    delivery_count: int = 0
    lock_token: str | None = None
    locked_until: datetime | None = None
    dead_letter_reason: str | None = None
    dead_letter_description: str | None = None
    dead_letter_source: str | None = None
    state: int = 0  # 0 active, 1 deferred, 2 scheduled (ServiceBusMessageState)

    def summary(self) -> dict[str, Any]:
        """JSON-safe view for the admin API."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None
        return {
            "messageId": self.message_id, "sessionId": self.session_id,
            "sequenceNumber": self.sequence_number, "deliveryCount": self.delivery_count,
            "enqueuedTimeUtc": iso(self.enqueued_time),
            "deadLetterReason": self.dead_letter_reason,
            "deadLetterErrorDescription": self.dead_letter_description,
            "contentType": self.content_type, "subject": self.subject,
            "applicationProperties": self.application_properties,
            "body": self.body.decode("utf-8", errors="replace"),
        }


class SessionLock:
    """An accepted session: the holder receives its messages in order until it releases."""

    def __init__(self, entity: QueueEntity, session_id: str) -> None:
        self.entity = entity
        self.session_id = session_id
        self.released = False

    async def receive(self, idle_timeout: float) -> BrokeredMessage | None:
        """The next message of this session, or ``None`` after ``idle_timeout`` without one."""
        return await self.entity._receive_session(self, idle_timeout)

    def complete(self, message: BrokeredMessage) -> None:
        self.entity._settle_session(self.session_id, message, None)

    def abandon(self, message: BrokeredMessage) -> None:
        self.entity._abandon(message, self.session_id)

    def dead_letter(self, message: BrokeredMessage, reason: str, description: str = "") -> None:
        self.entity._settle_session(self.session_id, message, (reason, description))

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.entity._release(self.session_id)


class QueueEntity:
    """One queue (or one topic subscription)."""

    def __init__(self, name: str, *, requires_session: bool, max_delivery_count: int = 10,
                 lock_duration: float = 60.0, duplicate_window: float = 600.0,
                 clock: Clock = utcnow) -> None:
        self.name = name
        self.requires_session = requires_session
        self.max_delivery_count = max_delivery_count
        self.lock_duration = lock_duration
        self.duplicate_window = timedelta(seconds=duplicate_window)
        self.clock = clock
        self.dead_letters: list[BrokeredMessage] = []
        # The ``<name>/$DeadLetterQueue`` sub-queue, when something receives from it: each
        # dead-lettered message is also delivered there (see ``attach_dead_letter_queue``).
        self.dead_letter_queue: QueueEntity | None = None
        self._sequence = itertools.count(1)
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._scheduled: list[tuple[datetime, int, BrokeredMessage]] = []
        self.schedule_changed = asyncio.Event()
        # Sessions: pending messages per session; which are locked; which wait for a taker.
        self._sessions: dict[str, deque[BrokeredMessage]] = {}
        self._locked: set[str] = set()
        self._in_flight: dict[str, BrokeredMessage] = {}
        self._available: OrderedDict[str, None] = OrderedDict()
        self._acceptors: deque[asyncio.Future[None]] = deque()
        self._session_waiters: dict[str, asyncio.Future[None]] = {}
        # Sessionless: FIFO of pending messages.
        self._plain: deque[BrokeredMessage] = deque()
        self._plain_waiters: deque[asyncio.Future[None]] = deque()
        self.sent = self.duplicates = self.completed = self.expired = 0

    # -- sending ---------------------------------------------------------------------

    def send(self, message: BrokeredMessage) -> bool:
        """Accept ``message``; ``False`` if dropped as a duplicate. Raises ``EntityError``."""
        if self.requires_session and not message.session_id:
            raise EntityError(f"entity {self.name} requires sessions: the message has no "
                              "SessionId")
        if not message.message_id:
            message.message_id = uuid.uuid4().hex
        now = self.clock()
        self._forget_expired_ids(now)
        if message.message_id in self._seen:
            self.duplicates += 1
            return False
        self._seen[message.message_id] = now + self.duplicate_window
        message.sequence_number = next(self._sequence)
        self.sent += 1
        due = message.scheduled_enqueue_time
        if due is not None and due > now:
            message.state = 2
            heapq.heappush(self._scheduled, (due, message.sequence_number, message))
            self.schedule_changed.set()
            return True
        self._enqueue(message, now)
        return True

    def _forget_expired_ids(self, now: datetime) -> None:
        while self._seen:
            first, expiry = next(iter(self._seen.items()))
            if expiry > now:
                break
            del self._seen[first]

    def next_due(self) -> datetime | None:
        return self._scheduled[0][0] if self._scheduled else None

    def activate_due(self) -> int:
        """Make scheduled messages whose time has come visible; returns how many."""
        now = self.clock()
        count = 0
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, message = heapq.heappop(self._scheduled)
            message.state = 0
            self._enqueue(message, now)
            count += 1
        return count

    def _enqueue(self, message: BrokeredMessage, now: datetime) -> None:
        message.enqueued_time = now
        if message.session_id is None or not self.requires_session:
            self._plain.append(message)
            _wake_one(self._plain_waiters)
            return
        sid = message.session_id
        queue = self._sessions.setdefault(sid, deque())
        queue.append(message)
        if sid in self._locked:
            waiter = self._session_waiters.pop(sid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif sid not in self._available:
            self._available[sid] = None
            _wake_one(self._acceptors)

    # -- sessions --------------------------------------------------------------------

    async def accept_session(self, timeout: float | None = None) -> SessionLock | None:
        """Lock the session that has waited longest with messages; ``None`` on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._available:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            self._acceptors.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return None
            finally:
                if waiter in self._acceptors:
                    self._acceptors.remove(waiter)
        sid, _ = self._available.popitem(last=False)
        self._locked.add(sid)
        return SessionLock(self, sid)

    async def _receive_session(self, lock: SessionLock,
                               idle_timeout: float) -> BrokeredMessage | None:
        sid = lock.session_id
        if sid in self._in_flight:
            raise EntityError(f"session {sid}: previous message not settled")
        queue = self._live_head(sid)
        if not queue:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._session_waiters[sid] = waiter
            try:
                await asyncio.wait_for(waiter, idle_timeout)
            except TimeoutError:
                return None
            finally:
                if self._session_waiters.get(sid) is waiter:
                    del self._session_waiters[sid]
            queue = self._live_head(sid)
            if not queue:
                return None
        message = queue[0]
        self._lock_message(message)
        self._in_flight[sid] = message
        return message

    def _expired(self, message: BrokeredMessage) -> bool:
        return (message.time_to_live is not None and message.enqueued_time is not None
                and message.enqueued_time + message.time_to_live <= self.clock())

    def _live_head(self, sid: str) -> deque[BrokeredMessage] | None:
        """The session's queue after discarding expired messages at its head.

        Expired messages are dropped, as on an entity without dead-lettering on expiry.
        """
        queue = self._sessions.get(sid)
        while queue and self._expired(queue[0]):
            queue.popleft()
            self.expired += 1
        if queue is not None and not queue:
            del self._sessions[sid]
            return None
        return queue

    def _lock_message(self, message: BrokeredMessage) -> None:
        message.delivery_count += 1
        message.lock_token = str(uuid.uuid4())
        message.locked_until = self.clock() + timedelta(seconds=self.lock_duration)

    def _settle_session(self, sid: str, message: BrokeredMessage,
                        dead_letter: tuple[str, str] | None) -> None:
        if self._in_flight.get(sid) is not message:
            raise EntityError(f"message {message.message_id} is not locked by session {sid}")
        del self._in_flight[sid]
        queue = self._sessions[sid]
        queue.popleft()
        if not queue:
            del self._sessions[sid]
        self._finish(message, dead_letter)

    def _finish(self, message: BrokeredMessage, dead_letter: tuple[str, str] | None) -> None:
        message.lock_token = message.locked_until = None
        if dead_letter is None:
            self.completed += 1
            return
        message.dead_letter_reason, message.dead_letter_description = dead_letter
        message.dead_letter_source = self.name
        self.dead_letters.append(message)
        if self.dead_letter_queue is not None:
            # The sub-queue's copy is a fresh delivery: its own lock and delivery count, no
            # session (the real DLQ of a session entity is received without sessions).
            copy = BrokeredMessage(**{**message.__dict__, "delivery_count": 0,
                                      "application_properties":
                                      dict(message.application_properties)})
            self.dead_letter_queue.send(copy)

    def attach_dead_letter_queue(self) -> QueueEntity:
        """The ``<name>/$DeadLetterQueue`` sub-queue (created on first use): sessionless, no
        duplicate detection (a message id may be dead-lettered more than once) and nothing
        dead-letters further from it."""
        if self.dead_letter_queue is None:
            self.dead_letter_queue = QueueEntity(
                f"{self.name}/{DEAD_LETTER_SUFFIX}", requires_session=False,
                max_delivery_count=self.max_delivery_count, lock_duration=self.lock_duration,
                duplicate_window=0.0, clock=self.clock)
        return self.dead_letter_queue

    def _abandon(self, message: BrokeredMessage, sid: str | None) -> None:
        exceeded = message.delivery_count >= self.max_delivery_count
        if sid is not None:
            if exceeded:
                self._settle_session(sid, message, (
                    "MaxDeliveryCountExceeded",
                    f"Message could not be consumed after {self.max_delivery_count} "
                    "delivery attempts."))
            else:
                # Stays at the head of its session; the lock holder gets it again next.
                self._in_flight.pop(sid, None)
                message.lock_token = message.locked_until = None
            return
        if exceeded:
            self._finish(message, ("MaxDeliveryCountExceeded",
                                   f"Message could not be consumed after "
                                   f"{self.max_delivery_count} delivery attempts."))
            return
        message.lock_token = message.locked_until = None
        self._plain.appendleft(message)
        _wake_one(self._plain_waiters)

    def _release(self, sid: str) -> None:
        in_flight = self._in_flight.pop(sid, None)
        if in_flight is not None:  # released without settling: the lock simply lapses
            in_flight.lock_token = in_flight.locked_until = None
        self._locked.discard(sid)
        if self._sessions.get(sid):
            self._available[sid] = None
            _wake_one(self._acceptors)

    # -- sessionless -----------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> BrokeredMessage | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._plain:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            self._plain_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return None
            finally:
                if waiter in self._plain_waiters:
                    self._plain_waiters.remove(waiter)
        message = self._plain.popleft()
        if self._expired(message):
            self.expired += 1
            return await self.receive(timeout)
        self._lock_message(message)
        return message

    def complete(self, message: BrokeredMessage) -> None:
        self._finish(message, None)

    def abandon(self, message: BrokeredMessage) -> None:
        self._abandon(message, None)

    def dead_letter(self, message: BrokeredMessage, reason: str, description: str = "") -> None:
        self._finish(message, (reason, description))

    # -- persistence and stats -------------------------------------------------------

    def pending(self) -> list[BrokeredMessage]:
        """Every message not yet completed (active, scheduled), in sequence order."""
        messages = list(self._plain) + [m for q in self._sessions.values() for m in q]
        messages += [m for _, _, m in self._scheduled]
        return sorted(messages, key=lambda m: m.sequence_number)

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "requiresSession": self.requires_session,
                "activeMessages": len(self._plain) + sum(map(len, self._sessions.values())),
                "scheduledMessages": len(self._scheduled),
                "deadLetterMessages": len(self.dead_letters), "sent": self.sent,
                "completed": self.completed, "duplicatesDropped": self.duplicates,
                "expired": self.expired,
                "lockedSessions": len(self._locked)}


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
