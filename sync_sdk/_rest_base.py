"""What the resource classes of `sync_sdk.rest` share: paging and the permission family.

The classes themselves (`Documents`, `DocumentContext`, `ListItems`, ...) are generated from
spec/http.yaml's `x-sdk` annotations into generated/sync_generated/rest_resources.py; each
collection extends `Paged` (paged by more than PageSize: `page`, `iter` and `list` are
generated with its arguments) or `SimplePaged` (paged by PageSize only: it fills in
`_first`), and the document, list and map permissions extend `Permissions` (they fill in
its hooks).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel
from sync_generated.rest import PageMeta, Permission, SyncRestApi

__all__ = [
    "MAX_PAGE_SIZE",
    "PageOf",
    "Paged",
    "PermissionContext",
    "Permissions",
    "SimplePaged",
    "first_page_size",
]

MAX_PAGE_SIZE = 100

R = TypeVar("R")
P = TypeVar("P", bound=BaseModel)
PermT = TypeVar("PermT", bound=Permission)


class PageOf(Generic[R, P]):
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


def first_page_size(page_size: int | None, limit: int | None) -> int | None:
    """The size of the first page to ask for: `page_size`, or just enough for `limit`."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if page_size is None and limit is not None:
        return max(1, min(limit, MAX_PAGE_SIZE))
    return page_size


class Paged(Generic[R, P]):
    """A collection whose list operation returns pages of `R` records in `P` page models."""

    def __init__(self, api: SyncRestApi, kind: PageOf[R, P]) -> None:
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


class SimplePaged(Paged[R, P]):
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
        size = first_page_size(page_size, limit)
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


# A family base (spec/http.yaml `x-sdk: {base: Permissions}`): the generated
# `DocumentPermissions`, `ListPermissions` and `MapPermissions` fill in `_first`, `_fetch`,
# `_update` and `_delete`, whose arguments are the identity and then their operations'
# `x-sdk` arguments, in order.
class Permissions(SimplePaged[PermT, P]):
    """The per-identity permissions of one document, list or map (enforced when the service
    has `acl_enabled`). `permissions(identity)` addresses one of them."""

    def __init__(
        self, api: SyncRestApi, kind: PageOf[PermT, P], service_sid: str, object_sid: str
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
