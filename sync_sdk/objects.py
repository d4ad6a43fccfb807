"""SyncDocument, SyncList, SyncMap, SyncStream and Paginator: handles on server objects.

Each handle is opened by `Client.document()` / `list()` / `map()` / `stream()`. Handles
of the same object share one subscription and one cached state (`_cache.CachedObject`);
each handle has its own data type and its own event handlers. A handle sends requests
through the `ObjectChannel` it was given, not through the client itself. The typed `on()`
overloads come from the generated `Sync*Events` bases.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from sync_generated.client import (
    MAX_STREAM_MESSAGE_BYTES,
    CollectionRemovedEvent,
    DocumentRemovedEvent,
    DocumentUpdatedEvent,
    Handler,
    JsonObject,
    ListItemAddedEvent,
    ListItemRemovedEvent,
    ListItemUpdatedEvent,
    MapItemAddedEvent,
    MapItemRemovedEvent,
    MapItemUpdatedEvent,
    StreamMessagePublishedEvent,
    SubscriptionState,
    SyncDocumentEvents,
    SyncListEvents,
    SyncListItem,
    SyncMapEvents,
    SyncMapItem,
    SyncStreamEvents,
    SyncStreamMessage,
    T,
    Unsubscribe,
)
from sync_generated.errors import (
    ClientClosedError,
    ConflictError,
    DocumentRevisionMismatchError,
    InvalidRequestError,
    ListItemRevisionMismatchError,
    MapItemNotFoundError,
    MapItemRevisionMismatchError,
)
from sync_generated.protocol import (
    EventFrame,
    ItemAddedFrame,
    ItemRemovedFrame,
    ItemSnapshot,
    ItemUpdatedFrame,
    MessagePublishedFrame,
    RemovedFrame,
    UpdatedFrame,
)
from sync_generated.protocol_dicts import Request

from ._cache import CachedObject, ObjectHandle, ObjectKind
from ._codec import DataCodec, as_optional_utc, as_utc, parse_time
from ._emitter import EventEmitter
from ._protocol import UNNUMBERED
from .validation import (
    check_data,
    check_index,
    check_map_key,
    check_order,
    check_page_size,
    check_ttl,
)

Order = Literal["asc", "desc"]
I = TypeVar("I")  # noqa: E741

_MAX_MUTATE_ATTEMPTS = 50


class ObjectChannel(Protocol):
    """What a handle needs from the client that opened it."""

    def request(
        self, request: Request, *, idempotent: bool = False
    ) -> Coroutine[Any, Any, JsonObject]:
        """Send a request and return its result (see `Client`: waits for a connection,
        retries an idempotent request, raises the reply's error)."""
        ...

    async def release(self, obj: CachedObject, handle: ObjectHandle) -> None:
        """A handle on `obj` was closed (the last one ends the subscription)."""
        ...

    @property
    def log(self) -> logging.Logger:
        """The client's logger (handler failures are logged there)."""
        ...


class SyncObject:
    """What SyncDocument, SyncList, SyncMap and SyncStream share: identity, metadata,
    handlers, closing."""

    _kind: ObjectKind

    def __init__(self, channel: ObjectChannel, obj: CachedObject, codec: DataCodec[Any]) -> None:
        self._channel = channel
        self._object = obj
        self._codec = codec
        self._emitter = EventEmitter(f"{type(self).__name__}({obj.sid})", channel.log)
        self._closed = False
        # What the object cache calls on this handle; registered with the object at once.
        self._registration = ObjectHandle(
            self._dispatch, self._subscription_state_changed, self._detach
        )
        obj.handles.append(self._registration)

    # ---- metadata ----------------------------------------------------------------------
    @property
    def sid(self) -> str:
        """The object's SID."""
        return self._object.sid

    @property
    def unique_name(self) -> str | None:
        """The object's unique name, if it has one."""
        return self._object.state.unique_name

    @property
    def revision(self) -> str:
        """Current revision (changes on every write)."""
        return self._object.state.revision

    @property
    def last_event_id(self) -> int:
        """Id of the last event applied to this object."""
        return self._object.last_event_id

    @property
    def date_created(self) -> datetime:
        return self._object.state.date_created

    @property
    def date_updated(self) -> datetime:
        return self._object.state.date_updated

    @property
    def date_expires(self) -> datetime | None:
        """When the object expires, or None if it never does."""
        return self._object.state.date_expires

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscription_state(self) -> SubscriptionState:
        """pending (subscribing or catching up), established (live) or failed."""
        return self._object.subscription_state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sid={self.sid} unique_name={self.unique_name!r} revision={self.revision}>"

    # ---- lifecycle ---------------------------------------------------------------------
    async def close(self) -> None:
        """Stop receiving events on this handle (the object itself is kept)."""
        if self._closed:
            return
        self._detach()
        await self._channel.release(self._object, self._registration)

    async def set_ttl(self, ttl: int) -> None:
        """Expire the object `ttl` seconds from now (0 = never)."""
        snap = await self._request(
            {
                "id": UNNUMBERED,
                "type": "set_ttl",
                "sid": self.sid,
                "ttl": check_ttl(ttl, optional=False),
            }
        )
        self._object.apply_reply(snap)

    async def _remove(self) -> None:
        await self._request({"id": UNNUMBERED, "type": "remove", "sid": self.sid})

    # ---- plumbing ----------------------------------------------------------------------
    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        if self._closed:
            raise ClientClosedError(f"{type(self).__name__} {self.sid} is closed")
        return self._emitter.on(event, handler)

    def _request(
        self, request: Request, *, idempotent: bool = False
    ) -> Coroutine[Any, Any, JsonObject]:
        """The channel's request coroutine (awaited by the caller: one frame less per call)."""
        if self._closed:
            raise ClientClosedError(f"{type(self).__name__} {self.sid} is closed")
        return self._channel.request(request, idempotent=idempotent)

    def _dispatch_removed(self, is_local: bool) -> None:
        self._emitter.emit("removed", CollectionRemovedEvent(is_local=is_local))

    # ---- what the object cache calls (_cache.ObjectHandle) --------------------------------
    def _dispatch(self, event: EventFrame, is_local: bool) -> None:
        """Turn an event of this object into the typed event handlers receive."""
        raise NotImplementedError

    def _subscription_state_changed(self, state: SubscriptionState) -> None:
        self._emitter.emit("subscription_state_changed", state)

    def _detach(self) -> None:
        self._closed = True
        self._emitter.clear()


class SyncDocument(SyncObject, SyncDocumentEvents[T]):
    """A JSON document. `data` is the latest known value; `updated` fires on every change."""

    _kind = "document"

    def __init__(self, channel: ObjectChannel, obj: CachedObject, codec: DataCodec[T]) -> None:
        super().__init__(channel, obj, codec)
        self._codec: DataCodec[T] = codec
        self._data_cache: tuple[int, T] | None = None

    @property
    def data(self) -> T:
        """The document's current data."""
        eid = self._object.last_event_id
        if self._data_cache is None or self._data_cache[0] != eid:
            self._data_cache = (eid, self._codec.decode(self._object.state.data or {}))
        return self._data_cache[1]

    async def set(self, data: T, *, ttl: int | None = None) -> T:
        """Overwrite the document's data."""
        return await self._write(self._codec.encode(data), merge=False, ttl=ttl, if_match=None)

    async def update(self, patch: JsonObject, *, ttl: int | None = None) -> T:
        """Shallow-merge `patch` into the data (atomically, on the server)."""
        return await self._write(patch, merge=True, ttl=ttl, if_match=None)

    async def mutate(self, mutator: Callable[[T], T | None], *, ttl: int | None = None) -> T:
        """Read-modify-write: apply `mutator` to the current data and write the result if the
        revision is unchanged; on conflict, refresh and retry. Returning None cancels (the
        current data is returned)."""
        for _ in range(_MAX_MUTATE_ATTEMPTS):
            current = self.data
            new = mutator(current)
            if new is None:
                return current
            try:
                return await self._write(
                    self._codec.encode(new), merge=False, ttl=ttl, if_match=self.revision
                )
            except ConflictError:
                await self._refresh()
        raise DocumentRevisionMismatchError(
            f"mutate gave up after {_MAX_MUTATE_ATTEMPTS} conflicting attempts"
        )

    async def remove_document(self) -> None:
        """Delete the document; every subscriber gets `removed`."""
        await self._remove()

    async def _write(
        self, data: JsonObject, *, merge: bool, ttl: int | None, if_match: str | None
    ) -> T:
        check_data(data)
        snap = await self._request(
            {
                "id": UNNUMBERED,
                "type": "document_set",
                "sid": self.sid,
                "data": data,
                "merge": merge,
                "ttl": check_ttl(ttl),
                "if_match": if_match,
            }
        )
        self._object.apply_reply(snap)
        return self._codec.decode(snap.get("data") or {})

    async def _refresh(self) -> None:
        snap = await self._request(
            {
                "id": UNNUMBERED,
                "type": "open",
                "kind": "document",
                "object_id": self.sid,
                "mode": "open_existing",
            },
            idempotent=True,
        )
        self._object.apply_reply(snap)

    def _dispatch(self, event: EventFrame, is_local: bool) -> None:
        if type(event) is UpdatedFrame:
            if self._emitter.has_listeners("updated"):
                self._emitter.emit(
                    "updated",
                    DocumentUpdatedEvent(
                        data=self._codec.decode(event.data),
                        previous_data=self._codec.decode(event.previous_data),
                        is_local=is_local,
                        revision=event.revision,
                        event_id=event.event_id,
                    ),
                )
        elif type(event) is RemovedFrame:
            self._emitter.emit(
                "removed",
                DocumentRemovedEvent(
                    previous_data=self._codec.decode_optional(event.previous_data),
                    is_local=is_local,
                ),
            )


class Paginator(Generic[I]):
    """One page of items: `items`, `has_next_page` / `next_page()`, `has_prev_page` / `prev_page()`."""

    items: builtins.list[I]
    """The items of this page, in the page's order."""
    has_next_page: bool
    has_prev_page: bool

    def __init__(
        self,
        items: builtins.list[I],
        *,
        has_next_page: bool,
        has_prev_page: bool,
        fetch: Callable[[Any, bool, Order], Awaitable[Paginator[I]]],
        cursor: Callable[[I], Any],
        order: Order,
    ) -> None:
        self.items = items
        self.has_next_page = has_next_page
        self.has_prev_page = has_prev_page
        self._fetch = fetch
        self._cursor = cursor
        self._order: Order = order

    async def next_page(self) -> Paginator[I]:
        """The page after this one (same order); raises if there is none."""
        if not self.has_next_page or not self.items:
            raise IndexError("no next page")
        return await self._fetch(self._cursor(self.items[-1]), False, self._order)

    async def prev_page(self) -> Paginator[I]:
        """The page before this one (same order); raises if there is none."""
        if not self.has_prev_page or not self.items:
            raise IndexError("no previous page")
        reverse: Order = "desc" if self._order == "asc" else "asc"
        page = await self._fetch(self._cursor(self.items[0]), False, reverse)
        page.items.reverse()
        page.has_next_page, page.has_prev_page = True, page.has_next_page
        page._order = self._order
        return page

    def __repr__(self) -> str:
        return f"<Paginator {len(self.items)} items next={self.has_next_page} prev={self.has_prev_page}>"


class _Collection(SyncObject, Generic[T]):
    """What lists and maps share: item conversion, paging, item TTL, mutate."""

    _item_field: Literal["index", "key"]
    _revision_mismatch: type[ConflictError]  # what a mutate that gives up raises
    _added_event: type[Any]
    _updated_event: type[Any]

    def __init__(self, channel: ObjectChannel, obj: CachedObject, codec: DataCodec[T]) -> None:
        super().__init__(channel, obj, codec)
        self._codec: DataCodec[T] = codec

    def _index_and_key(self, item: Any) -> tuple[int | None, str | None]:
        """A request's `index` and `key` for an item: a list names it by index, a map by key."""
        return (item, None) if self._item_field == "index" else (None, item)

    def _item(
        self,
        ref: Any,
        data: JsonObject,
        revision: str,
        date_updated: datetime,
        date_expires: datetime | None,
        last_event_id: int,
    ) -> Any:
        """The SyncListItem / SyncMapItem of an item at `ref` (index or key)."""
        raise NotImplementedError

    def _item_removed(self, event: ItemRemovedFrame, is_local: bool) -> Any:
        """The ListItemRemovedEvent / MapItemRemovedEvent of an `item_removed` frame."""
        raise NotImplementedError

    def _event_item(self, snap: ItemSnapshot) -> Any:
        """The item an `item_added` / `item_updated` event carries."""
        return self._item(
            getattr(snap, self._item_field),
            snap.data,
            snap.revision,
            as_utc(snap.date_updated),
            as_optional_utc(snap.date_expires),
            snap.last_event_id,
        )

    def _dispatch(self, event: EventFrame, is_local: bool) -> None:
        # `type(...) is`: cheaper than isinstance on a pydantic model (see _cache).
        if type(event) is RemovedFrame:
            self._dispatch_removed(is_local)
        elif not self._emitter.has_listeners(event.name):
            return  # nobody listens: skip decoding
        elif type(event) is ItemRemovedFrame:
            self._emitter.emit(event.name, self._item_removed(event, is_local))
        elif type(event) is ItemAddedFrame:
            payload = self._added_event(item=self._event_item(event.item), is_local=is_local)
            self._emitter.emit(event.name, payload)
        elif type(event) is ItemUpdatedFrame:
            payload = self._updated_event(
                item=self._event_item(event.item),
                previous_item_data=self._codec.decode(event.previous_data),
                is_local=is_local,
            )
            self._emitter.emit(event.name, payload)

    def _remembered(self, snap: JsonObject) -> Any:
        """The item a reply carries (an ItemSnapshot), remembered for catching up later."""
        ref, revision, data = snap[self._item_field], str(snap["revision"]), snap["data"]
        self._object.remember(ref, revision, data)
        expires = snap.get("date_expires")
        return self._item(
            ref,
            data,
            revision,
            parse_time(snap["date_updated"]),
            None if expires is None else parse_time(expires),
            int(snap["last_event_id"]),
        )

    async def _get(self, item: Any) -> Any:
        index, key = self._index_and_key(item)
        snap = await self._request(
            {"id": UNNUMBERED, "type": "item_get", "sid": self.sid, "index": index, "key": key},
            idempotent=True,
        )
        return self._remembered(snap)

    async def _set(
        self,
        item: Any,
        data: JsonObject,
        *,
        merge: bool,
        ttl: int | None,
        if_match: str | None,
        if_absent: bool = False,
    ) -> Any:
        check_data(data)
        index, key = (item, None) if self._item_field == "index" else (None, item)
        snap = await self._request(
            {
                "id": UNNUMBERED,
                "type": "item_set",
                "sid": self._object.sid,
                "index": index,
                "key": key,
                "data": data,
                "merge": merge,
                "ttl": None if ttl is None else check_ttl(ttl),
                "if_match": if_match,
                "if_absent": if_absent,
            }
        )
        return self._remembered(snap)

    async def _remove_item(self, item: Any) -> None:
        index, key = self._index_and_key(item)
        await self._request(
            {"id": UNNUMBERED, "type": "item_remove", "sid": self.sid, "index": index, "key": key}
        )

    async def _set_item_ttl(self, item: Any, ttl: int) -> None:
        index, key = self._index_and_key(item)
        await self._request(
            {
                "id": UNNUMBERED,
                "type": "item_set_ttl",
                "sid": self.sid,
                "index": index,
                "key": key,
                "ttl": check_ttl(ttl, optional=False),
            }
        )

    async def _page(
        self, start: Any, inclusive: bool, order: Order, page_size: int
    ) -> Paginator[Any]:
        from_index, from_key = self._index_and_key(start)
        result = await self._request(
            {
                "id": UNNUMBERED,
                "type": "items_page",
                "sid": self.sid,
                "from_index": from_index,
                "from_key": from_key,
                "inclusive": inclusive,
                "page_size": page_size,
                "order": order,
            },
            idempotent=True,
        )

        async def fetch(cursor: Any, incl: bool, o: Order) -> Paginator[Any]:
            return await self._page(cursor, incl, o, page_size)

        return Paginator(
            [self._remembered(s) for s in result.get("items", [])],
            has_next_page=bool(result.get("has_next")),
            has_prev_page=bool(result.get("has_prev")),
            fetch=fetch,
            cursor=lambda it: getattr(it, self._item_field),
            order=order,
        )

    async def _mutate(
        self, item: Any, mutator: Callable[[T], T | None], ttl: int | None, *, create: bool
    ) -> Any:
        for _ in range(_MAX_MUTATE_ATTEMPTS):
            try:
                current = await self._get(item)
                base, revision = current.data, current.revision
            except MapItemNotFoundError:
                if not create:
                    raise
                current, base, revision = None, self._codec.decode({}), None
            new = mutator(base)
            if new is None:
                if current is None:
                    raise MapItemNotFoundError(f"map item {item!r} not found and mutator cancelled")
                return current
            try:
                # A missing item is created only if it is still missing (54208 otherwise).
                return await self._set(
                    item,
                    self._codec.encode(new),
                    merge=False,
                    ttl=ttl,
                    if_match=revision,
                    if_absent=current is None,
                )
            except ConflictError:
                continue
        raise self._revision_mismatch(
            f"mutate gave up after {_MAX_MUTATE_ATTEMPTS} conflicting attempts"
        )


class SyncList(_Collection[T], SyncListEvents[T]):
    """An ordered list; indexes are stable and never reused after removal."""

    _kind = "list"
    _revision_mismatch = ListItemRevisionMismatchError
    _item_field = "index"
    _added_event = ListItemAddedEvent
    _updated_event = ListItemUpdatedEvent

    def _item(
        self,
        ref: Any,
        data: JsonObject,
        revision: str,
        date_updated: datetime,
        date_expires: datetime | None,
        last_event_id: int,
    ) -> SyncListItem[T]:
        return SyncListItem(
            index=int(ref),
            data=self._codec.decode(data),
            revision=revision,
            date_updated=date_updated,
            date_expires=date_expires,
            last_event_id=last_event_id,
        )

    def _item_removed(self, event: ItemRemovedFrame, is_local: bool) -> ListItemRemovedEvent[T]:
        if event.index is None:
            raise InvalidRequestError(f"item_removed event of list {self.sid} without an index")
        return ListItemRemovedEvent(
            index=event.index,
            previous_item_data=self._codec.decode(event.previous_data),
            is_local=is_local,
            event_id=event.event_id,
        )

    async def push(self, data: T, *, ttl: int | None = None) -> SyncListItem[T]:
        """Append an item; returns it with its new index."""
        payload = check_data(self._codec.encode(data))
        item: SyncListItem[T] = self._remembered(
            await self._request(
                {
                    "id": UNNUMBERED,
                    "type": "list_push",
                    "sid": self.sid,
                    "data": payload,
                    "ttl": check_ttl(ttl),
                }
            )
        )
        return item

    async def get(self, index: int) -> SyncListItem[T]:
        """The item at `index` (ListItemNotFoundError if absent)."""
        item: SyncListItem[T] = await self._get(check_index(index))
        return item

    async def set(self, index: int, data: T, *, ttl: int | None = None) -> SyncListItem[T]:
        """Overwrite an existing item."""
        item: SyncListItem[T] = await self._set(
            check_index(index), self._codec.encode(data), merge=False, ttl=ttl, if_match=None
        )
        return item

    async def update(
        self, index: int, patch: JsonObject, *, ttl: int | None = None
    ) -> SyncListItem[T]:
        """Shallow-merge `patch` into an existing item."""
        item: SyncListItem[T] = await self._set(
            check_index(index), patch, merge=True, ttl=ttl, if_match=None
        )
        return item

    async def mutate(
        self, index: int, mutator: Callable[[T], T | None], *, ttl: int | None = None
    ) -> SyncListItem[T]:
        """Read-modify-write an item with If-Match, retried on conflict; None cancels."""
        item: SyncListItem[T] = await self._mutate(check_index(index), mutator, ttl, create=False)
        return item

    async def remove(self, index: int) -> None:
        """Delete the item at `index`."""
        await self._remove_item(check_index(index))

    async def set_item_ttl(self, index: int, ttl: int) -> None:
        """Expire the item `ttl` seconds from now (0 = never)."""
        await self._set_item_ttl(check_index(index), ttl)

    async def get_items(
        self, *, from_: int | None = None, page_size: int = 50, order: Order = "asc"
    ) -> Paginator[SyncListItem[T]]:
        """A page of items by index, starting at `from_` (inclusive)."""
        start = None if from_ is None else check_index(from_)
        page: Paginator[SyncListItem[T]] = await self._page(
            start, True, check_order(order), check_page_size(page_size)
        )
        return page

    async def remove_list(self) -> None:
        """Delete the list; every subscriber gets `removed`."""
        await self._remove()


class SyncMap(_Collection[T], SyncMapEvents[T]):
    """Items by string key, ordered by key. `set` upserts."""

    _kind = "map"
    _revision_mismatch = MapItemRevisionMismatchError
    _item_field = "key"
    _added_event = MapItemAddedEvent
    _updated_event = MapItemUpdatedEvent

    def _item(
        self,
        ref: Any,
        data: JsonObject,
        revision: str,
        date_updated: datetime,
        date_expires: datetime | None,
        last_event_id: int,
    ) -> SyncMapItem[T]:
        return SyncMapItem(
            key=str(ref),
            data=self._codec.decode(data),
            revision=revision,
            date_updated=date_updated,
            date_expires=date_expires,
            last_event_id=last_event_id,
        )

    def _item_removed(self, event: ItemRemovedFrame, is_local: bool) -> MapItemRemovedEvent[T]:
        if event.key is None:
            raise InvalidRequestError(f"item_removed event of map {self.sid} without a key")
        return MapItemRemovedEvent(
            key=event.key,
            previous_item_data=self._codec.decode(event.previous_data),
            is_local=is_local,
            event_id=event.event_id,
        )

    async def set(self, key: str, data: T, *, ttl: int | None = None) -> SyncMapItem[T]:
        """Create or overwrite the item at `key`."""
        item: SyncMapItem[T] = await self._set(
            check_map_key(key), self._codec.encode(data), merge=False, ttl=ttl, if_match=None
        )
        return item

    async def get(self, key: str) -> SyncMapItem[T]:
        """The item at `key` (MapItemNotFoundError if absent)."""
        item: SyncMapItem[T] = await self._get(check_map_key(key))
        return item

    async def update(
        self, key: str, patch: JsonObject, *, ttl: int | None = None
    ) -> SyncMapItem[T]:
        """Shallow-merge `patch` into the item (created if missing)."""
        item: SyncMapItem[T] = await self._set(
            check_map_key(key), patch, merge=True, ttl=ttl, if_match=None
        )
        return item

    async def mutate(
        self, key: str, mutator: Callable[[T], T | None], *, ttl: int | None = None
    ) -> SyncMapItem[T]:
        """Read-modify-write with If-Match, retried on conflict; a missing item starts as {}."""
        item: SyncMapItem[T] = await self._mutate(check_map_key(key), mutator, ttl, create=True)
        return item

    async def remove(self, key: str) -> None:
        """Delete the item at `key`."""
        await self._remove_item(check_map_key(key))

    async def set_item_ttl(self, key: str, ttl: int) -> None:
        """Expire the item `ttl` seconds from now (0 = never)."""
        await self._set_item_ttl(check_map_key(key), ttl)

    async def get_items(
        self, *, from_: str | None = None, page_size: int = 50, order: Order = "asc"
    ) -> Paginator[SyncMapItem[T]]:
        """A page of items by key, starting at `from_` (inclusive)."""
        start = None if from_ is None else check_map_key(from_)
        page: Paginator[SyncMapItem[T]] = await self._page(
            start, True, check_order(order), check_page_size(page_size)
        )
        return page

    async def remove_map(self) -> None:
        """Delete the map; every subscriber gets `removed`."""
        await self._remove()


class SyncStream(SyncObject, SyncStreamEvents[T]):
    """Fire-and-forget messages (at most 4 KiB each), fanned out and not stored."""

    _kind = "stream"

    def __init__(self, channel: ObjectChannel, obj: CachedObject, codec: DataCodec[T]) -> None:
        super().__init__(channel, obj, codec)
        self._codec: DataCodec[T] = codec

    async def publish_message(self, data: T) -> SyncStreamMessage[T]:
        """Publish a message; resolves when the server accepted it (not when delivered)."""
        payload = check_data(
            self._codec.encode(data), limit=MAX_STREAM_MESSAGE_BYTES, what="stream message"
        )
        result = await self._request(
            {"id": UNNUMBERED, "type": "stream_publish", "sid": self.sid, "data": payload}
        )
        return SyncStreamMessage(sid=str(result["sid"]), data=self._codec.decode(result["data"]))

    async def remove_stream(self) -> None:
        """Delete the stream; every subscriber gets `removed`."""
        await self._remove()

    def _dispatch(self, event: EventFrame, is_local: bool) -> None:
        if type(event) is MessagePublishedFrame:
            if self._emitter.has_listeners(event.name):
                message = event.message
                self._emitter.emit(
                    event.name,
                    StreamMessagePublishedEvent(
                        message=SyncStreamMessage(
                            sid=message.sid, data=self._codec.decode(message.data)
                        ),
                        is_local=is_local,
                    ),
                )
        elif type(event) is RemovedFrame:
            self._dispatch_removed(is_local)
