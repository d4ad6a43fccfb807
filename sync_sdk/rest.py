"""Server-side REST client for the Sync REST API v1 (Services, Documents, Lists, Maps, Streams).

    from sync_sdk.rest import SyncRestClient, mint_access_token

    async with SyncRestClient("AC…", "auth-token", base_url="http://127.0.0.1:4700") as client:
        service = client.service("IS…")  # SID or unique name
        doc = await service.documents.create(unique_name="settings", data={"theme": "dark"})
        await service.documents("settings").update({"theme": "light"}, if_match=doc.revision)
        await service.maps("presence").items.create("alice", {"online": True})
        async for item in service.lists("tasks").items.iter(page_size=50):
            print(item.index, item.data)

Resources are addressed the way Twilio's helper library does it: a collection
(`client.services`, `service.documents`, `.lists`, `.maps`, `.streams`, `.items`,
`.permissions`) has `create`, `page`, `next_page`, `iter` and `list`, and calling it with an
id gives the context of one resource (`fetch`, `update`, `delete`). Every call returns the
pydantic model of `sync_generated.rest` (generated from spec/http.yaml) and every failure
raises a typed `SyncError` (e.g. `DocumentNotFoundError`, code 54100). The low-level
generated client is available as `client.api`.

`mint_access_token()` makes the access token a realtime `sync_sdk.Client` connects with.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel
from sync_generated.rest import (
    Document,
    DocumentPage,
    DocumentPermission,
    DocumentPermissionPage,
    Error,
    Health,
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
    PageMeta,
    Permission,
    Readiness,
    Service,
    ServicePage,
    Stream,
    StreamMessage,
    StreamPage,
    SyncRestApi,
)
from sync_generated.rest import List as SyncListResource

from ._tls import ssl_context
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "Document",
    "DocumentContext",
    "DocumentPage",
    "DocumentPermission",
    "DocumentPermissionPage",
    "Documents",
    "Error",
    "Health",
    "ListContext",
    "ListItem",
    "ListItemContext",
    "ListItemPage",
    "ListItems",
    "ListPage",
    "ListPermission",
    "ListPermissionPage",
    "Lists",
    "Map",
    "MapContext",
    "MapItem",
    "MapItemContext",
    "MapItemPage",
    "MapItems",
    "MapPage",
    "MapPermission",
    "MapPermissionPage",
    "Maps",
    "PageMeta",
    "Permission",
    "PermissionContext",
    "Permissions",
    "Readiness",
    "Service",
    "ServiceContext",
    "ServicePage",
    "Services",
    "Stream",
    "StreamContext",
    "StreamMessage",
    "StreamMessages",
    "StreamPage",
    "Streams",
    "SyncListResource",
    "SyncRestApi",
    "SyncRestClient",
    "mint_access_token",
]

DEFAULT_BASE_URL = "http://127.0.0.1:4700"
MAX_PAGE_SIZE = 100

Data = Mapping[str, Any]
"""A JSON object to store; sent as the `Data` form field."""
Order = Literal["asc", "desc"]
Bounds = Literal["inclusive", "exclusive"]

R = TypeVar("R")
P = TypeVar("P", bound=BaseModel)
PermT = TypeVar("PermT", bound=Permission)


# ---- access tokens ----------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def mint_access_token(
    account_sid: str,
    api_key_sid: str,
    api_secret: str,
    service_sid: str,
    identity: str,
    ttl: int = 3600,
) -> str:
    """An access token for `identity` on the Sync service `service_sid`, valid for `ttl` seconds.

    The token is the one Twilio's helper library makes with
    `AccessToken(account_sid, api_key_sid, api_secret, identity=identity, ttl=ttl)` and a
    `SyncGrant(service_sid=service_sid)`: a JWT signed with HS256 using the API secret, header
    `{"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}`, claims `jti`, `grants`
    (`data_sync.service_sid`, `identity`), `iss` (the API key), `exp`, `nbf` and `sub` (the
    account). Pass it to `sync_sdk.Client`; renew it with `client.update_token()` before `exp`.
    """
    if not identity:
        raise ValueError("identity must be a non-empty string")
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
    if not api_secret:
        raise ValueError("api_secret must not be empty")
    now = int(time.time())
    header = {"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}
    claims = {
        "jti": f"{api_key_sid}-{now}",
        "grants": {"data_sync": {"service_sid": service_sid}, "identity": identity},
        "iss": api_key_sid,
        "exp": now + int(ttl),
        "nbf": now,
        "sub": account_sid,
    }
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = hmac.new(
        api_secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256
    ).digest()
    return f"{signing_input}.{_b64url(signature)}"


# ---- paging -----------------------------------------------------------------------------


class _PageOf(Generic[R, P]):
    """How to read one page model: its class, its records and its `meta`."""

    def __init__(
        self,
        page_type: type[P],
        records: Callable[[P], Sequence[R]],
        meta: Callable[[P], PageMeta],
    ) -> None:
        self.page_type = page_type
        self.records = records
        self.meta = meta


_SERVICES: _PageOf[Service, ServicePage] = _PageOf(
    ServicePage, lambda p: p.services, lambda p: p.meta
)
_DOCUMENTS: _PageOf[Document, DocumentPage] = _PageOf(
    DocumentPage, lambda p: p.documents, lambda p: p.meta
)
_LISTS: _PageOf[SyncListResource, ListPage] = _PageOf(ListPage, lambda p: p.lists, lambda p: p.meta)
_MAPS: _PageOf[Map, MapPage] = _PageOf(MapPage, lambda p: p.maps, lambda p: p.meta)
_STREAMS: _PageOf[Stream, StreamPage] = _PageOf(StreamPage, lambda p: p.streams, lambda p: p.meta)
_LIST_ITEMS: _PageOf[ListItem, ListItemPage] = _PageOf(
    ListItemPage, lambda p: p.items, lambda p: p.meta
)
_MAP_ITEMS: _PageOf[MapItem, MapItemPage] = _PageOf(
    MapItemPage, lambda p: p.items, lambda p: p.meta
)
_DOCUMENT_PERMISSIONS: _PageOf[DocumentPermission, DocumentPermissionPage] = _PageOf(
    DocumentPermissionPage, lambda p: p.permissions, lambda p: p.meta
)
_LIST_PERMISSIONS: _PageOf[ListPermission, ListPermissionPage] = _PageOf(
    ListPermissionPage, lambda p: p.permissions, lambda p: p.meta
)
_MAP_PERMISSIONS: _PageOf[MapPermission, MapPermissionPage] = _PageOf(
    MapPermissionPage, lambda p: p.permissions, lambda p: p.meta
)


def _first_page_size(page_size: int | None, limit: int | None) -> int | None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if page_size is None and limit is not None:
        return max(1, min(limit, MAX_PAGE_SIZE))
    return page_size


class _Paged(Generic[R, P]):
    """A collection whose list operation returns pages of `R` records in `P` page models."""

    def __init__(self, api: SyncRestApi, kind: _PageOf[R, P]) -> None:
        self._api = api
        self._kind = kind

    async def next_page(self, page: P) -> P | None:
        """The page after `page` (following `meta.next_page_url`), or None after the last."""
        url = self._kind.meta(page).next_page_url
        if url is None:
            return None
        return await self._api.fetch_page(url, self._kind.page_type)

    async def _walk(self, first: Callable[[], Awaitable[P]], limit: int | None) -> AsyncIterator[R]:
        if limit == 0:
            return
        page: P | None = await first()
        count = 0
        while page is not None:
            for record in self._kind.records(page):
                yield record
                count += 1
                if limit is not None and count >= limit:
                    return
            page = await self.next_page(page)


class _SimplePaged(_Paged[R, P]):
    """A collection paged by PageSize only (services, objects, permissions)."""

    def _first(self, page_size: int | None) -> Awaitable[P]:
        raise NotImplementedError

    async def page(self, *, page_size: int | None = None) -> P:
        """The first page (`page_size` records, default 50, at most 100)."""
        return await self._first(page_size)

    async def iter(
        self, *, page_size: int | None = None, limit: int | None = None
    ) -> AsyncIterator[R]:
        """Every record (or the first `limit`), fetching pages of `page_size` as needed."""
        size = _first_page_size(page_size, limit)
        async for record in self._walk(lambda: self._first(size), limit):
            yield record

    async def list(
        self, *, page_size: int | None = None, limit: int | None = None
    ) -> builtins.list[R]:
        """Every record (or the first `limit`) in one list."""
        return [r async for r in self.iter(page_size=page_size, limit=limit)]


# ---- permissions ------------------------------------------------------------------------


class PermissionContext(Generic[PermT]):
    """The permission of one identity on one document, list or map."""

    def __init__(
        self,
        identity: str,
        *,
        fetch: Callable[[str], Awaitable[PermT]],
        update: Callable[[str, bool, bool, bool], Awaitable[PermT]],
        delete: Callable[[str], Awaitable[None]],
    ) -> None:
        self.identity = identity
        self._fetch = fetch
        self._update = update
        self._delete = delete

    async def fetch(self) -> PermT:
        return await self._fetch(self.identity)

    async def update(self, *, read: bool, write: bool, manage: bool) -> PermT:
        """Set (create or overwrite) all three flags."""
        return await self._update(self.identity, read, write, manage)

    async def delete(self) -> None:
        await self._delete(self.identity)


class Permissions(_SimplePaged[PermT, P]):
    """The per-identity permissions of one document, list or map (enforced when the service
    has `acl_enabled`). `permissions(identity)` addresses one of them."""

    def __init__(
        self, api: SyncRestApi, kind: _PageOf[PermT, P], service_sid: str, object_sid: str
    ) -> None:
        super().__init__(api, kind)
        self.service_sid = service_sid
        self.object_sid = object_sid

    def __call__(self, identity: str) -> PermissionContext[PermT]:
        return PermissionContext(
            identity, fetch=self._fetch, update=self._update, delete=self._delete
        )

    async def _fetch(self, identity: str) -> PermT:
        raise NotImplementedError

    async def _update(self, identity: str, read: bool, write: bool, manage: bool) -> PermT:
        raise NotImplementedError

    async def _delete(self, identity: str) -> None:
        raise NotImplementedError


class DocumentPermissions(Permissions[DocumentPermission, DocumentPermissionPage]):
    def __init__(self, api: SyncRestApi, service_sid: str, document_sid: str) -> None:
        super().__init__(api, _DOCUMENT_PERMISSIONS, service_sid, document_sid)

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


class ListPermissions(Permissions[ListPermission, ListPermissionPage]):
    def __init__(self, api: SyncRestApi, service_sid: str, list_sid: str) -> None:
        super().__init__(api, _LIST_PERMISSIONS, service_sid, list_sid)

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


class MapPermissions(Permissions[MapPermission, MapPermissionPage]):
    def __init__(self, api: SyncRestApi, service_sid: str, map_sid: str) -> None:
        super().__init__(api, _MAP_PERMISSIONS, service_sid, map_sid)

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


# ---- documents --------------------------------------------------------------------------


class DocumentContext:
    """One document, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.permissions = DocumentPermissions(api, service_sid, sid)

    async def fetch(self) -> Document:
        return await self._api.fetch_document(self.service_sid, self.sid)

    async def update(
        self, data: Data | None = None, *, ttl: int | None = None, if_match: str | None = None
    ) -> Document:
        """Replace the data (no merge) and/or set the TTL. With `if_match` (a revision) the
        write fails with `DocumentRevisionMismatchError` (54103) if the document changed."""
        return await self._api.update_document(
            self.service_sid, self.sid, data=data, ttl=ttl, if_match=if_match
        )

    async def delete(self) -> None:
        await self._api.delete_document(self.service_sid, self.sid)


class Documents(_SimplePaged[Document, DocumentPage]):
    """The documents of a service; `documents(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _DOCUMENTS)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> DocumentContext:
        return DocumentContext(self._api, self.service_sid, sid)

    def _first(self, page_size: int | None) -> Awaitable[DocumentPage]:
        return self._api.list_documents(self.service_sid, page_size=page_size)

    async def create(
        self, *, unique_name: str | None = None, data: Data | None = None, ttl: int | None = None
    ) -> Document:
        """A new document (data `{}` unless given; `ttl` seconds, 0 or None = never expires)."""
        return await self._api.create_document(
            self.service_sid, unique_name=unique_name, data=data, ttl=ttl
        )


# ---- lists ------------------------------------------------------------------------------


class ListItemContext:
    """One list item, by index."""

    def __init__(self, api: SyncRestApi, service_sid: str, list_sid: str, index: int) -> None:
        self._api = api
        self.service_sid = service_sid
        self.list_sid = list_sid
        self.index = index

    async def fetch(self) -> ListItem:
        return await self._api.fetch_list_item(self.service_sid, self.list_sid, self.index)

    async def update(
        self,
        data: Data | None = None,
        *,
        ttl: int | None = None,
        collection_ttl: int | None = None,
        if_match: str | None = None,
    ) -> ListItem:
        """Replace the data and/or set the item's TTL (`ttl`) or the list's
        (`collection_ttl`). A stale `if_match` raises `ListItemRevisionMismatchError`."""
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
        await self._api.delete_list_item(
            self.service_sid, self.list_sid, self.index, if_match=if_match
        )


class ListItems(_Paged[ListItem, ListItemPage]):
    """The items of one list, by index; `items(index)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, list_sid: str) -> None:
        super().__init__(api, _LIST_ITEMS)
        self.service_sid = service_sid
        self.list_sid = list_sid

    def __call__(self, index: int) -> ListItemContext:
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
        """The first page of items, ascending by index unless `order="desc"`, starting at
        index `from_` (included unless `bounds="exclusive"`)."""
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
        size = _first_page_size(page_size, limit)

        def first() -> Awaitable[ListItemPage]:
            return self.page(order=order, from_=from_, bounds=bounds, page_size=size)

        async for item in self._walk(first, limit):
            yield item

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
            item
            async for item in self.iter(
                order=order, from_=from_, bounds=bounds, page_size=page_size, limit=limit
            )
        ]


class ListContext:
    """One list, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.items = ListItems(api, service_sid, sid)
        self.permissions = ListPermissions(api, service_sid, sid)

    async def fetch(self) -> SyncListResource:
        return await self._api.fetch_list(self.service_sid, self.sid)

    async def update(self, *, ttl: int | None = None) -> SyncListResource:
        """Set the list's TTL in seconds (0 = never expires)."""
        return await self._api.update_list(self.service_sid, self.sid, ttl=ttl)

    async def delete(self) -> None:
        await self._api.delete_list(self.service_sid, self.sid)


class Lists(_SimplePaged[SyncListResource, ListPage]):
    """The lists of a service; `lists(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _LISTS)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> ListContext:
        return ListContext(self._api, self.service_sid, sid)

    def _first(self, page_size: int | None) -> Awaitable[ListPage]:
        return self._api.list_lists(self.service_sid, page_size=page_size)

    async def create(
        self, *, unique_name: str | None = None, ttl: int | None = None
    ) -> SyncListResource:
        return await self._api.create_list(self.service_sid, unique_name=unique_name, ttl=ttl)


# ---- maps -------------------------------------------------------------------------------


class MapItemContext:
    """One map item, by key."""

    def __init__(self, api: SyncRestApi, service_sid: str, map_sid: str, key: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.map_sid = map_sid
        self.key = key

    async def fetch(self) -> MapItem:
        return await self._api.fetch_map_item(self.service_sid, self.map_sid, self.key)

    async def update(
        self,
        data: Data | None = None,
        *,
        ttl: int | None = None,
        collection_ttl: int | None = None,
        if_match: str | None = None,
    ) -> MapItem:
        """Replace the data and/or set the item's TTL (`ttl`) or the map's
        (`collection_ttl`). A stale `if_match` raises `MapItemRevisionMismatchError`."""
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
        await self._api.delete_map_item(self.service_sid, self.map_sid, self.key, if_match=if_match)


class MapItems(_Paged[MapItem, MapItemPage]):
    """The items of one map, ordered by key; `items(key)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str, map_sid: str) -> None:
        super().__init__(api, _MAP_ITEMS)
        self.service_sid = service_sid
        self.map_sid = map_sid

    def __call__(self, key: str) -> MapItemContext:
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
        size = _first_page_size(page_size, limit)

        def first() -> Awaitable[MapItemPage]:
            return self.page(order=order, from_=from_, bounds=bounds, page_size=size)

        async for item in self._walk(first, limit):
            yield item

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
            item
            async for item in self.iter(
                order=order, from_=from_, bounds=bounds, page_size=page_size, limit=limit
            )
        ]


class MapContext:
    """One map, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.items = MapItems(api, service_sid, sid)
        self.permissions = MapPermissions(api, service_sid, sid)

    async def fetch(self) -> Map:
        return await self._api.fetch_map(self.service_sid, self.sid)

    async def update(self, *, ttl: int | None = None) -> Map:
        """Set the map's TTL in seconds (0 = never expires)."""
        return await self._api.update_map(self.service_sid, self.sid, ttl=ttl)

    async def delete(self) -> None:
        await self._api.delete_map(self.service_sid, self.sid)


class Maps(_SimplePaged[Map, MapPage]):
    """The maps of a service; `maps(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _MAPS)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> MapContext:
        return MapContext(self._api, self.service_sid, sid)

    def _first(self, page_size: int | None) -> Awaitable[MapPage]:
        return self._api.list_maps(self.service_sid, page_size=page_size)

    async def create(self, *, unique_name: str | None = None, ttl: int | None = None) -> Map:
        return await self._api.create_map(self.service_sid, unique_name=unique_name, ttl=ttl)


# ---- streams ----------------------------------------------------------------------------


class StreamMessages:
    """The messages of one stream: publish only (messages are not stored)."""

    def __init__(self, api: SyncRestApi, service_sid: str, stream_sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.stream_sid = stream_sid

    async def create(self, data: Data) -> StreamMessage:
        """Publish `data` (at most 4 KiB of JSON) to the stream's current subscribers."""
        return await self._api.create_stream_message(self.service_sid, self.stream_sid, data=data)


class StreamContext:
    """One stream, by SID or unique name."""

    def __init__(self, api: SyncRestApi, service_sid: str, sid: str) -> None:
        self._api = api
        self.service_sid = service_sid
        self.sid = sid
        self.messages = StreamMessages(api, service_sid, sid)

    async def fetch(self) -> Stream:
        return await self._api.fetch_stream(self.service_sid, self.sid)

    async def update(self, *, ttl: int | None = None) -> Stream:
        """Set the stream's TTL in seconds (0 = never expires)."""
        return await self._api.update_stream(self.service_sid, self.sid, ttl=ttl)

    async def delete(self) -> None:
        await self._api.delete_stream(self.service_sid, self.sid)


class Streams(_SimplePaged[Stream, StreamPage]):
    """The streams of a service; `streams(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi, service_sid: str) -> None:
        super().__init__(api, _STREAMS)
        self.service_sid = service_sid

    def __call__(self, sid: str) -> StreamContext:
        return StreamContext(self._api, self.service_sid, sid)

    def _first(self, page_size: int | None) -> Awaitable[StreamPage]:
        return self._api.list_streams(self.service_sid, page_size=page_size)

    async def create(self, *, unique_name: str | None = None, ttl: int | None = None) -> Stream:
        return await self._api.create_stream(self.service_sid, unique_name=unique_name, ttl=ttl)


# ---- services ---------------------------------------------------------------------------


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
        """Change the settings given; the others stay as they are."""
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
        """Delete the service and everything in it."""
        await self._api.delete_service(self.sid)


class Services(_SimplePaged[Service, ServicePage]):
    """The services of the account; `services(sid_or_unique_name)` addresses one."""

    def __init__(self, api: SyncRestApi) -> None:
        super().__init__(api, _SERVICES)

    def __call__(self, sid: str) -> ServiceContext:
        return ServiceContext(self._api, sid)

    def _first(self, page_size: int | None) -> Awaitable[ServicePage]:
        return self._api.list_services(page_size=page_size)

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


# ---- the client -------------------------------------------------------------------------


class SyncRestClient:
    """The REST API v1 for servers and scripts (HTTP Basic auth, not an access token).

    Authenticate with the account SID and its auth token, or with an API key SID and
    secret (`api_key=`, `api_secret=`; then `auth_token` may be omitted). `transport` is
    handed to the underlying `httpx.AsyncClient` (e.g. `httpx.MockTransport` in tests, or an
    `httpx.AsyncHTTPTransport(retries=...)`). `verify` checks an https server's certificate as
    in httpx (True, a CA bundle path, an ssl.SSLContext, or False). Use `async with`, or call
    `aclose()`.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        if api_key is not None or api_secret is not None:
            if not api_key or not api_secret:
                raise ValueError("api_key and api_secret must be given together")
            username, password = api_key, api_secret
        elif auth_token:
            username, password = account_sid, auth_token
        else:
            raise ValueError("give auth_token, or api_key and api_secret")
        self.account_sid = account_sid
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            verify=ssl_context(verify),
            headers={"User-Agent": f"sync-sdk-python/{__version__}", "Accept": "application/json"},
        )
        self.api = SyncRestApi(self._http, base_url, auth=(username, password))
        """The generated low-level client (one method per operation of spec/http.yaml)."""
        self.services = Services(self.api)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    def service(self, sid: str) -> ServiceContext:
        """One service by SID or unique name (same as `client.services(sid)`)."""
        return self.services(sid)

    async def health(self) -> Health:
        return await self.api.health()

    async def readiness(self) -> Readiness:
        """The node's storage and broker state; a node whose storage is unreachable answers
        503, raised here as a SyncError with status 503."""
        return await self.api.readiness()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SyncRestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
