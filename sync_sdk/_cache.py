"""Sans-I/O object cache: what the client knows of each open object, kept current by events.

Handles on the same object share one `CachedObject`: its state (metadata and a document's
data), the list or map items seen, its subscription state and the handles to deliver its
events to. `ObjectCache.receive()` takes one decoded event frame: it drops duplicates,
reports a gap (the client then re-subscribes to catch up), applies the event, turns a
`snapshot` into the events that bring the handles level, and delivers them. It does no
I/O: `sync_sdk.client` feeds it the frames of its WebSocket, tests feed it frames directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sync_generated.client import SubscriptionState
from sync_generated.protocol import (
    EventFrame,
    ItemAddedFrame,
    ItemRemovedFrame,
    ItemSnapshot,
    ItemUpdatedFrame,
    ObjectSnapshot,
    RemovedFrame,
    RevokedFrame,
    SnapshotFrame,
    UpdatedFrame,
)
from sync_generated.protocol import ObjectKind as WireObjectKind

from ._codec import as_optional_utc, as_utc, parse_optional_time, parse_time
from ._logging import TRACE, logger
from ._protocol import ClientProtocol

JsonObject = dict[str, Any]
ObjectKind = Literal["document", "list", "map", "stream"]
ItemRef = int | str  # a list item's index or a map item's key


@dataclass(frozen=True, slots=True, eq=False)
class ObjectHandle:
    """What the cache calls on a handle on an object (SyncDocument, SyncList, ...): the
    callbacks the handle registered with `CachedObject.attach()`."""

    dispatch: Callable[[EventFrame, bool], None]
    """Turn an event of the object (and whether it is the client's own) into the typed
    event the handle's handlers receive."""
    subscription_state_changed: Callable[[SubscriptionState], None]
    detach: Callable[[], None]
    """The object is gone, or the client shut down: the handle is closed."""


@dataclass(slots=True)
class ObjectState:
    """An object's metadata (and a document's data) as of `last_event_id`."""

    unique_name: str | None
    revision: str
    data: JsonObject | None
    date_created: datetime
    date_updated: datetime
    date_expires: datetime | None
    last_event_id: int

    @classmethod
    def from_reply(cls, snap: JsonObject) -> ObjectState:
        """From the ObjectSnapshot a reply carries (`open`, `document_set`, `set_ttl`)."""
        name = snap.get("unique_name")
        return cls(
            unique_name=name if isinstance(name, str) else None,
            revision=str(snap["revision"]),
            data=snap.get("data"),
            date_created=parse_time(snap["date_created"]),
            date_updated=parse_time(snap["date_updated"]),
            date_expires=parse_optional_time(snap.get("date_expires")),
            last_event_id=int(snap["last_event_id"]),
        )

    @classmethod
    def from_snapshot(cls, snap: ObjectSnapshot) -> ObjectState:
        """From the object of a `snapshot` event."""
        return cls(
            unique_name=snap.unique_name,
            revision=snap.revision,
            data=snap.data,
            date_created=as_utc(snap.date_created),
            date_updated=as_utc(snap.date_updated),
            date_expires=as_optional_utc(snap.date_expires),
            last_event_id=snap.last_event_id,
        )


@dataclass(slots=True)
class CachedItem:
    """What the client keeps of a list or map item: enough to tell what a snapshot changed."""

    revision: str
    data: JsonObject


@dataclass(eq=False)
class CachedObject:
    """The client's shared state of one open object, and the handles on it."""

    kind: ObjectKind
    sid: str
    state: ObjectState
    handles: list[ObjectHandle] = field(default_factory=list[ObjectHandle])
    subscription_state: SubscriptionState = SubscriptionState.PENDING
    # Every list/map item this client has seen, so that a snapshot sent when the server's
    # history is gone can be turned into the item events that were missed.
    items: dict[ItemRef, CachedItem] = field(default_factory=dict[ItemRef, CachedItem])

    @property
    def last_event_id(self) -> int:
        return self.state.last_event_id

    @property
    def wire_kind(self) -> WireObjectKind:
        """`kind` as the event frames made here carry it."""
        return WireObjectKind(self.kind)

    def set_subscription_state(self, state: SubscriptionState) -> None:
        if state == self.subscription_state:
            return
        self.subscription_state = state
        for handle in list(self.handles):
            handle.subscription_state_changed(state)

    # ---- items ---------------------------------------------------------------------------
    def item_ref(self, index: int | None, key: str | None) -> ItemRef | None:
        """How this object names an item: by index in a list, by key in a map."""
        return index if self.kind == "list" else key

    def remember(self, ref: ItemRef | None, revision: str, data: JsonObject) -> None:
        if ref is not None:
            self.items[ref] = CachedItem(revision, data)

    def remember_item(self, item: ItemSnapshot) -> None:
        self.remember(self.item_ref(item.index, item.key), item.revision, item.data)

    def forget(self, index: int | None, key: str | None) -> None:
        ref = self.item_ref(index, key)
        if ref is not None:
            self.items.pop(ref, None)

    # ---- changes ---------------------------------------------------------------------------
    def apply_reply(self, snap: JsonObject) -> None:
        """Take the ObjectSnapshot of a reply if it is not older than what is cached."""
        if int(snap.get("last_event_id", -1)) >= self.last_event_id:
            self.state = ObjectState.from_reply(snap)

    def advance(self, event_id: int) -> bool:
        """Move to `event_id` (the revision is the event id); False if already past it."""
        if event_id < self.state.last_event_id:
            return False
        self.state.last_event_id = event_id
        self.state.revision = str(event_id)
        return True

    def apply(self, event: EventFrame) -> None:
        """What an event (other than snapshot, removed, revoked) changes in the cache."""
        # `type(...) is`: the frames are the generated models themselves, and an isinstance
        # check on a pydantic model costs several times more (this runs for every event).
        if type(event) is UpdatedFrame:
            if self.advance(event.event_id):
                self.state.data = event.data
                self.state.date_updated = as_utc(event.date_updated)
                self.state.date_expires = as_optional_utc(event.date_expires)
        elif type(event) is ItemUpdatedFrame or type(event) is ItemAddedFrame:
            self.advance(event.event_id)
            self.remember_item(event.item)
        elif type(event) is ItemRemovedFrame:
            self.advance(event.event_id)
            self.forget(event.index, event.key)

    def catch_up(self, snapshot: SnapshotFrame) -> list[EventFrame]:
        """Take a snapshot (sent when the server's history no longer reaches back to our
        last event) and return the events that bring the handles level: `updated` for a
        document; for a list or map, `item_removed` / `item_added` / `item_updated` against
        the items this client knew."""
        current_object = snapshot.object
        event_id = current_object.last_event_id
        previous_data = self.state.data
        self.state = ObjectState.from_snapshot(current_object)
        if self.kind == "document":
            return [
                UpdatedFrame(
                    type="event",
                    sid=self.sid,
                    kind="document",
                    name="updated",
                    event_id=event_id,
                    origin=None,
                    data=current_object.data or {},
                    previous_data=previous_data or {},
                    revision=current_object.revision,
                    date_updated=current_object.date_updated,
                    date_expires=current_object.date_expires,
                )
            ]
        known = self.items
        current = {
            ref: item
            for item in snapshot.items
            if (ref := self.item_ref(item.index, item.key)) is not None
        }
        events: list[EventFrame] = []
        for ref in sorted(set(known) - set(current), key=str):
            events.append(
                ItemRemovedFrame(
                    type="event",
                    sid=self.sid,
                    kind=self.wire_kind,
                    name="item_removed",
                    event_id=event_id,
                    origin=None,
                    index=ref if isinstance(ref, int) else None,
                    key=ref if isinstance(ref, str) else None,
                    previous_data=known[ref].data,
                )
            )
        for ref, item in current.items():
            old = known.get(ref)
            if old is None:
                events.append(
                    ItemAddedFrame(
                        type="event",
                        sid=self.sid,
                        kind=self.wire_kind,
                        name="item_added",
                        event_id=event_id,
                        origin=None,
                        item=item,
                        previous_data=None,
                    )
                )
            elif old.revision != item.revision:
                events.append(
                    ItemUpdatedFrame(
                        type="event",
                        sid=self.sid,
                        kind=self.wire_kind,
                        name="item_updated",
                        event_id=event_id,
                        origin=None,
                        item=item,
                        previous_data=old.data,
                    )
                )
        self.items = {ref: CachedItem(item.revision, item.data) for ref, item in current.items()}
        return events

    def removed_event(self) -> RemovedFrame:
        """The `removed` event of an object found gone without one (on re-subscribing)."""
        return RemovedFrame(
            type="event",
            sid=self.sid,
            kind=self.wire_kind,
            name="removed",
            event_id=self.last_event_id + 1,
            origin=None,
            previous_data=self.state.data,
        )


class ObjectCache:
    """Every open object by SID; applies events to them and delivers them to their handles.

    Objects are tracked in `ordering` (the ClientProtocol's per-object event ids) while
    they are cached, so that duplicates are dropped and gaps found."""

    def __init__(
        self, ordering: ClientProtocol, client_id: str, log: logging.Logger = logger
    ) -> None:
        self._log = log
        self._ordering = ordering
        self._client_id = client_id  # events with this origin are the client's own
        self._objects: dict[str, CachedObject] = {}

    def get(self, sid: str) -> CachedObject | None:
        return self._objects.get(sid)

    def __iter__(self) -> Iterator[CachedObject]:
        """The objects cached now (a copy: safe to change the cache while iterating)."""
        return iter(list(self._objects.values()))

    def open(self, kind: ObjectKind, snap: JsonObject) -> tuple[CachedObject, bool]:
        """The object of an `open` reply's ObjectSnapshot, and whether it is newly cached."""
        sid = str(snap["sid"])
        obj = self._objects.get(sid)
        if obj is not None:
            obj.apply_reply(snap)
            return obj, False
        obj = CachedObject(kind, sid, ObjectState.from_reply(snap))
        self._objects[sid] = obj
        self._ordering.track(sid, obj.last_event_id)
        return obj, True

    def is_cached(self, obj: CachedObject) -> bool:
        """Whether `obj` is still the cached object of its SID (not dropped or replaced)."""
        return self._objects.get(obj.sid) is obj

    def drop(self, obj: CachedObject) -> None:
        if self.is_cached(obj):
            del self._objects[obj.sid]
            self._ordering.untrack(obj.sid)

    def release(self, obj: CachedObject, handle: ObjectHandle) -> bool:
        """Take a closed handle off its object. True if it was the last one: the object is
        dropped, and the client should unsubscribe."""
        if handle in obj.handles:
            obj.handles.remove(handle)
        if obj.handles or not self.is_cached(obj):
            return False
        self.drop(obj)
        return True

    def close_all(self) -> None:
        """The client shuts down: every handle is closed and nothing stays cached."""
        for obj in self:
            for handle in obj.handles:
                handle.detach()
            self.drop(obj)

    # ---- events ------------------------------------------------------------------------------
    def receive(self, event: EventFrame) -> CachedObject | None:
        """Apply and deliver one event. Returns the object whose event came after a gap (the
        client re-subscribes it from its last event to catch up), else None."""
        obj = self._objects.get(event.sid)
        verdict = self._ordering.classify(event)
        if obj is None or verdict == "unknown":
            return None
        if verdict == "duplicate":
            self._log.log(TRACE, "dropping duplicate event %s of %s", event.event_id, event.sid)
            return None
        if verdict == "gap":
            self._log.info("event gap on %s (got %s); catching up", event.sid, event.event_id)
            return obj
        # `type(...) is`, as in CachedObject.apply.
        if type(event) is SnapshotFrame:
            for caught_up in obj.catch_up(event):
                self._deliver(obj, caught_up)
        elif type(event) is RevokedFrame:
            # The identity lost read access (ACL): no more events for this object.
            self._log.warning("subscription to %s revoked: %s", obj.sid, event.error.message)
            obj.set_subscription_state(SubscriptionState.FAILED)
        elif type(event) is RemovedFrame:
            self.remove(obj, event)
        else:
            if self._log.isEnabledFor(logging.DEBUG):
                self._log.debug("event %s #%s of %s", event.name, event.event_id, event.sid)
            obj.apply(event)
            self._deliver(obj, event)
        return None

    def remove(self, obj: CachedObject, event: RemovedFrame | None = None) -> None:
        """The object is gone: deliver its `removed` event (`event`, or one made up when the
        removal was found on re-subscribing), close its handles and drop it."""
        self.drop(obj)
        if event is None:
            event = obj.removed_event()
        elif event.previous_data is None and obj.state.data is not None:
            # A removal the server found on catching up (say, an expiry whose event it
            # missed) carries no data: the previous data is what this client last had.
            event = event.model_copy(update={"previous_data": obj.state.data})
        is_local = event.origin == self._client_id
        for handle in list(obj.handles):
            handle.dispatch(event, is_local)
            handle.detach()

    def _deliver(self, obj: CachedObject, event: EventFrame) -> None:
        is_local = event.origin == self._client_id
        for handle in list(obj.handles):
            handle.dispatch(event, is_local)
