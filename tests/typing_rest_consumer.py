"""A consumer of `sync_sdk.rest`, as a server or script would write it: type-checked by
`make typecheck` (mypy --strict and pyright strict), so the generated resource classes keep
precise types (never `Any`). Never run."""

from typing import Any, assert_type

from sync_sdk.rest import (
    Document,
    DocumentContext,
    DocumentPermission,
    ListItem,
    ListItemPage,
    MapItem,
    PermissionContext,
    Permissions,
    Service,
    ServiceContext,
    StreamMessage,
    SyncListResource,
    SyncRestClient,
)


async def main() -> None:
    async with SyncRestClient("AC…", "token") as rest:
        assert_type(await rest.services.create(friendly_name="x"), Service)
        svc = rest.service("IS…")
        assert_type(svc, ServiceContext)
        assert_type(svc.documents("profile"), DocumentContext)
        doc = await svc.documents.create(unique_name="profile", data={"name": "Ada"})
        assert_type(doc, Document)
        assert_type(await svc.documents(doc.sid).update({"a": 1}, if_match=doc.revision), Document)
        assert_type(await svc.documents.list(limit=5), list[Document])
        assert_type(await svc.lists.create(ttl=60), SyncListResource)
        items = svc.lists("tasks").items
        assert_type(await items.create({"n": 1}, ttl=5), ListItem)
        assert_type(await items.page(order="desc", from_=3, page_size=10), ListItemPage)
        assert_type(await items.next_page(await items.page()), ListItemPage | None)
        async for item in items.iter(bounds="exclusive", limit=3):
            assert_type(item, ListItem)
        assert_type(await svc.maps("m").items("k").update(collection_ttl=9), MapItem)
        assert_type(await svc.maps("m").items.list(from_="k"), list[MapItem])
        await svc.maps("m").items("k").delete(if_match="2")
        perms = svc.documents(doc.sid).permissions
        assert_type(perms("alice"), PermissionContext[DocumentPermission])
        granted = await perms("alice").update(read=True, write=False, manage=False)
        assert_type(granted, DocumentPermission)
        family: Permissions[Any, Any] = svc.lists("tasks").permissions
        print(await family.list())
        assert_type(await svc.streams("s").messages.create({"t": "hi"}), StreamMessage)
