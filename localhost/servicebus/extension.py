"""Service Bus emulation: ``serviceBusTrigger`` consumers, a REST send endpoint, admin views.

Entities are the queues (and topic subscriptions) named by the app's trigger bindings,
``%SETTING%`` references resolved. Each is an in-memory ``QueueEntity`` (see
``localhost/servicebus/broker.py``); a queue is session-enabled when its trigger says
``isSessionsEnabled``.

**Connection string.** Before the app runs, every trigger's ``connection`` setting (e.g.
``ServiceBusConnection``) that is not already set receives::

    Endpoint=http://127.0.0.1:<port>/servicebus/;SharedAccessKeyName=localhost;
    SharedAccessKey=<key>;UseDevelopmentEmulator=true

(one line). ``UseDevelopmentEmulator=true`` marks it as an emulator, as Microsoft's
Service Bus emulator does; the ``http`` endpoint is where this host speaks the Service Bus
**REST send API**: ``POST {Endpoint}{entity}/messages`` with
``Authorization: SharedAccessSignature sr=<url>&sig=<hmac>&se=<expiry>&skn=<key name>``
(the standard SAS token, HMAC-SHA256 of ``quote(sr) + "\\n" + se`` with the key),
a ``BrokerProperties`` JSON header (``SessionId``, ``MessageId``, ``CorrelationId``,
``Label``, ``ContentType``, ``ReplyTo``, ``To``, ``TimeToLive`` seconds,
``ScheduledEnqueueTimeUtc`` RFC 1123 or ISO 8601), custom properties as further headers
(JSON-encoded values) and the body as the message body. Answers: ``201`` created (also for a
dropped duplicate, like the broker), ``400`` bad properties or missing SessionId on a
session entity, ``401`` bad token, ``404`` unknown entity, ``413`` over 256 KB.

**Admin** (master key): ``GET /admin/servicebus`` lists entities and counts,
``GET /admin/servicebus/{entity}/deadletters`` lists dead-lettered messages.

**Dead-letter sub-queue.** A trigger on ``<queue>/$DeadLetterQueue`` (Azure's sub-queue
path; no sessions, even when ``<queue>`` has them) receives each message dead-lettered from
``<queue>`` after it started, with ``DeadLetterReason``/``DeadLetterErrorDescription`` and
``DeadLetterSource`` set. Sending to a sub-queue is refused (400), as on Azure.

**host.json** ``extensions.serviceBus``: ``maxConcurrentSessions`` (8),
``maxConcurrentCalls`` (16), ``sessionIdleTimeout`` (1 min). Entity properties
(``max_delivery_count`` 10, ``duplicate_window`` 10 min, ``lock_duration`` 1 min) are
constructor options, as they belong to the entity rather than the app.

Undelivered messages are written to ``<state>/servicebus.json`` on stop and restored on
start, so a restart loses nothing that was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localhost.functions import FunctionInfo, parse_timespan
from localhost.problems import problem
from localhost.servicebus.broker import (
    DEAD_LETTER_SUFFIX,
    BrokeredMessage,
    EntityError,
    QueueEntity,
)
from localhost.servicebus.rest import (
    MAX_MESSAGE_BYTES,
    RestError,
    message_from_rest,
    verify_sas,
)
from localhost.servicebus.wire import from_json, to_function_argument, to_json

if TYPE_CHECKING:
    from localhost.host import Host

log = logging.getLogger("localhost.servicebus")
KEY_NAME = "localhost"


def entity_name(fn: FunctionInfo, host: Host) -> str:
    """``queue`` or ``topic/Subscriptions/subscription`` from the trigger binding."""
    trigger = fn.trigger
    if trigger.get("queueName"):
        return str(host.resolve_setting(trigger["queueName"]))
    topic = host.resolve_setting(trigger.get("topicName") or "")
    subscription = host.resolve_setting(trigger.get("subscriptionName") or "")
    if not topic or not subscription:
        raise ValueError(f"function {fn.name}: serviceBusTrigger needs queueName or "
                         "topicName + subscriptionName")
    return f"{topic}/Subscriptions/{subscription}"


def admin_message(fn: FunctionInfo, body: str) -> Any:
    """The trigger argument for an admin-started run: a one-off message carrying ``body``."""
    message = BrokeredMessage(body=body.encode("utf-8"), message_id="admin",
                              session_id="admin" if fn.trigger.get("isSessionsEnabled")
                              else None, delivery_count=1, sequence_number=0)
    return to_function_argument(fn, message)


class ServiceBusExtension:
    """Built-in: the queues, their consumers, and the HTTP faces of the emulation."""

    name = "servicebus"

    def __init__(self, *, max_delivery_count: int = 10, duplicate_window: float = 600.0,
                 lock_duration: float = 60.0) -> None:
        self.entity_options = {"max_delivery_count": max_delivery_count,
                               "duplicate_window": duplicate_window,
                               "lock_duration": lock_duration}
        self.entities: dict[str, QueueEntity] = {}
        self.topics: dict[str, list[str]] = {}
        self._consumers: list[tuple[FunctionInfo, QueueEntity]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.host: Host | None = None
        self.key = ""

    # -- binding ---------------------------------------------------------------------

    def bind(self, host: Host) -> None:
        self.host = host
        self.key = host.keys.system_key("servicebus", host.state_dir)
        config = host.extension_config("serviceBus")
        self.max_sessions = int(config.get("maxConcurrentSessions", 8))
        self.max_calls = int(config.get("maxConcurrentCalls", 16))
        self.idle_timeout = parse_timespan(config.get("sessionIdleTimeout"), 60.0)
        for fn in host.functions:
            if fn.trigger_type != "serviceBusTrigger":
                continue
            try:
                name = entity_name(fn, host)
            except (KeyError, ValueError) as exc:
                host.report_broken(fn, str(exc).strip("'\""))
                continue
            sessions = bool(fn.trigger.get("isSessionsEnabled"))
            entity = self.entity(name, requires_session=sessions)
            if "/Subscriptions/" in name:
                topic = name.split("/Subscriptions/")[0]
                self.topics.setdefault(topic.lower(), []).append(name.lower())
            self._consumers.append((fn, entity))
            self._set_connection(str(fn.trigger.get("connection") or "AzureWebJobsServiceBus"))
        host.register_trigger("serviceBusTrigger", lambda fn: None)
        router = host.web.router
        router.add_post("/servicebus/{entity:.+}/messages", self._rest_send)
        router.add_get("/admin/servicebus", self._admin_entities)
        router.add_get("/admin/servicebus/{entity:.+}/deadletters", self._admin_dead_letters)

    def metrics(self) -> dict[str, Any]:
        """Messages sent, completed, dropped as duplicates and expired, per entity."""
        return {name: {"sent": e.sent, "completed": e.completed,
                       "duplicates": e.duplicates, "expired": e.expired}
                for name, e in self.entities.items()}

    def entity(self, name: str, *, requires_session: bool = False) -> QueueEntity:
        """The entity called ``name`` (case-insensitive), created on first use.

        ``<entity>/$DeadLetterQueue`` names the dead-letter sub-queue of ``<entity>`` (as on
        Azure): it is attached to its parent, and never needs sessions."""
        key = name.lower()
        parent, _, sub = name.rpartition("/")
        if parent and sub.lower() == DEAD_LETTER_SUFFIX.lower():
            if key not in self.entities:
                self.entities[key] = self.entity(parent).attach_dead_letter_queue()
            return self.entities[key]
        if key not in self.entities:
            self.entities[key] = QueueEntity(name, requires_session=requires_session,
                                             **self.entity_options)  # type: ignore[arg-type]  # int and float options
        elif requires_session:
            self.entities[key].requires_session = True
        return self.entities[key]

    @property
    def connection_string(self) -> str:
        assert self.host is not None
        return (f"Endpoint={self.host.base_url}/servicebus/;SharedAccessKeyName={KEY_NAME};"
                f"SharedAccessKey={self.key};UseDevelopmentEmulator=true")

    def _set_connection(self, setting: str) -> None:
        assert self.host is not None
        if os.environ.get(setting) or os.environ.get(f"{setting}__fullyQualifiedNamespace"):
            current = os.environ.get(setting, "")
            if "UseDevelopmentEmulator=true" not in current:
                log.warning("%s is set to a real namespace: the app will send there, but "
                            "this host's triggers consume from its own emulation", setting)
                return
        self.host.set_env(setting, self.connection_string)

    # -- sending (in-process and REST) -----------------------------------------------

    def send(self, entity: str, message: BrokeredMessage) -> bool:
        """Send to a queue or a topic (fanned out to its subscriptions)."""
        targets = self.topics.get(entity.lower())
        if targets:
            accepted = False
            for target in targets:
                copy = BrokeredMessage(**{**message.__dict__,
                                          "application_properties":
                                          dict(message.application_properties)})
                accepted = self.entities[target].send(copy) or accepted
            return accepted
        found = self.entities.get(entity.lower())
        if found is None:
            raise KeyError(entity)
        return found.send(message)

    async def _rest_send(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["entity"]
        try:
            verify_sas(request, KEY_NAME, self.key)
            body = await request.content.read(MAX_MESSAGE_BYTES + 1)
            if len(body) > MAX_MESSAGE_BYTES:
                raise RestError(413, f"message body exceeds {MAX_MESSAGE_BYTES} bytes")
            message = message_from_rest(request.headers, body)
            if name.lower().endswith("/" + DEAD_LETTER_SUFFIX.lower()):
                raise RestError(400, "a dead-letter sub-queue cannot be sent to")
            if self._stopping:
                raise RestError(503, "the host is stopping")
            self.send(name, message)
        except RestError as exc:
            return problem(exc.status, exc.title, exc.detail)
        except KeyError:
            return problem(404, "Not found", f"messaging entity {name!r} does not exist "
                           "(entities are those the app's triggers listen on)")
        except EntityError as exc:
            return problem(400, "Bad request", str(exc))
        return web.Response(status=201)

    # -- admin -----------------------------------------------------------------------

    def _is_admin(self, request: web.Request) -> bool:
        assert self.host is not None
        return self.host.keys.is_master(request.headers.get("x-functions-key")
                                        or request.query.get("code"))

    async def _admin_entities(self, request: web.Request) -> web.StreamResponse:
        if not self._is_admin(request):
            return problem(401, "Unauthorized", "the admin API requires the master key")
        return web.json_response({"entities": [e.stats() for e in self.entities.values()]})

    async def _admin_dead_letters(self, request: web.Request) -> web.StreamResponse:
        if not self._is_admin(request):
            return problem(401, "Unauthorized", "the admin API requires the master key")
        entity = self.entities.get(request.match_info["entity"].lower())
        if entity is None:
            return problem(404, "Not found", f"no entity {request.match_info['entity']!r}")
        return web.json_response({"entity": entity.name,
                                  "messages": [m.summary() for m in entity.dead_letters]})

    # -- consuming -------------------------------------------------------------------

    async def start(self) -> None:
        self._restore()
        for fn, entity in self._consumers:
            sessions = entity.requires_session and bool(fn.trigger.get("isSessionsEnabled"))
            workers = self.max_sessions if sessions else self.max_calls
            loop = self._session_worker if sessions else self._plain_worker
            self._tasks += [asyncio.create_task(loop(fn, entity)) for _ in range(workers)]
        for entity in {id(e): e for _, e in self._consumers}.values():
            self._tasks.append(asyncio.create_task(self._scheduler(entity)))

    async def _session_worker(self, fn: FunctionInfo, entity: QueueEntity) -> None:
        while not self._stopping:
            session = await entity.accept_session()
            if session is None:
                continue
            try:
                while not self._stopping:
                    message = await session.receive(self.idle_timeout)
                    if message is None:
                        break
                    await self._process(fn, message, session.complete, session.abandon)
            finally:
                session.release()

    async def _plain_worker(self, fn: FunctionInfo, entity: QueueEntity) -> None:
        while not self._stopping:
            message = await entity.receive()
            if message is None:
                continue
            await self._process(fn, message, entity.complete, entity.abandon)

    async def _process(self, fn: FunctionInfo, message: BrokeredMessage,
                       complete: Any, abandon: Any) -> None:
        assert self.host is not None
        # A busy worker is never cancelled by stop(): the message it holds is settled
        # (completed or abandoned) before the worker exits.
        worker = asyncio.current_task()
        if worker is not None:
            self._busy.add(worker)
        try:
            argument = to_function_argument(fn, message)
            await self.host.invoke(fn, argument)
        except Exception:
            log.exception("function %s failed on message %s (delivery %d); abandoned",
                          fn.name, message.message_id, message.delivery_count)
            abandon(message)
        else:
            complete(message)  # autoCompleteMessages
        finally:
            if worker is not None:
                self._busy.discard(worker)

    async def _scheduler(self, entity: QueueEntity) -> None:
        while not self._stopping:
            entity.schedule_changed.clear()
            entity.activate_due()
            due = entity.next_due()
            delay = None if due is None else max(0.0, (due - entity.clock()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entity.schedule_changed.wait(), delay)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            if task not in self._busy:  # idle workers wait on the broker: stop them now
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._persist()

    # -- persistence -----------------------------------------------------------------

    @property
    def _state_file(self) -> Any:
        assert self.host is not None
        return self.host.state_dir / "servicebus.json"

    def _persist(self) -> None:
        data = {e.name: [to_json(m) for m in e.pending()] for e in self.entities.values()}
        data = {k: v for k, v in data.items() if v}
        if data:
            self._state_file.write_text(json.dumps(data), encoding="utf-8")
            log.info("kept %d undelivered messages in %s",
                     sum(map(len, data.values())), self._state_file)
        elif self._state_file.exists():
            self._state_file.unlink()

    def _restore(self) -> None:
        if not self._state_file.is_file():
            return
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            log.exception("ignoring unreadable %s", self._state_file)
            return
        for name, messages in data.items():
            entity = self.entities.get(name.lower())
            if entity is None:
                log.warning("dropping %d saved messages for unknown entity %s",
                            len(messages), name)
                continue
            for raw in messages:
                with contextlib.suppress(EntityError):
                    entity.send(from_json(raw))
        self._state_file.unlink()
