"""Fan-out of event frames to the connections subscribed to an object.

`Broker` delivers each object's events to this process's subscribers exactly once and in
event-id order, whatever order they were published in: a write's event may be published
out of order when storage runs writes concurrently (PostgreSQL) or when it comes from
another node (Redis). Per object ("topic") the broker keeps the last event id it delivered;
a later event waits in `pending` until the gap before it is filled, and a gap still open
after `gap_timeout` is repaired from storage's event log. When the log no longer reaches
back, or the object is gone, subscribers are told to `resync` (they catch up on their own,
with a snapshot if needed). Events without an id (stream messages) go straight through.

    InProcessBroker   one process (the embedded default)
    RedisBroker       several nodes over Redis pub/sub (sync_server.redis_broker)

Each `Event` is handed as is to every subscriber, whose `deliver()` only queues it (its
encodings are computed once per event, see `events.py`): publishing never waits on a slow
connection.
Subclasses add the remote side: `_listen`/`_unlisten` a topic, `_send` what this process
published, `broadcast` control messages (cache invalidations) to the other nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import Event
from .storage.base import Storage

log = logging.getLogger("sync_server.broker")

ControlMessage = dict[str, str]


class Subscriber(Protocol):
    def deliver(self, event: Event) -> None: ...

    def resync(self, sid: str) -> None:
        """Events of `sid` were missed and cannot be replayed here: catch up from storage."""


@dataclass(slots=True, eq=False)
class _Topic:
    service_sid: str
    sid: str
    subscribers: set[Subscriber] = field(default_factory=set)
    delivered: int | None = None  # last event id delivered; None until the baseline is read
    pending: dict[int, Event] = field(default_factory=dict)  # by event id
    expected: int = 0  # events up to this id are known to exist
    ended: bool = False  # the object's final (`removed`) event was delivered
    timer: asyncio.TimerHandle | None = None
    repair: asyncio.Task[None] | None = None
    ready: asyncio.Future[None] | None = None


class Broker:
    """Ordered, exactly-once local fan-out (see the module docstring); one process only."""

    def __init__(self, *, gap_timeout: float = 0.1, audit_interval: float = 0.0) -> None:
        """`audit_interval` > 0: compare every topic's position with storage that often and
        repair what was missed (needed when publishes can be lost, as over Redis)."""
        self.gap_timeout = gap_timeout
        self.audit_interval = audit_interval
        self.on_broadcast: Callable[[ControlMessage], None] | None = None
        self._topics: dict[str, _Topic] = {}
        self._storage: Storage | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.repairs = 0  # gaps repaired from storage (metrics, tests)
        self.reconnects = 0  # to the other nodes (multi-node brokers)
        self.delivered = 0  # events handed to subscribers, one per subscriber (metrics)

    @property
    def healthy(self) -> bool:
        """False while events from other nodes cannot arrive (e.g. Redis is reconnecting)."""
        return True

    def bind(self, storage: Storage) -> None:
        """The storage whose event log repairs gaps (set by SyncService)."""
        self._storage = storage

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("broker is not bound to a storage")
        return self._storage

    async def start(self) -> None:
        if self.audit_interval > 0:
            self._spawn(self._audit_loop())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for topic in self._topics.values():
            if topic.timer is not None:
                topic.timer.cancel()

    # ---- subscribers -------------------------------------------------------------------
    async def subscribe(self, service_sid: str, sid: str, subscriber: Subscriber) -> None:
        """Add a subscriber. Returns once every event committed after this call returns will
        reach it (the caller then reads storage for what came before)."""
        topic = self._topics.get(sid)
        if topic is None:
            topic = self._topics[sid] = _Topic(service_sid, sid)
        ready = topic.ready
        if ready is None or (ready.done() and (ready.cancelled() or ready.exception())):
            ready = topic.ready = asyncio.ensure_future(self._open(topic))  # (re)try
        topic.subscribers.add(subscriber)
        try:
            await asyncio.shield(ready)
        except BaseException:
            self.unsubscribe(sid, subscriber)
            raise

    def unsubscribe(self, sid: str, subscriber: Subscriber) -> None:
        topic = self._topics.get(sid)
        if topic is None:
            return
        topic.subscribers.discard(subscriber)
        if not topic.subscribers:
            del self._topics[sid]
            if topic.timer is not None:
                topic.timer.cancel()
            self._unlisten(sid)

    def subscriber_count(self, sid: str) -> int:
        topic = self._topics.get(sid)
        return 0 if topic is None else len(topic.subscribers)

    async def _open(self, topic: _Topic) -> None:
        await self._listen(topic.sid)
        positions = await self.storage.object_positions([topic.sid])
        self._set_position(topic, positions.get(topic.sid, 0))

    # ---- publishing --------------------------------------------------------------------
    async def publish(self, event: Event) -> None:
        """Deliver a committed event (or a stream message: event_id None) to every subscriber
        on every node."""
        self.offer(event)
        self._send(event)

    def broadcast(self, message: ControlMessage) -> None:
        """Tell the other nodes (none here) about a change that invalidates their caches."""

    def offer(self, event: Event) -> None:
        """An event from this process or another node: deliver it in order, exactly once."""
        topic = self._topics.get(event.sid)
        if topic is None:
            return
        event_id = event.event_id
        if event_id is None:
            self._fan_out(topic, event)
            return
        delivered = topic.delivered
        if delivered is not None and event_id == delivered + 1 and not topic.pending:
            topic.delivered = event_id
            topic.ended = event.final
            self._fan_out(topic, event)
            return
        if delivered is not None and event_id <= delivered:
            return  # a duplicate (e.g. our own event echoed back, or already repaired)
        topic.pending[event_id] = event
        if delivered is not None:
            self._drain(topic)

    def _fan_out(self, topic: _Topic, event: Event) -> None:
        subscribers = tuple(topic.subscribers)
        self.delivered += len(subscribers)
        for subscriber in subscribers:
            subscriber.deliver(event)

    def _drain(self, topic: _Topic) -> None:
        """Deliver pending events that are next in line; wait (bounded) for the rest."""
        assert topic.delivered is not None
        while topic.pending:
            nxt = topic.delivered + 1
            event = topic.pending.pop(nxt, None)
            if event is None:
                break
            topic.delivered = nxt
            topic.ended = event.final
            self._fan_out(topic, event)
        if topic.pending:
            self._expect(topic, min(topic.pending) - 1)

    def _set_position(self, topic: _Topic, position: int) -> None:
        """Subscribers have (or will fetch themselves) everything up to `position`."""
        topic.delivered = max(position, topic.delivered or 0)
        for event_id in [e for e in topic.pending if e <= topic.delivered]:
            del topic.pending[event_id]
        self._drain(topic)

    # ---- gaps --------------------------------------------------------------------------
    def _expect(self, topic: _Topic, upto: int) -> None:
        """Events up to `upto` exist: repair from storage unless they arrive in time."""
        topic.expected = max(topic.expected, upto)
        if topic.timer is None and topic.repair is None and self._behind(topic):
            loop = asyncio.get_running_loop()
            topic.timer = loop.call_later(self.gap_timeout, self._start_repair, topic)

    def _behind(self, topic: _Topic) -> bool:
        return topic.delivered is not None and topic.delivered < topic.expected

    def _start_repair(self, topic: _Topic) -> None:
        topic.timer = None
        if self._topics.get(topic.sid) is topic and self._behind(topic):
            topic.repair = self._spawn(self._repair(topic))

    async def _repair(self, topic: _Topic) -> None:
        try:
            while self._behind(topic) and self._topics.get(topic.sid) is topic:
                assert topic.delivered is not None
                since = topic.delivered
                events = await self.storage.events_since(topic.service_sid, topic.sid, since, 1000)
                if topic.delivered != since:
                    continue  # the missing events arrived meanwhile
                self.repairs += 1
                if events is None:
                    await self._resync(topic)
                    break
                if not events:
                    # Storage has nothing newer: whatever we expected is not there (yet).
                    topic.expected = topic.delivered
                    break
                log.info("repairing %s: events %d..%d", topic.sid, since + 1, events[-1].event_id)
                for event in events:
                    self.offer(event)
        except Exception:
            log.exception("repairing %s failed; retrying", topic.sid)
            await asyncio.sleep(self.gap_timeout)
        finally:
            topic.repair = None
        if self._topics.get(topic.sid) is topic and self._behind(topic):
            self._expect(topic, topic.expected)

    async def _resync(self, topic: _Topic) -> None:
        """The event log cannot fill the gap: jump to storage's position, let every
        subscriber catch up by itself (snapshot, or removal if the object is gone)."""
        positions = await self.storage.object_positions([topic.sid])
        position = positions.get(topic.sid)
        log.warning("%s: missed events cannot be replayed; subscribers resync", topic.sid)
        if position is None:
            topic.ended = True
            position = max([topic.expected, *topic.pending])
        topic.expected = position
        self._set_position(topic, position)
        for subscriber in tuple(topic.subscribers):
            subscriber.resync(topic.sid)

    # ---- audit -------------------------------------------------------------------------
    async def audit(self) -> None:
        """Compare every open topic with storage; repair those that fell behind."""
        topics = [t for t in self._topics.values() if t.delivered is not None and not t.ended]
        for start in range(0, len(topics), 1000):
            chunk = topics[start : start + 1000]
            positions = await self.storage.object_positions([t.sid for t in chunk])
            for topic in chunk:
                if self._topics.get(topic.sid) is not topic or topic.delivered is None:
                    continue
                position = positions.get(topic.sid)
                # An object that is gone owes us its removal event.
                self._expect(topic, topic.delivered + 1 if position is None else position)

    async def _audit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.audit_interval)
            try:
                await self.audit()
            except Exception:
                log.exception("audit failed")

    # ---- remote side (overridden by multi-node brokers) ---------------------------------
    async def _listen(self, sid: str) -> None:
        """Start receiving `sid`'s events from other nodes; return once that is in effect."""

    def _unlisten(self, sid: str) -> None:
        """Stop receiving `sid`'s events from other nodes."""

    def _send(self, event: Event) -> None:
        """Hand an event published here to the other nodes."""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class InProcessBroker(Broker):
    """Subscribers of this process only: the embedded single-process default."""
