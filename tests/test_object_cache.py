"""The SDK's sans-I/O object cache (sync_sdk._cache) and the handles on top of it, driven
with event models and a fake channel: no server, no sockets."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from sync_generated.client import (
    DocumentRemovedEvent,
    DocumentUpdatedEvent,
    ListItemRemovedEvent,
    MapItemAddedEvent,
    MapItemUpdatedEvent,
    SubscriptionState,
)
from sync_generated.errors import ClientClosedError
from sync_generated.protocol import (
    REQUEST_ADAPTER,
    EventFrame,
    ItemAddedFrame,
    ItemRemovedFrame,
    ItemSetRequest,
    ItemSnapshot,
    ItemUpdatedFrame,
    ObjectSnapshot,
    RemovedFrame,
    RevokedFrame,
    SnapshotFrame,
    UpdatedFrame,
)
from sync_generated.protocol_dicts import Request

from sync_sdk._cache import CachedObject, ObjectCache, ObjectHandle, ObjectKind
from sync_sdk._codec import DataCodec
from sync_sdk._protocol import ClientProtocol
from sync_sdk.objects import SyncDocument, SyncList, SyncMap, SyncStream

DOC, LIST, MAP, STREAM = "ET" + "1" * 32, "ES" + "1" * 32, "MP" + "1" * 32, "TO" + "1" * 32
ME, OTHER = "my-client-id", "other-client-id"
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
JsonObject = dict[str, Any]


# ---- frames and replies, as the server sends them ---------------------------------------


def object_reply(
    kind: ObjectKind, sid: str, last_event_id: int, data: JsonObject | None = None
) -> JsonObject:
    """The ObjectSnapshot of an `open` (or `document_set`, `set_ttl`) reply."""
    return {
        "kind": kind,
        "sid": sid,
        "unique_name": "name",
        "revision": str(last_event_id),
        "data": data,
        "date_created": T0,
        "date_updated": T0,
        "date_expires": None,
        "created_by": "alice",
        "last_event_id": last_event_id,
    }


def item(ref: int | str, event_id: int, data: JsonObject) -> ItemSnapshot:
    return ItemSnapshot(
        index=ref if isinstance(ref, int) else None,
        key=ref if isinstance(ref, str) else None,
        revision=str(event_id),
        data=data,
        date_created=T0,
        date_updated=T1,
        date_expires=None,
        created_by="alice",
        last_event_id=event_id,
    )


def updated(
    event_id: int, data: JsonObject, previous: JsonObject, origin: str | None = OTHER
) -> UpdatedFrame:
    return UpdatedFrame(
        type="event",
        sid=DOC,
        kind="document",
        name="updated",
        event_id=event_id,
        origin=origin,
        data=data,
        previous_data=previous,
        revision=str(event_id),
        date_updated=T1,
        date_expires=None,
    )


def item_added(
    sid: str,
    kind: ObjectKind,
    ref: int | str,
    event_id: int,
    data: JsonObject,
    origin: str | None = OTHER,
) -> ItemAddedFrame:
    return ItemAddedFrame(
        type="event",
        sid=sid,
        kind=kind,
        name="item_added",
        event_id=event_id,
        origin=origin,
        item=item(ref, event_id, data),
        previous_data=None,
    )


def item_updated(
    sid: str,
    kind: ObjectKind,
    ref: int | str,
    event_id: int,
    data: JsonObject,
    previous: JsonObject,
) -> ItemUpdatedFrame:
    return ItemUpdatedFrame(
        type="event",
        sid=sid,
        kind=kind,
        name="item_updated",
        event_id=event_id,
        origin=OTHER,
        item=item(ref, event_id, data),
        previous_data=previous,
    )


def item_removed(
    sid: str, kind: ObjectKind, ref: int | str, event_id: int, previous: JsonObject
) -> ItemRemovedFrame:
    return ItemRemovedFrame(
        type="event",
        sid=sid,
        kind=kind,
        name="item_removed",
        event_id=event_id,
        origin=ME,
        index=ref if isinstance(ref, int) else None,
        key=ref if isinstance(ref, str) else None,
        previous_data=previous,
    )


def snapshot(
    sid: str,
    kind: ObjectKind,
    event_id: int,
    data: JsonObject | None = None,
    items: tuple[ItemSnapshot, ...] = (),
) -> SnapshotFrame:
    return SnapshotFrame(
        type="event",
        sid=sid,
        kind=kind,
        name="snapshot",
        event_id=event_id,
        origin=None,
        object=ObjectSnapshot.model_validate(object_reply(kind, sid, event_id, data)),
        items=list(items),
    )


class RecordingHandle:
    """An ObjectHandle (the same three callbacks) that records what the cache tells it."""

    def __init__(self) -> None:
        self.events: list[tuple[EventFrame, bool]] = []
        self.states: list[SubscriptionState] = []
        self.detached = False

    def dispatch(self, event: EventFrame, is_local: bool) -> None:
        self.events.append((event, is_local))

    def subscription_state_changed(self, state: SubscriptionState) -> None:
        self.states.append(state)

    def detach(self) -> None:
        self.detached = True


def open_object(
    kind: ObjectKind, sid: str, last_event_id: int = 3, data: JsonObject | None = None
) -> tuple[ObjectCache, ClientProtocol, CachedObject, RecordingHandle]:
    ordering = ClientProtocol()
    cache = ObjectCache(ordering, ME)
    obj, created = cache.open(kind, object_reply(kind, sid, last_event_id, data))
    assert created
    handle = RecordingHandle()
    obj.handles.append(handle)
    return cache, ordering, obj, handle


# ---- opening, replies and releasing -------------------------------------------------------


def test_open_tracks_a_new_object_from_its_last_event() -> None:
    cache, ordering, obj, _ = open_object("document", DOC, 7, {"a": 1})
    assert cache.get(DOC) is obj
    assert ordering.last_event_id(DOC) == 7
    assert (obj.state.revision, obj.state.data, obj.state.unique_name) == ("7", {"a": 1}, "name")
    assert obj.state.date_created == datetime(2026, 1, 1, tzinfo=UTC)
    again, created = cache.open("document", object_reply("document", DOC, 9, {"a": 2}))
    assert again is obj
    assert not created
    assert (obj.last_event_id, obj.state.data) == (9, {"a": 2})


def test_older_reply_does_not_roll_the_state_back() -> None:
    _, _, obj, _ = open_object("document", DOC, 5, {"v": 5})
    obj.apply_reply(object_reply("document", DOC, 4, {"v": 4}))
    assert (obj.last_event_id, obj.state.data) == (5, {"v": 5})
    obj.apply_reply(object_reply("document", DOC, 6, {"v": 6}))
    assert (obj.last_event_id, obj.state.data) == (6, {"v": 6})


def test_release_drops_the_object_with_its_last_handle() -> None:
    cache, ordering, obj, first = open_object("map", MAP)
    second = RecordingHandle()
    obj.handles.append(second)
    assert cache.release(obj, first) is False
    assert cache.get(MAP) is obj
    assert cache.release(obj, second) is True
    assert cache.get(MAP) is None
    assert ordering.last_event_id(MAP) is None


def test_close_all_detaches_every_handle_and_forgets_everything() -> None:
    cache, ordering, _, handle = open_object("map", MAP)
    other, _ = cache.open("document", object_reply("document", DOC, 1, {}))
    other_handle = RecordingHandle()
    other.handles.append(other_handle)
    cache.close_all()
    assert handle.detached and other_handle.detached
    assert list(cache) == []
    assert ordering.last_event_id(MAP) is None
    assert cache.receive(item_added(MAP, "map", "k", 4, {})) is None
    assert handle.events == []


# ---- live events ----------------------------------------------------------------------------


def test_updated_changes_the_document_and_reaches_every_handle() -> None:
    cache, ordering, obj, handle = open_object("document", DOC, 3, {"a": 1})
    second = RecordingHandle()
    obj.handles.append(second)
    event = updated(4, {"a": 2}, {"a": 1})
    assert cache.receive(event) is None
    assert handle.events == second.events == [(event, False)]
    assert (obj.last_event_id, obj.state.revision, obj.state.data) == (4, "4", {"a": 2})
    assert obj.state.date_updated == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert obj.state.date_updated.tzinfo is UTC  # as parsed from replies
    assert ordering.last_event_id(DOC) == 4


def test_own_event_is_local() -> None:
    cache, _, _, handle = open_object("document", DOC, 3, {})
    cache.receive(updated(4, {"a": 2}, {}, origin=ME))
    cache.receive(updated(5, {"a": 3}, {"a": 2}, origin=None))
    assert [is_local for _, is_local in handle.events] == [True, False]


def test_duplicate_is_dropped_and_gap_is_reported_without_delivery() -> None:
    cache, _, obj, handle = open_object("document", DOC, 3, {"v": 3})
    cache.receive(updated(4, {"v": 4}, {"v": 3}))
    assert cache.receive(updated(4, {"v": 4}, {"v": 3})) is None
    assert cache.receive(updated(2, {"v": 2}, {"v": 1})) is None
    assert cache.receive(updated(7, {"v": 7}, {"v": 6})) is obj
    assert len(handle.events) == 1
    assert (obj.last_event_id, obj.state.data) == (4, {"v": 4})


def test_event_of_an_object_not_cached_is_ignored() -> None:
    cache, _, _, handle = open_object("document", DOC)
    assert cache.receive(item_added(MAP, "map", "k", 1, {})) is None
    assert handle.events == []


def test_event_older_than_a_reply_is_delivered_but_keeps_the_newer_state() -> None:
    # Our write's reply (event 5) can arrive before its event and before event 4.
    cache, _, obj, handle = open_object("document", DOC, 3, {"v": 3})
    obj.apply_reply(object_reply("document", DOC, 5, {"v": 5}))
    cache.receive(updated(4, {"v": 4}, {"v": 3}))
    assert len(handle.events) == 1
    assert (obj.last_event_id, obj.state.data) == (5, {"v": 5})


@pytest.mark.parametrize(("kind", "sid", "ref"), [("list", LIST, 0), ("map", MAP, "k")])
def test_item_events_keep_the_item_cache(kind: ObjectKind, sid: str, ref: int | str) -> None:
    cache, _, obj, handle = open_object(kind, sid, 3)
    cache.receive(item_added(sid, kind, ref, 4, {"n": 1}))
    assert (obj.items[ref].revision, obj.items[ref].data) == ("4", {"n": 1})
    cache.receive(item_updated(sid, kind, ref, 5, {"n": 2}, {"n": 1}))
    assert (obj.items[ref].revision, obj.items[ref].data) == ("5", {"n": 2})
    cache.receive(item_removed(sid, kind, ref, 6, {"n": 2}))
    assert ref not in obj.items
    assert (obj.last_event_id, obj.state.revision) == (6, "6")
    assert [event.name for event, _ in handle.events] == [
        "item_added",
        "item_updated",
        "item_removed",
    ]


def test_revoked_fails_the_subscription_without_delivering() -> None:
    cache, _, obj, handle = open_object("map", MAP)
    obj.set_subscription_state(SubscriptionState.ESTABLISHED)
    revoked = RevokedFrame(
        type="event",
        sid=MAP,
        kind="map",
        name="revoked",
        event_id=None,
        origin=None,
        error={"code": 54007, "status": 403, "message": "no read access"},
    )
    assert cache.receive(revoked) is None
    assert obj.subscription_state is SubscriptionState.FAILED
    assert handle.states == [SubscriptionState.ESTABLISHED, SubscriptionState.FAILED]
    assert handle.events == []


def test_removed_is_delivered_then_the_handles_close_and_the_object_is_dropped() -> None:
    cache, ordering, _, handle = open_object("document", DOC, 3, {"v": 3})
    removed = RemovedFrame(
        type="event",
        sid=DOC,
        kind="document",
        name="removed",
        event_id=4,
        origin=ME,
        previous_data={"v": 3},
    )
    cache.receive(removed)
    assert handle.events == [(removed, True)]
    assert handle.detached
    assert cache.get(DOC) is None
    assert ordering.last_event_id(DOC) is None


def test_removal_found_on_resubscribing_tells_the_handles_the_last_data() -> None:
    cache, _, obj, handle = open_object("document", DOC, 3, {"v": 3})
    cache.remove(obj)
    [(event, is_local)] = handle.events
    assert isinstance(event, RemovedFrame)
    assert (event.sid, event.previous_data, event.event_id, is_local) == (DOC, {"v": 3}, 4, False)
    assert handle.detached
    assert cache.get(DOC) is None


def test_a_removal_without_data_tells_the_handles_the_last_data() -> None:
    """The server sends `removed` with no data when it found the removal on catching up
    (an expiry event it missed): the handles still get the data this client last had."""
    cache, _, _, handle = open_object("document", DOC, 3, {"v": 3})
    bare = RemovedFrame(
        type="event",
        sid=DOC,
        kind="document",
        name="removed",
        event_id=4,
        origin=None,
        previous_data=None,
    )
    cache.receive(bare)
    [(event, _)] = handle.events
    assert isinstance(event, RemovedFrame) and event.previous_data == {"v": 3}


# ---- snapshots (history gone): the events that were missed ------------------------------------


def test_document_snapshot_becomes_one_updated() -> None:
    cache, ordering, obj, handle = open_object("document", DOC, 3, {"v": 3})
    cache.receive(snapshot(DOC, "document", 40, {"v": 40}))
    [(event, is_local)] = handle.events
    assert isinstance(event, UpdatedFrame)
    assert (event.data, event.previous_data, event.event_id, event.revision) == (
        {"v": 40},
        {"v": 3},
        40,
        "40",
    )
    assert not is_local
    assert (obj.last_event_id, obj.state.data) == (40, {"v": 40})
    assert ordering.last_event_id(DOC) == 40


def test_map_snapshot_becomes_the_item_events_that_were_missed() -> None:
    cache, _, obj, handle = open_object("map", MAP, 3)
    for ref, event_id in (("a", 1), ("b", 2), ("c", 3)):
        obj.remember(ref, str(event_id), {"ref": ref, "v": event_id})
    frame = snapshot(
        MAP,
        "map",
        40,
        items=(
            item("b", 2, {"ref": "b", "v": 2}),  # unchanged: no event
            item("c", 39, {"ref": "c", "v": 39}),  # changed
            item("d", 40, {"ref": "d", "v": 40}),  # new
        ),
    )
    cache.receive(frame)
    events = [event for event, _ in handle.events]
    assert [(e.name, e.event_id) for e in events] == [
        ("item_removed", 40),
        ("item_updated", 40),
        ("item_added", 40),
    ]
    removed, changed, added = events
    assert isinstance(removed, ItemRemovedFrame)
    assert (removed.key, removed.index, removed.previous_data) == ("a", None, {"ref": "a", "v": 1})
    assert isinstance(changed, ItemUpdatedFrame)
    assert (changed.item.key, changed.previous_data) == ("c", {"ref": "c", "v": 3})
    assert isinstance(added, ItemAddedFrame)
    assert added.item.key == "d"
    assert {ref: cached.revision for ref, cached in obj.items.items()} == {
        "b": "2",
        "c": "39",
        "d": "40",
    }
    assert obj.last_event_id == 40


def test_list_snapshot_names_removed_items_by_index() -> None:
    cache, _, obj, handle = open_object("list", LIST, 3)
    for index in (2, 10):
        obj.remember(index, "1", {"i": index})
    cache.receive(snapshot(LIST, "list", 12))
    removed = [event for event, _ in handle.events if isinstance(event, ItemRemovedFrame)]
    assert len(removed) == len(handle.events) == 2
    assert sorted((e.index, e.key, e.previous_data["i"]) for e in removed) == [
        (2, None, 2),
        (10, None, 10),
    ]
    assert obj.items == {}


# ---- handles over a fake channel ----------------------------------------------------------------


class FakeChannel:
    """An ObjectChannel that answers every request of a type with one canned result, after
    checking that the server would accept it (encoded as the client does)."""

    def __init__(self, results: dict[str, JsonObject] | None = None) -> None:
        self.results = results or {}
        self.requests: list[tuple[BaseModel, bool]] = []
        self.released: list[ObjectHandle] = []
        self._protocol = ClientProtocol()
        self.log = logging.getLogger("sync_sdk.test")

    async def request(self, request: Request, *, idempotent: bool = False) -> JsonObject:
        _, frame = self._protocol.encode_request(request)
        self.requests.append((REQUEST_ADAPTER.validate_json(frame, strict=True), idempotent))
        return self.results.get(request["type"], {})

    async def release(self, obj: CachedObject, handle: ObjectHandle) -> None:
        self.released.append(handle)


class Point(BaseModel):
    x: int


def test_map_handle_turns_item_events_into_typed_events() -> None:
    cache, _, obj, _ = open_object("map", MAP)
    handle: SyncMap[Point] = SyncMap(FakeChannel(), obj, DataCodec(Point))
    added: list[MapItemAddedEvent[Point]] = []
    changed: list[MapItemUpdatedEvent[Point]] = []
    handle.on("item_added", added.append)
    handle.on("item_updated", changed.append)
    cache.receive(item_added(MAP, "map", "p", 4, {"x": 1}, origin=ME))
    cache.receive(item_updated(MAP, "map", "p", 5, {"x": 2}, {"x": 1}))
    [event] = added
    assert (event.item.key, event.item.data, event.item.revision, event.is_local) == (
        "p",
        Point(x=1),
        "4",
        True,
    )
    assert event.item.date_updated == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert event.item.date_updated.tzinfo is UTC
    [update] = changed
    assert (update.item.data, update.previous_item_data, update.is_local) == (
        Point(x=2),
        Point(x=1),
        False,
    )


def test_list_handle_reports_a_removed_item_by_index() -> None:
    cache, _, obj, _ = open_object("list", LIST)
    handle: SyncList[JsonObject] = SyncList(FakeChannel(), obj, DataCodec(None))
    removed: list[ListItemRemovedEvent[JsonObject]] = []
    handle.on("item_removed", removed.append)
    cache.receive(item_removed(LIST, "list", 0, 4, {"t": 1}))
    assert removed == [
        ListItemRemovedEvent(index=0, previous_item_data={"t": 1}, is_local=True, event_id=4)
    ]


async def test_document_handle_follows_the_cache_and_closes_through_its_channel() -> None:
    cache, _, obj, _ = open_object("document", DOC, 3, {"v": 3})
    channel = FakeChannel()
    doc: SyncDocument[JsonObject] = SyncDocument(channel, obj, DataCodec(None))
    updates: list[DocumentUpdatedEvent[JsonObject]] = []
    removals: list[DocumentRemovedEvent[JsonObject]] = []
    doc.on("updated", updates.append)
    doc.on("removed", removals.append)
    cache.receive(updated(4, {"v": 4}, {"v": 3}))
    assert (doc.data, doc.revision, doc.last_event_id) == ({"v": 4}, "4", 4)
    assert updates == [
        DocumentUpdatedEvent(
            data={"v": 4}, previous_data={"v": 3}, is_local=False, revision="4", event_id=4
        )
    ]
    await doc.close()
    assert doc.closed
    assert channel.released == [doc._registration]  # what the handle registered
    with pytest.raises(ClientClosedError):
        doc.on("updated", updates.append)
    assert removals == []


async def test_map_set_remembers_the_item_for_a_later_snapshot() -> None:
    cache, _, obj, _ = open_object("map", MAP, 3)
    reply = {
        "key": "k",
        "revision": "4",
        "data": {"n": 1},
        "date_created": T0,
        "date_updated": T0,
        "date_expires": None,
        "created_by": "alice",
        "last_event_id": 4,
    }
    channel = FakeChannel({"item_set": reply})
    handle: SyncMap[JsonObject] = SyncMap(channel, obj, DataCodec(None))
    result = await handle.set("k", {"n": 1})
    assert (result.key, result.data, result.revision) == ("k", {"n": 1}, "4")
    [(request, idempotent)] = channel.requests
    assert isinstance(request, ItemSetRequest)
    assert (request.sid, request.key, request.index, request.data) == (MAP, "k", None, {"n": 1})
    assert not idempotent
    removed: list[Any] = []
    handle.on("item_removed", removed.append)
    cache.receive(snapshot(MAP, "map", 9))
    assert [(e.key, e.previous_item_data) for e in removed] == [("k", {"n": 1})]


def item_reply(ref: int | str, event_id: int, data: JsonObject) -> JsonObject:
    return item(ref, event_id, data).model_dump(mode="json", exclude_none=True)


async def test_every_request_a_handle_sends_is_one_the_server_accepts() -> None:
    _, _, doc_obj, _ = open_object("document", DOC, 3, {"v": 3})
    _, _, list_obj, _ = open_object("list", LIST, 3)
    _, _, map_obj, _ = open_object("map", MAP, 3)
    page = {"items": [], "has_next": False, "has_prev": False}
    doc_channel = FakeChannel(
        {
            "document_set": object_reply("document", DOC, 4, {"v": 4}),
            "set_ttl": object_reply("document", DOC, 5, {"v": 4}),
        }
    )
    doc: SyncDocument[JsonObject] = SyncDocument(doc_channel, doc_obj, DataCodec(None))
    await doc.set({"v": 4}, ttl=60)
    await doc.update({"w": 1})
    await doc.set_ttl(0)
    await doc.remove_document()
    list_channel = FakeChannel(
        {
            "list_push": item_reply(0, 4, {}),
            "item_get": item_reply(0, 4, {}),
            "item_set": item_reply(0, 5, {}),
            "items_page": page,
        }
    )
    lst: SyncList[JsonObject] = SyncList(list_channel, list_obj, DataCodec(None))
    await lst.push({"t": 1}, ttl=5)
    await lst.get(0)
    await lst.set(0, {"t": 2})
    await lst.update(0, {"u": 1}, ttl=0)
    await lst.remove(0)
    await lst.set_item_ttl(0, 30)
    await lst.get_items(from_=3, page_size=10, order="desc")
    map_channel = FakeChannel(
        {"item_get": item_reply("k", 4, {}), "item_set": item_reply("k", 5, {}), "items_page": page}
    )
    mp: SyncMap[JsonObject] = SyncMap(map_channel, map_obj, DataCodec(None))
    await mp.set("k", {"n": 1})
    await mp.get("k")
    await mp.mutate("k", lambda data: {**data, "n": 2})
    await mp.remove("k")
    await mp.set_item_ttl("k", 30)
    await mp.get_items(from_="a")
    _, _, stream_obj, _ = open_object("stream", STREAM, 0)
    stream_channel = FakeChannel({"stream_publish": {"sid": "TZ" + "1" * 32, "data": {"m": 1}}})
    stream: SyncStream[JsonObject] = SyncStream(stream_channel, stream_obj, DataCodec(None))
    await stream.publish_message({"m": 1})
    sent = [
        type(request).__name__
        for channel in (doc_channel, list_channel, map_channel, stream_channel)
        for request, _ in channel.requests
    ]
    assert sent == [
        "DocumentSetRequest",
        "DocumentSetRequest",
        "SetTtlRequest",
        "RemoveRequest",
        "ListPushRequest",
        "ItemGetRequest",
        "ItemSetRequest",
        "ItemSetRequest",
        "ItemRemoveRequest",
        "ItemSetTtlRequest",
        "ItemsPageRequest",
        "ItemSetRequest",
        "ItemGetRequest",
        "ItemGetRequest",
        "ItemSetRequest",
        "ItemRemoveRequest",
        "ItemSetTtlRequest",
        "ItemsPageRequest",
        "StreamPublishRequest",
    ]
    # Reads are retried after a lost connection, writes never.
    retried = [
        type(r).__name__ for c in (list_channel, map_channel) for r, again in c.requests if again
    ]
    assert retried == ["ItemGetRequest", "ItemsPageRequest"] + ["ItemGetRequest"] * 2 + [
        "ItemsPageRequest"
    ]
    mutated = map_channel.requests[3][0]
    assert isinstance(mutated, ItemSetRequest)
    assert (mutated.if_match, mutated.data) == ("4", {"n": 2})  # read, then write if unchanged
