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
from sync_generated.errors import SyncError
from sync_generated.protocol_dicts import (
    EventFrame,
    ItemAddedFrame,
    ItemRemovedFrame,
    ItemUpdatedFrame,
    MessagePublishedFrame,
    RemovedFrame,
    RevokedFrame,
    SnapshotFrame,
    StreamMessageResult,
    UpdatedFrame,
)

from .records import ItemRecord, JsonObject, ObjectKind, ObjectRecord
from .wire import iso, item_snapshot, object_snapshot

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
    def of(cls, service_sid: str, frame: EventFrame, *, final: bool = False) -> Event:
        """An event not from the log (a stream message, a snapshot, a revocation)."""
        return cls(service_sid, frame["sid"], frame["event_id"], orjson.dumps(frame), final)

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


# ---- the canonical record of each kind of event (spec/protocol.yaml EventFrame) ---------
# The generated TypedDicts, so mypy checks every field against the spec; the caller encodes
# each once (`orjson.dumps`) where the event is stored or published.


def document_updated(
    doc: ObjectRecord, previous_data: JsonObject, origin: str | None
) -> UpdatedFrame:
    return {
        "type": "event",
        "sid": doc.sid,
        "kind": "document",
        "name": "updated",
        "event_id": doc.last_event_id,
        "origin": origin,
        "data": doc.data or {},
        "previous_data": previous_data,
        "revision": doc.revision,
        "date_updated": iso(doc.date_updated),
        "date_expires": iso(doc.date_expires),
    }


def item_added(kind: ObjectKind, sid: str, item: ItemRecord, origin: str | None) -> ItemAddedFrame:
    """event_id is the item's last_event_id (item_updated's too)."""
    return {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": "item_added",
        "event_id": item.last_event_id,
        "origin": origin,
        "item": item_snapshot(item),
        "previous_data": None,
    }


def item_updated(
    kind: ObjectKind, sid: str, item: ItemRecord, previous_data: JsonObject, origin: str | None
) -> ItemUpdatedFrame:
    return {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": "item_updated",
        "event_id": item.last_event_id,
        "origin": origin,
        "item": item_snapshot(item),
        "previous_data": previous_data,
    }


def item_removed(
    kind: ObjectKind,
    sid: str,
    event_id: int,
    item: int | str,
    previous_data: JsonObject,
    origin: str | None,
) -> ItemRemovedFrame:
    frame: ItemRemovedFrame = {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": "item_removed",
        "event_id": event_id,
        "origin": origin,
        "previous_data": previous_data,
    }
    if isinstance(item, int):
        frame["index"] = item
    else:
        frame["key"] = item
    return frame


def object_removed(
    kind: ObjectKind, sid: str, event_id: int, previous_data: JsonObject | None, origin: str | None
) -> RemovedFrame:
    return {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": "removed",
        "event_id": event_id,
        "origin": origin,
        "previous_data": previous_data,
    }


def message_published(
    sid: str, message: StreamMessageResult, origin: str | None
) -> MessagePublishedFrame:
    return {
        "type": "event",
        "sid": sid,
        "kind": "stream",
        "name": "message_published",
        "event_id": None,
        "origin": origin,
        "message": message,
    }


def snapshot(obj: ObjectRecord, items: list[ItemRecord]) -> SnapshotFrame:
    return {
        "type": "event",
        "sid": obj.sid,
        "kind": obj.kind,
        "name": "snapshot",
        "event_id": obj.last_event_id,
        "origin": None,
        "object": object_snapshot(obj),
        "items": [item_snapshot(item) for item in items],
    }


def revoked(kind: ObjectKind, sid: str, error: SyncError) -> RevokedFrame:
    return {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": "revoked",
        "event_id": None,
        "origin": None,
        "error": {"code": error.code, "status": error.status, "message": error.message},
    }
