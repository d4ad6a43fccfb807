# Generated from spec/http.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""The resource classes of `sync_sdk.rest`: one class per collection and per resource of the
REST API v1, generated from spec/http.yaml's `x-sdk` annotations (codegen/rest_resources.py)
on top of `SyncRestApi`. Import them from `sync_sdk.rest`:

    svc = rest.service("IS…")  # ServiceContext
    await svc.maps("presence").items.create("alice", {"online": True})
    async for item in svc.lists("tasks").items.iter(page_size=50):
        print(item.index, item.data)

A collection (`Documents`, `MapItems`, …) has `create`, `page`, `next_page`, `iter` and
`list`; calling it with an id gives the context of one resource (`DocumentContext`, …) with
`fetch`, `update`, `delete` and the collections under it. Paging and the permission family
are handwritten in sync_sdk/_rest_base.py.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, Literal

from sync_sdk._rest_base import Paged, PageOf, Permissions, SimplePaged, first_page_size

from .rest import (
    Document,
    DocumentPage,
    DocumentPermission,
    DocumentPermissionPage,
    ListItem,
    ListItemPage,
    ListPage,
    ListPermission,
    ListPermissionPage,
    Map,
    MapItem,
    MapItemPage,
    MapPage,
    MapPermission,
    MapPermissionPage,
    Service,
    ServicePage,
    Stream,
    StreamMessage,
    StreamPage,
    SyncRestApi,
)
from .rest import (
    List as SyncListResource,
)

Data = Mapping[str, Any]
"""A JSON object to store; sent JSON-encoded (the `Data` form field)."""
Bounds = Literal["inclusive", "exclusive"]
"""Whether the item named by From is included (default) or skipped."""
Order = Literal["asc", "desc"]
"""Ascending (default) or descending by index or key."""

_SERVICE_PAGE: PageOf[Service, ServicePage] = PageOf(
    ServicePage, lambda p: p.services, lambda p: p.meta
)
_DOCUMENT_PAGE: PageOf[Document, DocumentPage] = PageOf(
    DocumentPage, lambda p: p.documents, lambda p: p.meta
)
_DOCUMENT_PERMISSION_PAGE: PageOf[DocumentPermission, DocumentPermissionPage] = PageOf(
    DocumentPermissionPage, lambda p: p.permissions, lambda p: p.meta
)
_LIST_PAGE: PageOf[SyncListResource, ListPage] = PageOf(
    ListPage, lambda p: p.lists, lambda p: p.meta
)
_LIST_ITEM_PAGE: PageOf[ListItem, ListItemPage] = PageOf(
    ListItemPage, lambda p: p.items, lambda p: p.meta
)
_LIST_PERMISSION_PAGE: PageOf[ListPermission, ListPermissionPage] = PageOf(
    ListPermissionPage, lambda p: p.permissions, lambda p: p.meta
)
_MAP_PAGE: PageOf[Map, MapPage] = PageOf(MapPage, lambda p: p.maps, lambda p: p.meta)
_MAP_ITEM_PAGE: PageOf[MapItem, MapItemPage] = PageOf(
    MapItemPage, lambda p: p.items, lambda p: p.meta
)
_MAP_PERMISSION_PAGE: PageOf[MapPermission, MapPermissionPage] = PageOf(
    MapPermissionPage, lambda p: p.permissions, lambda p: p.meta
)
_STREAM_PAGE: PageOf[Stream, StreamPage] = PageOf(StreamPage, lambda p: p.streams, lambda p: p.meta)


class Services(SimplePaged[Service, ServicePage]):
    """The services of the account; `services(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi) -> None:
        super().__init__(api, _SERVICE_PAGE)

    def __call__(self, sid: str) -> ServiceContext:
        """One service, by SID or unique name, and the objects in it."""
        return ServiceContext(self._api, sid)

    async def create(
        self,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        webhook_url: str | None = None,
        webhooks_from_rest_enabled: bool | None = None,
        reachability_webhooks_enabled: bool | None = None,
        acl_enabled: bool | None = None,
        reachability_debouncing_enabled: bool | None = None,
        reachability_debouncing_window: int | None = None,
    ) -> Service:
        """Create a service; every setting left out keeps its default."""
        return await self._api.create_service(
            friendly_name=friendly_name,
            unique_name=unique_name,
            webhook_url=webhook_url,
            webhooks_from_rest_enabled=webhooks_from_rest_enabled,
            reachability_webhooks_enabled=reachability_webhooks_enabled,
            acl_enabled=acl_enabled,
            reachability_debouncing_enabled=reachability_debouncing_enabled,
            reachability_debouncing_window=reachability_debouncing_window,
        )

    def _first(self, page_size: int | None) -> Awaitable[ServicePage]:
        return self._api.list_services(page_size=page_size)


class ServiceContext:
    """One service, by SID or unique name, and the objects in it."""

    def __init__(self, api: SyncRestApi, sid: str) -> None:
        self._api = api
        self.sid = sid
        self.documents = Documents(api, sid)
        self.lists = Lists(api, sid)
        self.maps = Maps(api, sid)
        self.streams = Streams(api, sid)

    async def fetch(self) -> Service:
        """Read one service."""
        return await self._api.fetch_service(self.sid)

    async def update(
        self,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        webhook_url: str | None = None,
        webhooks_from_rest_enabled: bool | None = None,
        reachability_webhooks_enabled: bool | None = None,
        acl_enabled: bool | None = None,
        reachability_debouncing_enabled: bool | None = None,
        reachability_debouncing_window: int | None = None,
    ) -> Service:
        """Change the settings that are sent; the others stay as they are."""
        return await self._api.update_service(
            self.sid,
            friendly_name=friendly_name,
            unique_name=unique_name,
            webhook_url=webhook_url,
            webhooks_from_rest_enabled=webhooks_from_rest_enabled,
            reachability_webhooks_enabled=reachability_webhooks_enabled,
            acl_enabled=acl_enabled,
            reachability_debouncing_enabled=reachability_debouncing_enabled,
            reachability_debouncing_window=reachability_debouncing_window,
        )

    async def delete(self) -> None:
        """Delete a service and everything in it."""
        await self._api.delete_service(self.sid)


class Documents(SimplePaged[Document, DocumentPage]):
    """The documents of a service; `documents(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _DOCUMENT_PAGE)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> DocumentContext:
        """One document, by SID or unique name."""
        return DocumentContext(self._api, self.service_sid, sid)

    async def create(
        self, *, unique_name: str | None = None, data: Data | None = None, ttl: int | None = None
    ) -> Document:
        """A new document (data `{}` unless given; `ttl` seconds, 0 or None = never expires)."""
        return await self._api.create_document(
            self.service_sid, unique_name=unique_name, data=data, ttl=ttl
        )

    def _first(self, page_size: int | None) -> Awaitable[DocumentPage]:
        return self._api.list_documents(self.service_sid, page_size=page_size)


class DocumentContext:
    """One document, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.permissions = DocumentPermissions(api, service_sid, sid)

    async def fetch(self) -> Document:
        """Read one document with its data and revision."""
        return await self._api.fetch_document(self.service_sid, self.sid)

    async def update(
        self, data: Data | None = None, *, ttl: int | None = None, if_match: str | None = None
    ) -> Document:
        """Replace the data (no merge) and/or set the TTL. With `if_match` (a revision) the write
        fails with `DocumentRevisionMismatchError` (54103) if the document changed."""
        return await self._api.update_document(
            self.service_sid, self.sid, data=data, ttl=ttl, if_match=if_match
        )

    async def delete(self) -> None:
        """Delete a document."""
        await self._api.delete_document(self.service_sid, self.sid)


class DocumentPermissions(Permissions[DocumentPermission, DocumentPermissionPage]):
    """The permissions on one document, by identity; `permissions(identity)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, document_sid: str) -> None:
        super().__init__(api, _DOCUMENT_PERMISSION_PAGE, service_sid, document_sid)

    def _first(self, page_size: int | None) -> Awaitable[DocumentPermissionPage]:
        return self._api.list_document_permissions(
            self.service_sid, self.object_sid, page_size=page_size
        )

    async def _fetch(self, identity: str) -> DocumentPermission:
        return await self._api.fetch_document_permission(
            self.service_sid, self.object_sid, identity
        )

    async def _update(
        self, identity: str, read: bool, write: bool, manage: bool
    ) -> DocumentPermission:
        return await self._api.update_document_permission(
            self.service_sid, self.object_sid, identity, read=read, write=write, manage=manage
        )

    async def _delete(self, identity: str) -> None:
        await self._api.delete_document_permission(self.service_sid, self.object_sid, identity)


class Lists(SimplePaged[SyncListResource, ListPage]):
    """The lists of a service; `lists(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _LIST_PAGE)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> ListContext:
        """One list, by SID or unique name."""
        return ListContext(self._api, self.service_sid, sid)

    async def create(
        self, *, unique_name: str | None = None, ttl: int | None = None
    ) -> SyncListResource:
        """Create an empty list."""
        return await self._api.create_list(self.service_sid, unique_name=unique_name, ttl=ttl)

    def _first(self, page_size: int | None) -> Awaitable[ListPage]:
        return self._api.list_lists(self.service_sid, page_size=page_size)


class ListContext:
    """One list, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.items = ListItems(api, service_sid, sid)
        self.permissions = ListPermissions(api, service_sid, sid)

    async def fetch(self) -> SyncListResource:
        """Read one list (not its items)."""
        return await self._api.fetch_list(self.service_sid, self.sid)

    async def update(self, *, ttl: int | None = None) -> SyncListResource:
        """Set the list's TTL in seconds (0 = never expires)."""
        return await self._api.update_list(self.service_sid, self.sid, ttl=ttl)

    async def delete(self) -> None:
        """Delete a list and its items."""
        await self._api.delete_list(self.service_sid, self.sid)


class ListItems(Paged[ListItem, ListItemPage]):
    """The items of one list, by index; `items(index)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, list_sid: str) -> None:
        super().__init__(api, _LIST_ITEM_PAGE)
        self.service_sid = service_sid
        self.list_sid = list_sid

    def __call__(self, index: int) -> ListItemContext:
        """One list item, by index."""
        return ListItemContext(self._api, self.service_sid, self.list_sid, index)

    async def create(
        self, data: Data, *, ttl: int | None = None, collection_ttl: int | None = None
    ) -> ListItem:
        """Append an item; it gets the next index (never reused)."""
        return await self._api.create_list_item(
            self.service_sid, self.list_sid, data=data, item_ttl=ttl, collection_ttl=collection_ttl
        )

    async def page(
        self,
        *,
        order: Order | None = None,
        from_: int | None = None,
        bounds: Bounds | None = None,
        page_size: int | None = None,
    ) -> ListItemPage:
        """The first page of items, ascending by index unless `order="desc"`, starting at index
        `from_` (included unless `bounds="exclusive"`)."""
        return await self._api.list_list_items(
            self.service_sid,
            self.list_sid,
            order=order,
            from_=from_,
            bounds=bounds,
            page_size=page_size,
        )

    async def iter(
        self,
        *,
        order: Order | None = None,
        from_: int | None = None,
        bounds: Bounds | None = None,
        page_size: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[ListItem]:
        """Every item (or the first `limit`), following `next_page_url` page by page."""
        size = first_page_size(page_size, limit)

        def first() -> Awaitable[ListItemPage]:
            return self.page(order=order, from_=from_, bounds=bounds, page_size=size)

        async for record in self._walk(first, limit):
            yield record

    async def list(
        self,
        *,
        order: Order | None = None,
        from_: int | None = None,
        bounds: Bounds | None = None,
        page_size: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[ListItem]:
        """Every item (or the first `limit`) in one list."""
        return [
            record
            async for record in self.iter(
                order=order, from_=from_, bounds=bounds, page_size=page_size, limit=limit
            )
        ]


class ListItemContext:
    """One list item, by index."""

    def __init__(self, api: SyncRestApi, service_sid: str, list_sid: str, index: int) -> None:
        self._api = api
        self.service_sid = service_sid
        self.list_sid = list_sid
        self.index = index

    async def fetch(self) -> ListItem:
        """Read one list item."""
        return await self._api.fetch_list_item(self.service_sid, self.list_sid, self.index)

    async def update(
        self,
        data: Data | None = None,
        *,
        ttl: int | None = None,
        collection_ttl: int | None = None,
        if_match: str | None = None,
    ) -> ListItem:
        """Replace the data and/or set the item's TTL (`ttl`) or the list's (`collection_ttl`). A
        stale `if_match` raises `ListItemRevisionMismatchError`."""
        return await self._api.update_list_item(
            self.service_sid,
            self.list_sid,
            self.index,
            data=data,
            item_ttl=ttl,
            collection_ttl=collection_ttl,
            if_match=if_match,
        )

    async def delete(self, *, if_match: str | None = None) -> None:
        """Remove a list item; its index is not reused."""
        await self._api.delete_list_item(
            self.service_sid, self.list_sid, self.index, if_match=if_match
        )


class ListPermissions(Permissions[ListPermission, ListPermissionPage]):
    """The permissions on one list, by identity; `permissions(identity)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, list_sid: str) -> None:
        super().__init__(api, _LIST_PERMISSION_PAGE, service_sid, list_sid)

    def _first(self, page_size: int | None) -> Awaitable[ListPermissionPage]:
        return self._api.list_list_permissions(
            self.service_sid, self.object_sid, page_size=page_size
        )

    async def _fetch(self, identity: str) -> ListPermission:
        return await self._api.fetch_list_permission(self.service_sid, self.object_sid, identity)

    async def _update(self, identity: str, read: bool, write: bool, manage: bool) -> ListPermission:
        return await self._api.update_list_permission(
            self.service_sid, self.object_sid, identity, read=read, write=write, manage=manage
        )

    async def _delete(self, identity: str) -> None:
        await self._api.delete_list_permission(self.service_sid, self.object_sid, identity)


class Maps(SimplePaged[Map, MapPage]):
    """The maps of a service; `maps(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _MAP_PAGE)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> MapContext:
        """One map, by SID or unique name."""
        return MapContext(self._api, self.service_sid, sid)

    async def create(self, *, unique_name: str | None = None, ttl: int | None = None) -> Map:
        """Create an empty map."""
        return await self._api.create_map(self.service_sid, unique_name=unique_name, ttl=ttl)

    def _first(self, page_size: int | None) -> Awaitable[MapPage]:
        return self._api.list_maps(self.service_sid, page_size=page_size)


class MapContext:
    """One map, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.items = MapItems(api, service_sid, sid)
        self.permissions = MapPermissions(api, service_sid, sid)

    async def fetch(self) -> Map:
        """Read one map (not its items)."""
        return await self._api.fetch_map(self.service_sid, self.sid)

    async def update(self, *, ttl: int | None = None) -> Map:
        """Set the map's TTL in seconds (0 = never expires)."""
        return await self._api.update_map(self.service_sid, self.sid, ttl=ttl)

    async def delete(self) -> None:
        """Delete a map and its items."""
        await self._api.delete_map(self.service_sid, self.sid)


class MapItems(Paged[MapItem, MapItemPage]):
    """The items of one map, ordered by key; `items(key)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, map_sid: str) -> None:
        super().__init__(api, _MAP_ITEM_PAGE)
        self.service_sid = service_sid
        self.map_sid = map_sid

    def __call__(self, key: str) -> MapItemContext:
        """One map item, by key."""
        return MapItemContext(self._api, self.service_sid, self.map_sid, key)

    async def create(
        self, key: str, data: Data, *, ttl: int | None = None, collection_ttl: int | None = None
    ) -> MapItem:
        """Add an item under a new key (`MapItemAlreadyExistsError`, 54208, if it exists)."""
        return await self._api.create_map_item(
            self.service_sid,
            self.map_sid,
            key=key,
            data=data,
            item_ttl=ttl,
            collection_ttl=collection_ttl,
        )

    async def page(
        self,
        *,
        order: Order | None = None,
        from_: str | None = None,
        bounds: Bounds | None = None,
        page_size: int | None = None,
    ) -> MapItemPage:
        """The first page of items, ascending by key unless `order="desc"`, starting at key
        `from_` (included unless `bounds="exclusive"`)."""
        return await self._api.list_map_items(
            self.service_sid,
            self.map_sid,
            order=order,
            from_=from_,
            bounds=bounds,
            page_size=page_size,
        )

    async def iter(
        self,
        *,
        order: Order | None = None,
        from_: str | None = None,
        bounds: Bounds | None = None,
        page_size: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[MapItem]:
        """Every item (or the first `limit`), following `next_page_url` page by page."""
        size = first_page_size(page_size, limit)

        def first() -> Awaitable[MapItemPage]:
            return self.page(order=order, from_=from_, bounds=bounds, page_size=size)

        async for record in self._walk(first, limit):
            yield record

    async def list(
        self,
        *,
        order: Order | None = None,
        from_: str | None = None,
        bounds: Bounds | None = None,
        page_size: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[MapItem]:
        """Every item (or the first `limit`) in one list."""
        return [
            record
            async for record in self.iter(
                order=order, from_=from_, bounds=bounds, page_size=page_size, limit=limit
            )
        ]


class MapItemContext:
    """One map item, by key."""

    def __init__(self, api: SyncRestApi, service_sid: str, map_sid: str, key: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.map_sid = map_sid
        self.key = key

    async def fetch(self) -> MapItem:
        """Read one map item."""
        return await self._api.fetch_map_item(self.service_sid, self.map_sid, self.key)

    async def update(
        self,
        data: Data | None = None,
        *,
        ttl: int | None = None,
        collection_ttl: int | None = None,
        if_match: str | None = None,
    ) -> MapItem:
        """Replace the data and/or set the item's TTL (`ttl`) or the map's (`collection_ttl`). A
        stale `if_match` raises `MapItemRevisionMismatchError`."""
        return await self._api.update_map_item(
            self.service_sid,
            self.map_sid,
            self.key,
            data=data,
            item_ttl=ttl,
            collection_ttl=collection_ttl,
            if_match=if_match,
        )

    async def delete(self, *, if_match: str | None = None) -> None:
        """Remove a map item."""
        await self._api.delete_map_item(self.service_sid, self.map_sid, self.key, if_match=if_match)


class MapPermissions(Permissions[MapPermission, MapPermissionPage]):
    """The permissions on one map, by identity; `permissions(identity)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, map_sid: str) -> None:
        super().__init__(api, _MAP_PERMISSION_PAGE, service_sid, map_sid)

    def _first(self, page_size: int | None) -> Awaitable[MapPermissionPage]:
        return self._api.list_map_permissions(
            self.service_sid, self.object_sid, page_size=page_size
        )

    async def _fetch(self, identity: str) -> MapPermission:
        return await self._api.fetch_map_permission(self.service_sid, self.object_sid, identity)

    async def _update(self, identity: str, read: bool, write: bool, manage: bool) -> MapPermission:
        return await self._api.update_map_permission(
            self.service_sid, self.object_sid, identity, read=read, write=write, manage=manage
        )

    async def _delete(self, identity: str) -> None:
        await self._api.delete_map_permission(self.service_sid, self.object_sid, identity)


class Streams(SimplePaged[Stream, StreamPage]):
    """The streams of a service; `streams(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _STREAM_PAGE)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> StreamContext:
        """One stream, by SID or unique name."""
        return StreamContext(self._api, self.service_sid, sid)

    async def create(self, *, unique_name: str | None = None, ttl: int | None = None) -> Stream:
        """Create a stream."""
        return await self._api.create_stream(self.service_sid, unique_name=unique_name, ttl=ttl)

    def _first(self, page_size: int | None) -> Awaitable[StreamPage]:
        return self._api.list_streams(self.service_sid, page_size=page_size)


class StreamContext:
    """One stream, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.messages = StreamMessages(api, service_sid, sid)

    async def fetch(self) -> Stream:
        """Read one stream."""
        return await self._api.fetch_stream(self.service_sid, self.sid)

    async def update(self, *, ttl: int | None = None) -> Stream:
        """Set the stream's TTL in seconds (0 = never expires)."""
        return await self._api.update_stream(self.service_sid, self.sid, ttl=ttl)

    async def delete(self) -> None:
        """Delete a stream."""
        await self._api.delete_stream(self.service_sid, self.sid)


class StreamMessages:
    """The messages of one stream: publish only (messages are not stored)."""

    def __init__(self, api: SyncRestApi, service_sid: str, stream_sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.stream_sid = stream_sid

    async def create(self, data: Data) -> StreamMessage:
        """Publish `data` (at most 4 KiB of JSON) to the stream's current subscribers."""
        return await self._api.create_stream_message(self.service_sid, self.stream_sid, data=data)


__all__ = [
    "Bounds",
    "Data",
    "DocumentContext",
    "DocumentPermissions",
    "Documents",
    "ListContext",
    "ListItemContext",
    "ListItems",
    "ListPermissions",
    "Lists",
    "MapContext",
    "MapItemContext",
    "MapItems",
    "MapPermissions",
    "Maps",
    "Order",
    "ServiceContext",
    "Services",
    "StreamContext",
    "StreamMessages",
    "Streams",
]
