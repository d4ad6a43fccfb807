"""Fan-out of event frames to the connections subscribed to an object.

`Broker` is the interface (in-process now; Redis later, for several server processes).
A frame is decoded to text once per event and handed as is to every subscriber, whose
`deliver()` only appends to its outbox: publishing never waits on a slow connection.
"""

from __future__ import annotations

import abc
from typing import Protocol


class Subscriber(Protocol):
    def deliver(self, sid: str, event_id: int | None, frame: str) -> None: ...


class Broker(abc.ABC):
    @abc.abstractmethod
    def subscribe(self, sid: str, subscriber: Subscriber) -> None: ...

    @abc.abstractmethod
    def unsubscribe(self, sid: str, subscriber: Subscriber) -> None: ...

    @abc.abstractmethod
    async def publish(
        self, service_sid: str, sid: str, event_id: int | None, frame: bytes
    ) -> None: ...

    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


class InProcessBroker(Broker):
    """Subscribers of this process only: the embedded single-process default."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}

    def subscribe(self, sid: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(sid, set()).add(subscriber)

    def unsubscribe(self, sid: str, subscriber: Subscriber) -> None:
        subs = self._subscribers.get(sid)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subscribers[sid]

    def subscriber_count(self, sid: str) -> int:
        return len(self._subscribers.get(sid, ()))

    async def publish(self, service_sid: str, sid: str, event_id: int | None, frame: bytes) -> None:
        self.deliver_local(sid, event_id, frame.decode())

    def deliver_local(self, sid: str, event_id: int | None, text: str) -> None:
        subs = self._subscribers.get(sid)
        if subs:
            for subscriber in tuple(subs):
                subscriber.deliver(sid, event_id, text)
