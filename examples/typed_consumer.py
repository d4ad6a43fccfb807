"""Typed consumer: pydantic models as `data_type`, so items, events and handlers are checked
by `mypy --strict`.

    sync-server token --identity alice > token.txt
    python examples/typed_consumer.py http://127.0.0.1:4700 "$(cat token.txt)"
    # or: SYNC_URL=... SYNC_TOKEN=... python examples/typed_consumer.py"""

from __future__ import annotations

import asyncio
import os
import sys

from pydantic import BaseModel

from sync_sdk import (
    Client,
    ClientOptions,
    DocumentUpdatedEvent,
    MapItemAddedEvent,
    MapItemRemovedEvent,
    MapItemUpdatedEvent,
    StreamMessagePublishedEvent,
    SyncList,
)


class Order(BaseModel):
    id: str
    product: str
    qty: int = 1
    status: str = "new"


class Settings(BaseModel):  # every field has a default: a new document starts as {}
    theme: str = "light"
    revision: int = 0


class Tick(BaseModel):
    seq: int


# ---- handlers: the payload type says what each event carries ---------------------------
def on_order_added(e: MapItemAddedEvent[Order]) -> None:
    order = e.item.data  # an Order, not a dict
    print(f"+ {order.id}: {order.qty} x {order.product} (local={e.is_local})")


async def on_order_updated(e: MapItemUpdatedEvent[Order]) -> None:  # async handlers work too
    before = e.previous_item_data.status if e.previous_item_data else "?"
    print(f"~ {e.item.key}: {before} -> {e.item.data.status}")


def on_order_removed(e: MapItemRemovedEvent[Order]) -> None:
    print(f"- {e.key}")


def on_settings(e: DocumentUpdatedEvent[Settings]) -> None:
    print(f"settings: theme={e.data.theme} revision={e.data.revision}")


def on_tick(e: StreamMessagePublishedEvent[Tick]) -> None:
    print(f"tick {e.message.data.seq}")


async def print_log(log: SyncList[Order]) -> None:
    """Walk the whole list, two items per page."""
    page = await log.get_items(page_size=2)
    while True:
        for item in page.items:
            print(f"  log[{item.index}] {item.data.id} {item.data.status}")
        if not page.has_next_page:
            break
        page = await page.next_page()


async def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SYNC_URL", "http://127.0.0.1:4700")
    token = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SYNC_TOKEN", "")
    if not token:
        raise SystemExit("usage: typed_consumer.py [URL [TOKEN]]  (or set SYNC_URL / SYNC_TOKEN)")

    async with Client(token, ClientOptions(url=url, log_level="warn")) as client:
        client.on("connection_state_changed", lambda s: print(f"connection: {s.value}"))
        print(f"connected as {client.identity}")

        # A map of typed orders, with a handler per item event.
        orders = await client.map("orders", data_type=Order)
        orders.on("item_added", on_order_added)
        orders.on("item_updated", on_order_updated)
        orders.on("item_removed", on_order_removed)
        await orders.set("o-1", Order(id="o-1", product="coffee", qty=2))
        await orders.mutate("o-1", lambda o: o.model_copy(update={"status": "paid"}))
        paid = await orders.get("o-1")
        print(f"o-1 is {paid.data.status}, revision {paid.revision}")

        # A typed document: update() merges a patch, mutate() is read-modify-write.
        settings = await client.document("settings", data_type=Settings)
        settings.on("updated", on_settings)
        await settings.update({"theme": "dark"})
        current = await settings.mutate(lambda s: s.model_copy(update={"revision": s.revision + 1}))
        print(f"theme={current.theme} (cached: {settings.data.theme})")

        # A list, read back page by page.
        log = await client.list("order-log", data_type=Order)
        for n in range(5):
            await log.push(Order(id=f"o-{n}", product="tea", status="shipped"))
        await print_log(log)

        # A stream of typed messages (not stored).
        ticks = await client.stream("ticks", data_type=Tick)
        ticks.on("message_published", on_tick)
        for seq in range(3):
            await ticks.publish_message(Tick(seq=seq))

        await orders.remove("o-1")
        await asyncio.sleep(0.5)  # let the last events arrive before shutting down


if __name__ == "__main__":
    asyncio.run(main())
