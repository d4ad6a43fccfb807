"""Events: one change of one object, as the core sees it, whatever the front door.

An event names the object (service, sid, kind), the change (`name`: updated, item_added, ...;
spec/protocol.yaml, EventName), its per-object `event_id` (None for stream messages, which
are not stored), the writer's `origin` (a client id; None for REST and expiry) and the
change's own fields (data, item, previous_data, ...).

Its canonical encoding is one JSON object,
`{"type": "event", "sid", "kind", "name", "event_id", "origin", ...fields}`: storage keeps
those bytes in the event log, Redis carries them between nodes, and the native WebSocket
protocol sends them as they are (its event frame *is* the record), so the common path
encodes an event once. Any other consumer (webhooks, the Twilsock front door) reads
`record`, parsed once per event on first use, and a front door caches its own frame with
`encoded()`, so fan-out to many clients of one protocol also encodes once per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from .records import ItemRecord, JsonObject, ObjectKind, ObjectRecord
from .wire import iso, item_snapshot

T = TypeVar("T")


class Event:
    """One event (see the module docstring). `final`: the object's removal; none follows."""

    __slots__ = ("_encoded", "_record", "_text", "event_id", "final", "frame", "service_sid", "sid")

    def __init__(
        self, service_sid: str, sid: str, event_id: int | None, frame: bytes, final: bool = False
    ) -> None:
        self.service_sid = service_sid
        self.sid = sid
        self.event_id = event_id
        self.frame = frame
        self.final = final
        self._text: str | None = None
        self._record: JsonObject | None = None
        self._encoded: dict[Callable[[Event], Any], Any] | None = None

    @classmethod
    def create(
        cls,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        name: str,
        event_id: int | None,
        origin: str | None,
        *,
        final: bool = False,
        **fields: Any,
    ) -> Event:
        return cls(
            service_sid, sid, event_id, encode(kind, sid, name, event_id, origin, **fields), final
        )

    @property
    def text(self) -> str:
        """The canonical encoding as text (the native protocol's event frame)."""
        if self._text is None:
            self._text = self.frame.decode()
        return self._text

    @property
    def record(self) -> JsonObject:
        """The event as a dict (parsed once; treat it as read-only)."""
        if self._record is None:
            self._record = orjson.loads(self.frame)
        return self._record

    @property
    def name(self) -> str:
        name: str = self.record["name"]
        return name

    @property
    def kind(self) -> ObjectKind:
        kind: ObjectKind = self.record["kind"]
        return kind

    @property
    def origin(self) -> str | None:
        origin: str | None = self.record.get("origin")
        return origin

    def encoded(self, encoder: Callable[[Event], T]) -> T:
        """`encoder(self)`, computed once per event and encoder (a front door's own frame)."""
        cache = self._encoded
        if cache is None:
            cache = self._encoded = {}
        if encoder not in cache:
            cache[encoder] = encoder(self)
        value: T = cache[encoder]
        return value

    def __repr__(self) -> str:
        return f"Event({self.sid} #{self.event_id} {self.frame[:120]!r})"


class StoredEvent(Event):
    """An event of an object's log (storage returns these): it always has an id."""

    __slots__ = ()
    event_id: int

    def __init__(
        self, service_sid: str, sid: str, event_id: int, frame: bytes, final: bool = False
    ) -> None:
        super().__init__(service_sid, sid, event_id, frame, final)


# ---- the canonical record of each kind of event ---------------------------------------


def encode(
    kind: ObjectKind, sid: str, name: str, event_id: int | None, origin: str | None, **fields: Any
) -> bytes:
    """The canonical encoding: {type: event, sid, kind, name, event_id, origin, ...fields}."""
    record: JsonObject = {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": name,
        "event_id": event_id,
        "origin": origin,
    }
    record.update(fields)
    return orjson.dumps(record)


def document_updated(
    doc: ObjectRecord, previous_data: JsonObject | None, origin: str | None
) -> bytes:
    return encode(
        "document",
        doc.sid,
        "updated",
        doc.last_event_id,
        origin,
        data=doc.data,
        previous_data=previous_data,
        revision=doc.revision,
        date_updated=iso(doc.date_updated),
        date_expires=iso(doc.date_expires),
    )


def item_changed(
    kind: ObjectKind,
    sid: str,
    name: str,
    item: ItemRecord,
    previous_data: JsonObject | None,
    origin: str | None,
) -> bytes:
    """`item_added` or `item_updated`; event_id is the item's last_event_id."""
    return encode(
        kind,
        sid,
        name,
        item.last_event_id,
        origin,
        item=item_snapshot(item),
        previous_data=previous_data,
    )


def item_removed(
    kind: ObjectKind,
    sid: str,
    event_id: int,
    item: int | str,
    previous_data: JsonObject | None,
    origin: str | None,
) -> bytes:
    ref: JsonObject = {"index": item} if isinstance(item, int) else {"key": item}
    return encode(kind, sid, "item_removed", event_id, origin, previous_data=previous_data, **ref)


def object_removed(
    kind: ObjectKind, sid: str, event_id: int, previous_data: JsonObject | None, origin: str | None
) -> bytes:
    return encode(kind, sid, "removed", event_id, origin, previous_data=previous_data)
