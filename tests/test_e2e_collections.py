"""End to end: lists, maps, paging, TTL expiry, limits and open modes.

A real sync-server subprocess on 127.0.0.1 and real SDK clients (and, for server-side
validation, a raw WebSocket) over real sockets. Every event test has one client writing
and another observing; the writer also listens on its own handle to check `is_local`."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from sync_sdk import (
    Client,
    CollectionRemovedEvent,
    DataTooLargeError,
    DocumentNotFoundError,
    DocumentRemovedEvent,
    InvalidMapKeyError,
    InvalidTtlError,
    InvalidUniqueNameError,
    ListItemAddedEvent,
    ListItemNotFoundError,
    ListItemRemovedEvent,
    ListItemUpdatedEvent,
    ListNotFoundError,
    MapItemAddedEvent,
    MapItemNotFoundError,
    MapItemRemovedEvent,
    MapItemUpdatedEvent,
    MapNotFoundError,
    Paginator,
    SyncError,
    SyncList,
    SyncMap,
    UniqueNameExistsError,
)

if TYPE_CHECKING:
    from tests.conftest import ServerProcess

EVENT_TIMEOUT = 5.0


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def listen(handle: Any, event: str) -> asyncio.Queue[Any]:
    """A queue receiving every `event` payload of `handle`."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    handle.on(event, queue.put_nowait)
    return queue


async def next_event(queue: asyncio.Queue[Any], timeout: float = EVENT_TIMEOUT) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


def assert_error(exc: BaseException, cls: type[SyncError], code: int, status: int) -> None:
    assert isinstance(exc, cls), repr(exc)
    assert exc.code == code, repr(exc)
    assert exc.status == status, repr(exc)


async def open_pair_list(alice: Client, bob: Client) -> tuple[SyncList[Any], SyncList[Any]]:
    name = uniq("list")
    writer = await alice.list(name)
    observer = await bob.list(name)
    assert writer.sid == observer.sid
    assert re.fullmatch(r"ES[0-9a-f]{32}", writer.sid)
    assert writer.unique_name == observer.unique_name == name
    return writer, observer


async def open_pair_map(alice: Client, bob: Client) -> tuple[SyncMap[Any], SyncMap[Any]]:
    name = uniq("map")
    writer = await alice.map(name)
    observer = await bob.map(name)
    assert writer.sid == observer.sid
    assert re.fullmatch(r"MP[0-9a-f]{32}", writer.sid)
    return writer, observer


async def collect_pages(page: Paginator[Any], attr: str) -> tuple[list[Any], int]:
    """Every item's `attr` from `page` on, following next_page(); and the page count."""
    seen = [getattr(it, attr) for it in page.items]
    pages = 1
    while page.has_next_page:
        page = await page.next_page()
        seen.extend(getattr(it, attr) for it in page.items)
        pages += 1
    with pytest.raises(IndexError):
        await page.next_page()
    return seen, pages


# ---- lists ------------------------------------------------------------------------------


async def test_list_push_indexes_and_item_added_in_order(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_list(alice, bob)
    local = listen(writer, "item_added")
    remote = listen(observer, "item_added")

    pushed = [await writer.push({"n": n, "label": f"item {n}"}) for n in range(3)]
    assert [it.index for it in pushed] == [0, 1, 2]
    assert [it.data for it in pushed] == [{"n": n, "label": f"item {n}"} for n in range(3)]

    for n in range(3):
        ev = await next_event(remote)
        assert isinstance(ev, ListItemAddedEvent)
        assert ev.is_local is False
        assert ev.item.index == n
        assert ev.item.data == {"n": n, "label": f"item {n}"}
        assert ev.item.revision == pushed[n].revision
        mine = await next_event(local)
        assert mine.is_local is True
        assert mine.item.index == n
        assert mine.item.data == {"n": n, "label": f"item {n}"}

    # The observer reads the same items back.
    assert (await observer.get(1)).data == {"n": 1, "label": "item 1"}
    page = await observer.get_items()
    assert [(it.index, it.data["n"]) for it in page.items] == [(0, 0), (1, 1), (2, 2)]
    assert page.has_next_page is False
    assert remote.empty() and local.empty()


async def test_list_set_update_mutate_emit_item_updated(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_list(alice, bob)
    local = listen(writer, "item_updated")
    remote = listen(observer, "item_updated")
    first = await writer.push({"a": 1, "b": 1})
    await writer.push({"other": True})

    # set: overwrite.
    item = await writer.set(first.index, {"a": 2})
    assert item.index == 0 and item.data == {"a": 2}
    assert int(item.revision) > int(first.revision)
    ev = await next_event(remote)
    assert isinstance(ev, ListItemUpdatedEvent)
    assert (ev.item.index, ev.item.data, ev.previous_item_data, ev.is_local) == (
        0,
        {"a": 2},
        {"a": 1, "b": 1},
        False,
    )
    mine = await next_event(local)
    assert (mine.item.data, mine.previous_item_data, mine.is_local) == (
        {"a": 2},
        {"a": 1, "b": 1},
        True,
    )

    # update: shallow merge (nested objects are replaced, not merged).
    await writer.set(0, {"a": 2, "nested": {"x": 1, "y": 1}})
    await next_event(remote)
    await next_event(local)
    item = await writer.update(0, {"c": 3, "nested": {"x": 9}})
    expected = {"a": 2, "c": 3, "nested": {"x": 9}}
    assert item.data == expected
    ev = await next_event(remote)
    assert ev.item.data == expected
    assert ev.previous_item_data == {"a": 2, "nested": {"x": 1, "y": 1}}
    assert ev.is_local is False
    assert (await next_event(local)).is_local is True

    # mutate: read-modify-write.
    item = await writer.mutate(0, lambda d: {**d, "count": d.get("count", 0) + 1})
    assert item.data == {**expected, "count": 1}
    ev = await next_event(remote)
    assert (ev.item.index, ev.item.data, ev.previous_item_data, ev.is_local) == (
        0,
        {**expected, "count": 1},
        expected,
        False,
    )
    assert (await next_event(local)).is_local is True

    # A mutate returning None writes nothing.
    unchanged = await writer.mutate(0, lambda d: None)
    assert unchanged.data == {**expected, "count": 1}
    assert (await observer.get(0)).data == {**expected, "count": 1}
    assert (await observer.get(1)).data == {"other": True}
    assert remote.empty() and local.empty()


async def test_list_remove_emits_item_removed_and_indexes_are_never_reused(
    alice: Client, bob: Client
) -> None:
    writer, observer = await open_pair_list(alice, bob)
    local = listen(writer, "item_removed")
    remote = listen(observer, "item_removed")
    for n in range(3):
        await writer.push({"n": n})

    await writer.remove(2)
    ev = await next_event(remote)
    assert isinstance(ev, ListItemRemovedEvent)
    assert (ev.index, ev.previous_item_data, ev.is_local) == (2, {"n": 2}, False)
    assert ev.event_id > 0
    mine = await next_event(local)
    assert (mine.index, mine.previous_item_data, mine.is_local) == (2, {"n": 2}, True)

    # The removed (last) index is not handed out again.
    again = await writer.push({"n": 3})
    assert again.index == 3

    with pytest.raises(ListItemNotFoundError) as excinfo:
        await observer.get(2)
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)
    with pytest.raises(ListItemNotFoundError) as excinfo:
        await writer.set(2, {"resurrect": True})
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)
    with pytest.raises(ListItemNotFoundError) as excinfo:
        await writer.set(99, {"never": "pushed"})
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)
    with pytest.raises(ListItemNotFoundError) as excinfo:
        await writer.update(2, {"merge": True})
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)
    with pytest.raises(ListItemNotFoundError) as excinfo:
        await writer.mutate(2, lambda d: {**d, "m": 1})
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)
    with pytest.raises(ListItemNotFoundError) as excinfo:
        await writer.remove(2)
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)

    # Removing one in the middle leaves a gap; the next push still goes to the end.
    await writer.remove(0)
    ev = await next_event(remote)
    assert (ev.index, ev.previous_item_data, ev.is_local) == (0, {"n": 0}, False)
    assert (await next_event(local)).index == 0
    assert (await writer.push({"n": 4})).index == 4
    page = await observer.get_items()
    assert [(it.index, it.data) for it in page.items] == [
        (1, {"n": 1}),
        (3, {"n": 3}),
        (4, {"n": 4}),
    ]
    assert remote.empty() and local.empty()


async def test_remove_list_notifies_every_subscriber(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_list(alice, bob)
    await writer.push({"n": 0})
    local = listen(writer, "removed")
    remote = listen(observer, "removed")

    await writer.remove_list()
    ev = await next_event(remote)
    assert isinstance(ev, CollectionRemovedEvent)
    assert ev.is_local is False
    mine = await next_event(local)
    assert mine.is_local is True

    # Both handles are closed by the removal.
    assert observer.closed and writer.closed
    with pytest.raises(SyncError):
        await observer.push({"n": 1})

    name = observer.unique_name
    assert name is not None
    with pytest.raises(ListNotFoundError) as excinfo:
        await bob.list(name, mode="open_existing")
    assert_error(excinfo.value, ListNotFoundError, 54150, 404)

    # The name can be used again: a new list, with indexes from 0.
    reborn = await alice.list(name)
    assert reborn.sid != writer.sid
    assert (await reborn.push({"n": 0})).index == 0
    assert (await bob.list(name, mode="open_existing")).sid == reborn.sid


# ---- maps -------------------------------------------------------------------------------


async def test_map_set_upserts_update_mutate_remove(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_map(alice, bob)
    qs = {
        name: (listen(writer, name), listen(observer, name))
        for name in ("item_added", "item_updated", "item_removed")
    }

    async def both(name: str) -> tuple[Any, Any]:
        local, remote = qs[name]
        ev = await next_event(remote)
        mine = await next_event(local)
        assert ev.is_local is False
        assert mine.is_local is True
        return ev, mine

    # set on a new key: item_added.
    item = await writer.set("color", {"v": "red"})
    assert (item.key, item.data) == ("color", {"v": "red"})
    ev, mine = await both("item_added")
    assert isinstance(ev, MapItemAddedEvent)
    assert (ev.item.key, ev.item.data) == ("color", {"v": "red"})
    assert (mine.item.key, mine.item.data) == ("color", {"v": "red"})

    # set on an existing key: item_updated with the previous data.
    await writer.set("color", {"v": "blue"})
    ev, mine = await both("item_updated")
    assert isinstance(ev, MapItemUpdatedEvent)
    assert (ev.item.key, ev.item.data, ev.previous_item_data) == (
        "color",
        {"v": "blue"},
        {"v": "red"},
    )
    assert mine.previous_item_data == {"v": "red"}

    # update creates a missing key...
    item = await writer.update("size", {"w": 1})
    assert item.data == {"w": 1}
    ev, _ = await both("item_added")
    assert (ev.item.key, ev.item.data) == ("size", {"w": 1})
    # ...and shallow-merges into an existing one.
    item = await writer.update("size", {"h": 2})
    assert item.data == {"w": 1, "h": 2}
    ev, _ = await both("item_updated")
    assert (ev.item.key, ev.item.data, ev.previous_item_data) == (
        "size",
        {"w": 1, "h": 2},
        {"w": 1},
    )

    # mutate on a missing key starts from {} (item_added), then read-modify-writes.
    def bump(d: dict[str, Any]) -> dict[str, Any]:
        return {"hits": d.get("hits", 0) + 1}

    assert (await writer.mutate("counter", bump)).data == {"hits": 1}
    ev, _ = await both("item_added")
    assert (ev.item.key, ev.item.data) == ("counter", {"hits": 1})
    assert (await writer.mutate("counter", bump)).data == {"hits": 2}
    ev, _ = await both("item_updated")
    assert (ev.item.key, ev.item.data, ev.previous_item_data) == (
        "counter",
        {"hits": 2},
        {"hits": 1},
    )

    # remove: item_removed with the key and the previous data.
    await writer.remove("color")
    ev, mine = await both("item_removed")
    assert isinstance(ev, MapItemRemovedEvent)
    assert (ev.key, ev.previous_item_data) == ("color", {"v": "blue"})
    assert (mine.key, mine.previous_item_data) == ("color", {"v": "blue"})
    assert ev.event_id > 0

    with pytest.raises(MapItemNotFoundError) as excinfo:
        await observer.get("color")
    assert_error(excinfo.value, MapItemNotFoundError, 54201, 404)
    with pytest.raises(MapItemNotFoundError) as excinfo:
        await observer.get("never-set")
    assert_error(excinfo.value, MapItemNotFoundError, 54201, 404)
    with pytest.raises(MapItemNotFoundError) as excinfo:
        await writer.remove("color")
    assert_error(excinfo.value, MapItemNotFoundError, 54201, 404)

    assert (await observer.get("size")).data == {"w": 1, "h": 2}
    assert (await observer.get("counter")).data == {"hits": 2}
    for local, remote in qs.values():
        assert local.empty() and remote.empty()


async def test_map_items_are_ordered_by_key(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_map(alice, bob)
    remote = listen(observer, "item_added")
    keys = ["pear", "apple", "b", "a", "aa", "Zed", "10", "9"]
    for i, key in enumerate(keys):
        await writer.set(key, {"i": i})
    # Events arrive in write order...
    assert [(await next_event(remote)).item.key for _ in keys] == keys
    # ...while get_items lists by key.
    page = await observer.get_items()
    assert [it.key for it in page.items] == sorted(keys)
    assert {it.key: it.data["i"] for it in page.items} == {k: i for i, k in enumerate(keys)}
    page = await observer.get_items(order="desc")
    assert [it.key for it in page.items] == sorted(keys, reverse=True)


async def test_remove_map_notifies_every_subscriber(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_map(alice, bob)
    await writer.set("k", {"v": 1})
    local = listen(writer, "removed")
    remote = listen(observer, "removed")

    await writer.remove_map()
    ev = await next_event(remote)
    assert isinstance(ev, CollectionRemovedEvent)
    assert ev.is_local is False
    assert (await next_event(local)).is_local is True

    assert observer.closed and writer.closed

    name = observer.unique_name
    assert name is not None
    with pytest.raises(MapNotFoundError) as excinfo:
        await bob.map(name, mode="open_existing")
    assert_error(excinfo.value, MapNotFoundError, 54200, 404)
    reborn = await alice.map(name)
    assert reborn.sid != writer.sid
    assert (await reborn.get_items()).items == []


async def test_concurrent_mutate_on_existing_items_loses_no_update(
    alice: Client, bob: Client
) -> None:
    """Two clients mutating one item at once: If-Match conflicts are retried, so every
    increment lands, and the observer sees a gap-free chain of item_updated events."""
    a_list, b_list = await open_pair_list(alice, bob)
    a_map, b_map = await open_pair_map(alice, bob)
    await a_list.push({"hits": 0})
    await a_map.set("counter", {"hits": 0})
    list_updates = listen(b_list, "item_updated")
    map_updates = listen(b_map, "item_updated")
    rounds = 8

    def bump(d: dict[str, Any]) -> dict[str, Any]:
        return {"hits": d["hits"] + 1}

    async def hammer(lst: SyncList[Any], mp: SyncMap[Any]) -> None:
        for _ in range(rounds):
            await lst.mutate(0, bump)
            await mp.mutate("counter", bump)

    await asyncio.gather(hammer(a_list, a_map), hammer(b_list, b_map))
    assert (await a_list.get(0)).data == {"hits": 2 * rounds}
    assert (await b_map.get("counter")).data == {"hits": 2 * rounds}

    for queue in (list_updates, map_updates):
        chain = [await next_event(queue) for _ in range(2 * rounds)]
        assert [ev.item.data["hits"] for ev in chain] == list(range(1, 2 * rounds + 1))
        assert [ev.previous_item_data["hits"] for ev in chain] == list(range(2 * rounds))
        # bob wrote half of them himself.
        assert sum(ev.is_local for ev in chain) == rounds


async def test_concurrent_map_mutate_on_missing_key_loses_no_update(
    alice: Client, bob: Client
) -> None:
    writer, observer = await open_pair_map(alice, bob)

    def bump(d: dict[str, Any]) -> dict[str, Any]:
        return {"hits": d.get("hits", 0) + 1}

    keys = [f"counter{i}" for i in range(5)]
    for key in keys:
        await asyncio.gather(writer.mutate(key, bump), observer.mutate(key, bump))
    # Each key was incremented twice, once by each client.
    assert {k: (await writer.get(k)).data["hits"] for k in keys} == dict.fromkeys(keys, 2)


# ---- paging -----------------------------------------------------------------------------


async def test_list_paging_both_ways(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_list(alice, bob)
    for n in range(23):
        await writer.push({"n": n})
    everything = list(range(23))

    first = await observer.get_items(page_size=5)
    assert [it.index for it in first.items] == [0, 1, 2, 3, 4]
    assert first.has_next_page is True and first.has_prev_page is False
    with pytest.raises(IndexError):
        await first.prev_page()
    seen, pages = await collect_pages(first, "index")
    assert seen == everything
    assert pages == 5

    # Descending.
    first_desc = await observer.get_items(page_size=5, order="desc")
    assert [it.index for it in first_desc.items] == [22, 21, 20, 19, 18]
    seen, pages = await collect_pages(first_desc, "index")
    assert seen == everything[::-1]
    assert pages == 5

    # prev_page from the 3rd page gives the 2nd page, in the page's own order.
    second = await first.next_page()
    third = await second.next_page()
    assert [it.index for it in third.items] == [10, 11, 12, 13, 14]
    assert third.has_prev_page is True and third.has_next_page is True
    back = await third.prev_page()
    assert [it.index for it in back.items] == [5, 6, 7, 8, 9]
    assert [it.data["n"] for it in back.items] == [5, 6, 7, 8, 9]
    assert back.has_prev_page is True and back.has_next_page is True
    back = await back.prev_page()
    assert [it.index for it in back.items] == [0, 1, 2, 3, 4]
    assert back.has_prev_page is False
    assert [it.index for it in (await back.next_page()).items] == [5, 6, 7, 8, 9]

    third_desc = await (await first_desc.next_page()).next_page()
    assert [it.index for it in third_desc.items] == [12, 11, 10, 9, 8]
    back_desc = await third_desc.prev_page()
    assert [it.index for it in back_desc.items] == [17, 16, 15, 14, 13]

    # from_ starts at (and includes) the given index, both ways.
    page = await observer.get_items(from_=7, page_size=5)
    assert [it.index for it in page.items] == [7, 8, 9, 10, 11]
    assert page.has_prev_page is True and page.has_next_page is True
    seen, _ = await collect_pages(page, "index")
    assert seen == everything[7:]
    page = await observer.get_items(from_=7, page_size=5, order="desc")
    assert [it.index for it in page.items] == [7, 6, 5, 4, 3]
    seen, _ = await collect_pages(page, "index")
    assert seen == everything[7::-1]
    back = await (await observer.get_items(from_=7, page_size=5)).prev_page()
    assert [it.index for it in back.items] == [2, 3, 4, 5, 6]
    assert back.has_prev_page is True
    page = await observer.get_items(from_=20, page_size=5)
    assert [it.index for it in page.items] == [20, 21, 22]
    assert page.has_next_page is False

    # Removed indexes are skipped by paging.
    await writer.remove(5)
    await writer.remove(6)
    seen, _ = await collect_pages(await observer.get_items(page_size=5), "index")
    assert seen == [i for i in everything if i not in (5, 6)]


async def test_map_paging_both_ways(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_map(alice, bob)
    keys = [f"k{i:02d}" for i in range(23)]
    # Written out of order; paging is by key.
    for key in reversed(keys):
        await writer.set(key, {"key": key})

    first = await observer.get_items(page_size=5)
    assert [it.key for it in first.items] == keys[:5]
    assert first.has_prev_page is False
    seen, pages = await collect_pages(first, "key")
    assert seen == keys
    assert pages == 5

    first_desc = await observer.get_items(page_size=5, order="desc")
    assert [it.key for it in first_desc.items] == keys[::-1][:5]
    seen, pages = await collect_pages(first_desc, "key")
    assert seen == keys[::-1]
    assert pages == 5

    third = await (await first.next_page()).next_page()
    assert [it.key for it in third.items] == keys[10:15]
    back = await third.prev_page()
    assert [it.key for it in back.items] == keys[5:10]
    assert [it.data["key"] for it in back.items] == keys[5:10]
    assert back.has_prev_page is True and back.has_next_page is True

    third_desc = await (await first_desc.next_page()).next_page()
    assert [it.key for it in third_desc.items] == ["k12", "k11", "k10", "k09", "k08"]
    back_desc = await third_desc.prev_page()
    assert [it.key for it in back_desc.items] == ["k17", "k16", "k15", "k14", "k13"]

    page = await observer.get_items(from_="k07", page_size=5)
    assert [it.key for it in page.items] == keys[7:12]
    assert page.has_prev_page is True
    seen, _ = await collect_pages(page, "key")
    assert seen == keys[7:]
    page = await observer.get_items(from_="k07", page_size=5, order="desc")
    assert [it.key for it in page.items] == ["k07", "k06", "k05", "k04", "k03"]
    seen, _ = await collect_pages(page, "key")
    assert seen == keys[7::-1]
    # prev_page from a page started with from_.
    back = await (await observer.get_items(from_="k07", page_size=5)).prev_page()
    assert [it.key for it in back.items] == keys[2:7]
    # from_ need not be an existing key.
    page = await observer.get_items(from_="k105", page_size=3)
    assert [it.key for it in page.items] == ["k11", "k12", "k13"]


# ---- TTL expiry -------------------------------------------------------------------------


async def test_map_item_ttl_expiry_is_seen_by_other_client(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_map(alice, bob)
    added = listen(observer, "item_added")
    removed = listen(observer, "item_removed")
    local_removed = listen(writer, "item_removed")

    item = await writer.set("ephemeral", {"v": 1}, ttl=1)
    assert item.date_expires is not None
    await writer.set("durable", {"v": 2})
    assert [(await next_event(added)).item.key for _ in range(2)] == ["ephemeral", "durable"]

    ev = await next_event(removed)
    assert isinstance(ev, MapItemRemovedEvent)
    assert (ev.key, ev.previous_item_data) == ("ephemeral", {"v": 1})
    # Expiry is nobody's write: not local, even for the client that set the TTL.
    assert ev.is_local is False
    mine = await next_event(local_removed)
    assert (mine.key, mine.is_local) == ("ephemeral", False)

    with pytest.raises(MapItemNotFoundError) as excinfo:
        await observer.get("ephemeral")
    assert_error(excinfo.value, MapItemNotFoundError, 54201, 404)
    assert (await observer.get("durable")).data == {"v": 2}
    assert [it.key for it in (await observer.get_items()).items] == ["durable"]


async def test_list_item_ttl_expiry_is_seen_by_other_client(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_list(alice, bob)
    removed = listen(observer, "item_removed")
    for n in range(3):
        await writer.push({"n": n})

    await writer.set_item_ttl(1, 1)
    ev = await next_event(removed)
    assert isinstance(ev, ListItemRemovedEvent)
    assert (ev.index, ev.previous_item_data, ev.is_local) == (1, {"n": 1}, False)

    with pytest.raises(ListItemNotFoundError) as excinfo:
        await observer.get(1)
    assert_error(excinfo.value, ListItemNotFoundError, 54151, 404)
    assert [it.index for it in (await observer.get_items()).items] == [0, 2]
    # The expired index is not reused either.
    assert (await writer.push({"n": 3})).index == 3


async def test_document_ttl_expiry_is_seen_by_other_client(alice: Client, bob: Client) -> None:
    name = uniq("doc")
    doc = await alice.document(name, ttl=1, data={"temp": True})
    assert doc.date_expires is not None
    observer = await bob.document(name)
    assert observer.sid == doc.sid
    assert observer.data == {"temp": True}
    removed = listen(observer, "removed")

    ev = await next_event(removed)
    assert isinstance(ev, DocumentRemovedEvent)
    assert ev.is_local is False
    assert ev.previous_data == {"temp": True}

    with pytest.raises(DocumentNotFoundError) as excinfo:
        await bob.document(name, mode="open_existing")
    assert_error(excinfo.value, DocumentNotFoundError, 54100, 404)


@pytest.mark.parametrize("kind", ["list", "map"])
async def test_collection_ttl_expiry_is_seen_by_other_client(
    alice: Client, bob: Client, kind: str
) -> None:
    writer: SyncList[Any] | SyncMap[Any]
    observer: SyncList[Any] | SyncMap[Any]
    if kind == "list":
        writer, observer = await open_pair_list(alice, bob)
        await writer.push({"n": 0})
    else:
        writer, observer = await open_pair_map(alice, bob)
        await writer.set("k", {"n": 0})
    assert writer.date_expires is None
    removed = listen(observer, "removed")
    await writer.set_ttl(1)
    assert writer.date_expires is not None

    ev = await next_event(removed)
    assert isinstance(ev, CollectionRemovedEvent)
    assert ev.is_local is False
    assert observer.closed
    name = writer.unique_name
    assert name is not None
    with pytest.raises(SyncError) as excinfo:
        if kind == "list":
            await bob.list(name, mode="open_existing")
        else:
            await bob.map(name, mode="open_existing")
    code = 54150 if kind == "list" else 54200
    assert (excinfo.value.code, excinfo.value.status) == (code, 404)


# ---- limits (client-side validation) ---------------------------------------------------

BIG = {"x": "a" * 17000}


async def test_client_rejects_data_over_16_kib(alice: Client) -> None:
    lst = await alice.list(uniq("list"))
    mp = await alice.map(uniq("map"))
    doc = await alice.document(uniq("doc"))
    item = await lst.push({"ok": True})
    calls = [
        lst.push(BIG),
        lst.set(item.index, BIG),
        lst.update(item.index, BIG),
        mp.set("k", BIG),
        mp.update("k", BIG),
        doc.set(BIG),
        doc.update(BIG),
        alice.document(uniq("doc"), data=BIG),
    ]
    for call in calls:
        with pytest.raises(DataTooLargeError) as excinfo:
            await call
        assert_error(excinfo.value, DataTooLargeError, 54006, 413)
    # Nothing was written, and data just under the limit is fine.
    assert (await lst.get(item.index)).data == {"ok": True}
    with pytest.raises(MapItemNotFoundError):
        await mp.get("k")
    near = {"x": "a" * 16000}
    assert (await mp.set("k", near)).data == near


async def test_data_limit_boundary_is_16384_bytes(alice: Client, bob: Client) -> None:
    writer, observer = await open_pair_map(alice, bob)
    added = listen(observer, "item_added")
    exact = {"x": "a" * (16384 - len('{"x":""}'))}
    assert len(orjson.dumps(exact)) == 16384
    over = {"x": exact["x"] + "a"}
    with pytest.raises(DataTooLargeError) as excinfo:
        await writer.set("over", over)
    assert_error(excinfo.value, DataTooLargeError, 54006, 413)
    assert (await writer.set("exact", exact)).data == exact
    ev = await next_event(added)
    assert (ev.item.key, ev.item.data, ev.is_local) == ("exact", exact, False)
    # Bytes, not characters: 2-byte characters reach the limit at half the length.
    wide = {"x": "é" * 8200}
    with pytest.raises(DataTooLargeError):
        await writer.set("wide", wide)


async def test_client_rejects_stream_message_over_4_kib(alice: Client, bob: Client) -> None:
    name = uniq("stream")
    stream = await alice.stream(name)
    observer = await bob.stream(name)
    received = listen(observer, "message_published")
    with pytest.raises(DataTooLargeError) as excinfo:
        await stream.publish_message({"x": "a" * 4200})
    assert_error(excinfo.value, DataTooLargeError, 54006, 413)
    ok = {"x": "a" * 4000}
    await stream.publish_message(ok)
    ev = await next_event(received)
    # The oversized message never went out: the first one delivered is the valid one.
    assert ev.message.data == ok
    assert ev.is_local is False


@pytest.mark.parametrize("ttl", [-1, 31_536_001])
async def test_client_rejects_invalid_ttl(alice: Client, ttl: int) -> None:
    lst = await alice.list(uniq("list"))
    mp = await alice.map(uniq("map"))
    item = await lst.push({"n": 0})
    calls = [
        lst.push({"n": 1}, ttl=ttl),
        lst.set(item.index, {"n": 2}, ttl=ttl),
        lst.set_item_ttl(item.index, ttl),
        lst.set_ttl(ttl),
        mp.set("k", {"v": 1}, ttl=ttl),
        mp.update("k", {"v": 1}, ttl=ttl),
        mp.set_item_ttl("k", ttl),
        alice.list(uniq("list"), ttl=ttl),
        alice.map(uniq("map"), ttl=ttl),
        alice.document(uniq("doc"), ttl=ttl),
    ]
    for call in calls:
        with pytest.raises(InvalidTtlError) as excinfo:
            await call
        assert_error(excinfo.value, InvalidTtlError, 54011, 400)
    assert [it.data for it in (await lst.get_items()).items] == [{"n": 0}]
    # The bounds themselves are valid.
    assert (await mp.set("zero", {"v": 0}, ttl=0)).date_expires is None
    assert (await mp.set("max", {"v": 0}, ttl=31_536_000)).date_expires is not None


@pytest.mark.parametrize("key", ["k" * 321, ""])
async def test_client_rejects_invalid_map_key(alice: Client, key: str) -> None:
    mp = await alice.map(uniq("map"))
    calls = [
        mp.set(key, {"v": 1}),
        mp.get(key),
        mp.update(key, {"v": 1}),
        mp.mutate(key, lambda d: {"v": 1}),
        mp.remove(key),
        mp.set_item_ttl(key, 10),
        mp.get_items(from_=key),
    ]
    for call in calls:
        with pytest.raises(InvalidMapKeyError) as excinfo:
            await call
        assert_error(excinfo.value, InvalidMapKeyError, 54209, 400)
    assert (await mp.get_items()).items == []
    longest = "k" * 320
    assert (await mp.set(longest, {"v": 1})).key == longest


async def test_client_rejects_invalid_unique_name(alice: Client) -> None:
    too_long = "n" * 321
    for opener in (alice.list, alice.map, alice.document, alice.stream):
        with pytest.raises(InvalidUniqueNameError) as excinfo:
            await opener(too_long)
        assert_error(excinfo.value, InvalidUniqueNameError, 54302, 400)
    longest = uuid.uuid4().hex + "n" * 288
    assert len(longest) == 320
    assert (await alice.list(longest)).unique_name == longest


# ---- limits (server-side validation, bypassing the SDK) --------------------------------


class RawConnection:
    """A bare protocol connection: send request frames, read their replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._next_id = 100

    async def request(self, type_: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self.ws.send(orjson.dumps({"id": request_id, "type": type_, **params}).decode())
        return await self.reply(request_id)

    async def reply(self, request_id: int | None) -> dict[str, Any]:
        async with asyncio.timeout(EVENT_TIMEOUT):
            while True:
                frame = orjson.loads(await self.ws.recv())
                if frame.get("type") == "reply" and frame.get("id") == request_id:
                    return dict(frame)

    async def expect_error(self, code: int, status: int, type_: str, **params: Any) -> None:
        reply = await self.request(type_, **params)
        assert reply.get("result") is None, reply
        assert reply["error"]["code"] == code, reply
        assert reply["error"]["status"] == status, reply
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]

    async def expect_ok(self, type_: str, **params: Any) -> dict[str, Any]:
        reply = await self.request(type_, **params)
        assert reply.get("error") is None, reply
        assert isinstance(reply["result"], dict), reply
        return dict(reply["result"])


async def raw_connect(server: ServerProcess) -> tuple[ClientConnection, RawConnection]:
    ws = await connect(f"ws://127.0.0.1:{server.port}/v1/realtime")
    await ws.send(
        orjson.dumps(
            {"id": 1, "type": "hello", "token": server.token(), "client_id": "raw"}
        ).decode()
    )
    raw = RawConnection(ws)
    hello = await raw.reply(1)
    assert hello.get("error") is None, hello
    assert hello["result"]["identity"] == "alice"
    return ws, raw


async def test_server_enforces_limits_on_raw_requests(server: ServerProcess) -> None:
    ws, raw = await raw_connect(server)
    async with ws:
        ws_map = await raw.expect_ok("open", kind="map", object_id=uniq("map"))
        map_sid = ws_map["sid"]
        assert map_sid.startswith("MP")
        lst = await raw.expect_ok("open", kind="list", object_id=uniq("list"))
        doc = await raw.expect_ok("open", kind="document", object_id=uniq("doc"))
        stream = await raw.expect_ok("open", kind="stream", object_id=uniq("stream"))

        # Data too large (54006, 413).
        await raw.expect_error(54006, 413, "item_set", sid=map_sid, key="k", data=BIG)
        await raw.expect_error(54006, 413, "list_push", sid=lst["sid"], data=BIG)
        await raw.expect_error(54006, 413, "document_set", sid=doc["sid"], data=BIG)
        await raw.expect_error(54006, 413, "open", kind="document", object_id=uniq("doc"), data=BIG)
        await raw.expect_error(
            54006, 413, "stream_publish", sid=stream["sid"], data={"x": "a" * 4200}
        )
        # Invalid TTL (54011, 400).
        for ttl in (-1, 31_536_001):
            await raw.expect_error(
                54011, 400, "item_set", sid=map_sid, key="k", data={"v": 1}, ttl=ttl
            )
            await raw.expect_error(54011, 400, "list_push", sid=lst["sid"], data={}, ttl=ttl)
            await raw.expect_error(54011, 400, "set_ttl", sid=map_sid, ttl=ttl)
            await raw.expect_error(54011, 400, "open", kind="list", object_id=uniq("l"), ttl=ttl)
        # Invalid map key (54209, 400).
        for key in ("k" * 321, ""):
            await raw.expect_error(54209, 400, "item_set", sid=map_sid, key=key, data={"v": 1})
            await raw.expect_error(54209, 400, "item_get", sid=map_sid, key=key)
            await raw.expect_error(54209, 400, "item_remove", sid=map_sid, key=key)
        # Invalid unique name (54302, 400).
        for kind in ("document", "list", "map", "stream"):
            await raw.expect_error(54302, 400, "open", kind=kind, object_id="n" * 321)

        # Nothing above was applied.
        await raw.expect_error(54201, 404, "item_get", sid=map_sid, key="k")
        page = await raw.expect_ok("items_page", sid=lst["sid"])
        assert page["items"] == []
        # A valid write on the same connection still succeeds.
        item = await raw.expect_ok("item_set", sid=map_sid, key="k", data={"v": 1}, ttl=60)
        assert (item["key"], item["data"]) == ("k", {"v": 1})
        assert item["date_expires"] is not None


async def test_server_limit_boundaries(server: ServerProcess) -> None:
    ws, raw = await raw_connect(server)
    async with ws:
        map_sid = (await raw.expect_ok("open", kind="map", object_id=uniq("map")))["sid"]
        stream_sid = (await raw.expect_ok("open", kind="stream", object_id=uniq("s")))["sid"]
        exact = {"x": "a" * (16384 - len('{"x":""}'))}
        await raw.expect_ok("item_set", sid=map_sid, key="exact", data=exact)
        await raw.expect_error(
            54006, 413, "item_set", sid=map_sid, key="over", data={"x": exact["x"] + "a"}
        )
        message = {"x": "a" * (4096 - len('{"x":""}'))}
        await raw.expect_ok("stream_publish", sid=stream_sid, data=message)
        await raw.expect_error(
            54006, 413, "stream_publish", sid=stream_sid, data={"x": message["x"] + "a"}
        )
        await raw.expect_ok("item_set", sid=map_sid, key="k" * 320, data={})
        await raw.expect_ok("item_set", sid=map_sid, key="t", data={}, ttl=31_536_000)
        await raw.expect_ok("item_set_ttl", sid=map_sid, key="t", ttl=0)
        await raw.expect_error(54011, 400, "item_set_ttl", sid=map_sid, key="t", ttl=-1)
        await raw.expect_ok("open", kind="map", object_id=uuid.uuid4().hex + "n" * 288)


async def test_server_rejects_invalid_from_key(server: ServerProcess) -> None:
    ws, raw = await raw_connect(server)
    async with ws:
        map_sid = (await raw.expect_ok("open", kind="map", object_id=uniq("map")))["sid"]
        await raw.expect_ok("item_set", sid=map_sid, key="a", data={})
        for key in ("k" * 321, ""):
            await raw.expect_error(54209, 400, "items_page", sid=map_sid, from_key=key)


async def test_server_answers_bad_frames_and_keeps_the_connection(
    server: ServerProcess,
) -> None:
    ws, raw = await raw_connect(server)
    async with ws:
        # Malformed JSON: the id cannot be read, so the reply's id is null.
        await ws.send("{this is not json")
        reply = await raw.reply(None)
        assert reply["error"]["code"] == 51000
        assert reply["error"]["status"] == 400

        # A JSON value that is not an object.
        await ws.send("[1, 2, 3]")
        reply = await raw.reply(None)
        assert reply["error"]["code"] == 51000

        # An unknown request type: answered under its id.
        await raw.expect_error(51000, 400, "frobnicate", sid="MP" + "0" * 32)
        # A known type with a missing required field.
        await raw.expect_error(51000, 400, "item_get")
        # An unexpected extra field.
        await raw.expect_error(51000, 400, "ping", bogus=True)

        # The connection still works.
        assert "time" in await raw.expect_ok("ping")
        opened = await raw.expect_ok("open", kind="map", object_id=uniq("map"))
        item = await raw.expect_ok("item_set", sid=opened["sid"], key="a", data={"ok": 1})
        assert item["data"] == {"ok": 1}
        got = await raw.expect_ok("item_get", sid=opened["sid"], key="a")
        assert got["data"] == {"ok": 1}


async def test_raw_writes_reach_sdk_observers(server: ServerProcess, bob: Client) -> None:
    """The raw connection is a real client too: its writes are events for an SDK observer."""
    ws, raw = await raw_connect(server)
    async with ws:
        name = uniq("map")
        observer = await bob.map(name)
        added = listen(observer, "item_added")
        opened = await raw.expect_ok("open", kind="map", object_id=name)
        assert opened["sid"] == observer.sid
        await raw.expect_error(54006, 413, "item_set", sid=opened["sid"], key="big", data=BIG)
        await raw.expect_ok("item_set", sid=opened["sid"], key="small", data={"v": 1})
        ev = await next_event(added)
        # The rejected write produced no event: the first one is the valid write.
        assert (ev.item.key, ev.item.data, ev.is_local) == ("small", {"v": 1}, False)


# ---- open modes -------------------------------------------------------------------------


async def test_open_existing_on_missing_objects(alice: Client) -> None:
    with pytest.raises(ListNotFoundError) as excinfo:
        await alice.list(uniq("missing"), mode="open_existing")
    assert_error(excinfo.value, ListNotFoundError, 54150, 404)
    with pytest.raises(MapNotFoundError) as map_excinfo:
        await alice.map(uniq("missing"), mode="open_existing")
    assert_error(map_excinfo.value, MapNotFoundError, 54200, 404)


async def test_create_new_on_existing_name(alice: Client, bob: Client) -> None:
    list_name, map_name = uniq("list"), uniq("map")
    lst = await alice.list(list_name, mode="create_new")
    mp = await alice.map(map_name, mode="create_new")

    with pytest.raises(UniqueNameExistsError) as excinfo:
        await bob.list(list_name, mode="create_new")
    assert_error(excinfo.value, UniqueNameExistsError, 54301, 409)
    with pytest.raises(UniqueNameExistsError) as excinfo:
        await bob.map(map_name, mode="create_new")
    assert_error(excinfo.value, UniqueNameExistsError, 54301, 409)

    # open_existing finds what create_new made; names are per kind.
    assert (await bob.list(list_name, mode="open_existing")).sid == lst.sid
    assert (await bob.map(map_name, mode="open_existing")).sid == mp.sid
    other_kind = await bob.map(list_name, mode="create_new")
    assert other_kind.sid != lst.sid and other_kind.sid.startswith("MP")
