"""A consumer of the public API, as an application would write it: type-checked by
`make typecheck` (mypy --strict and pyright strict) and, with its blocking twin, by
tests/test_typing.py (which reads this file). Never run."""

from typing import Any, assert_type

from pydantic import BaseModel

from sync_sdk import (
    Client,
    ClientOptions,
    CollectionRemovedEvent,
    ConnectionState,
    DocumentUpdatedEvent,
    JsonObject,
    ListItemAddedEvent,
    LogLevel,
    MapItemAddedEvent,
    MapItemRemovedEvent,
    Paginator,
    StreamMessagePublishedEvent,
    SyncDocument,
    SyncList,
    SyncListItem,
    SyncMap,
    SyncMapItem,
    SyncStream,
    SyncStreamMessage,
)


class Order(BaseModel):
    id: str
    qty: int


def on_any_added(e: MapItemAddedEvent[Any]) -> None:
    print(e.item.key, e.is_local)


def on_order_added(e: MapItemAddedEvent[Order]) -> None:
    assert_type(e.item, SyncMapItem[Order])
    assert_type(e.item.data, Order)
    assert_type(e.item.data.qty, int)
    assert_type(e.is_local, bool)


async def on_order_removed(e: MapItemRemovedEvent[Order]) -> None:
    assert_type(e.previous_item_data, Order | None)


def on_doc_updated(e: DocumentUpdatedEvent[Order]) -> None:
    assert_type(e.data, Order)
    assert_type(e.previous_data, Order | None)


def on_list_added(e: ListItemAddedEvent[Order]) -> None:
    assert_type(e.item.index, int)


def on_message(e: StreamMessagePublishedEvent[Order]) -> None:
    assert_type(e.message, SyncStreamMessage[Order])


def on_removed(e: CollectionRemovedEvent) -> None:
    print(e.is_local)


def on_state(state: ConnectionState) -> None:
    print(state.value)


options = ClientOptions(url="http://127.0.0.1:4700", log_level="warn")
options_enum = ClientOptions(log_level=LogLevel.DEBUG)


async def main() -> None:
    async with Client("a.b.c", options) as client:
        client.on("connection_state_changed", on_state)

        m = await client.map("orders", data_type=Order)
        assert_type(m, SyncMap[Order])
        item = await m.get("k")
        assert_type(item, SyncMapItem[Order])
        assert_type(item.data, Order)
        assert_type(item.data.qty, int)
        await m.set("k", Order(id="a", qty=1))
        await m.mutate("k", lambda o: o.model_copy(update={"qty": o.qty + 1}))
        unsubscribe = m.on("item_added", on_order_added)
        unsubscribe()
        m.on("item_added", on_any_added)
        m.on("item_added", lambda e: print(e.item.data.qty, e.is_local))
        m.on("item_removed", on_order_removed)
        m.on("removed", on_removed)
        page = await m.get_items(page_size=10)
        assert_type(page, Paginator[SyncMapItem[Order]])

        plain = await client.map("plain")
        assert_type(plain, SyncMap[JsonObject])
        plain_item = await plain.get("k")
        assert_type(plain_item.data, dict[str, Any])

        lst = await client.list("items", data_type=Order)
        assert_type(lst, SyncList[Order])
        li = await lst.get(0)
        assert_type(li, SyncListItem[Order])
        lst.on("item_added", on_list_added)
        lpage = await lst.get_items(from_=0, page_size=20)
        while lpage.has_next_page:
            lpage = await lpage.next_page()
        assert_type(lpage.items, list[SyncListItem[Order]])

        doc = await client.document("settings", data_type=Order)
        assert_type(doc, SyncDocument[Order])
        assert_type(doc.data, Order)
        doc.on("updated", on_doc_updated)
        doc.on("updated", lambda e: print(e.data.qty))
        assert_type(await doc.update({"qty": 2}), Order)
        assert_type(await doc.set(Order(id="a", qty=3)), Order)

        settings = await client.document("plain-settings")
        assert_type(settings, SyncDocument[dict[str, Any]])
        assert_type(settings.data, dict[str, Any])

        s = await client.stream("ticks", data_type=Order)
        assert_type(s, SyncStream[Order])
        s.on("message_published", on_message)
        msg = await s.publish_message(Order(id="a", qty=1))
        assert_type(msg.data, Order)
