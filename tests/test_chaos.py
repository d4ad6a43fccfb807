"""Chaos: 5 clients write and read documents, lists and maps while the harness cuts their
connections, stalls them and SIGKILLs + restarts the server. At the end every client's view
equals the server's state, every acknowledged write is there, and every client saw every
event of every object exactly once, in order (event ids 1..last, no gap, no duplicate)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from sync_sdk import (
    Client,
    CommandTimeoutError,
    ConnectionLostError,
    ConnectionState,
    SubscriptionState,
    SyncDocument,
    SyncError,
    SyncList,
    SyncMap,
)
from tests.conftest import ServerFactory
from tests.netproxy import TcpProxy

CLIENTS = 5
DURATION = 20.0  # seconds of chaos
DOC, LIST, MAP = "chaos-doc", "chaos-list", "chaos-map"
Unknown = object()  # outcome of a write whose reply never came


@dataclass
class Actor:
    """One client, its objects, what it saw and what it was told."""

    n: int
    client: Client
    doc: SyncDocument = field(init=False)
    lst: SyncList = field(init=False)
    map: SyncMap = field(init=False)
    event_ids: dict[str, list[int]] = field(
        default_factory=lambda: {"doc": [], "list": [], "map": []}
    )
    list_view: dict[int, Any] = field(default_factory=dict)
    map_view: dict[str, Any] = field(default_factory=dict)
    # Expected final state from this client's own acknowledged writes.
    doc_writes: list[tuple[int, object]] = field(default_factory=list)  # (seq, value | Unknown)
    pushed: dict[int, Any] = field(default_factory=dict)  # index -> data (acknowledged pushes)
    removed_indexes: set[int] = field(default_factory=set)
    map_last: dict[str, object] = field(
        default_factory=dict
    )  # key -> data | None (removed) | Unknown
    acked: int = 0
    unknown: int = 0
    not_applied: int = 0

    async def open(self) -> None:
        self.doc = await self.client.document(DOC)
        self.lst = await self.client.list(LIST)
        self.map = await self.client.map(MAP)
        self.doc.on("updated", lambda e: self.event_ids["doc"].append(e.event_id))

        def list_added(e: Any) -> None:
            self.event_ids["list"].append(e.item.last_event_id)
            self.list_view[e.item.index] = e.item.data

        def list_removed(e: Any) -> None:
            self.event_ids["list"].append(e.event_id)
            self.list_view.pop(e.index, None)

        def map_set(e: Any) -> None:
            self.event_ids["map"].append(e.item.last_event_id)
            self.map_view[e.item.key] = e.item.data

        def map_removed(e: Any) -> None:
            self.event_ids["map"].append(e.event_id)
            self.map_view.pop(e.key, None)

        self.lst.on("item_added", list_added)
        self.lst.on("item_updated", list_added)
        self.lst.on("item_removed", list_removed)
        self.map.on("item_added", map_set)
        self.map.on("item_updated", map_set)
        self.map.on("item_removed", map_removed)

    async def write_forever(self, stop: asyncio.Event) -> None:
        rng = random.Random(self.n)
        seq = 0
        while not stop.is_set():
            await asyncio.sleep(0)  # some branches write nothing; never starve the loop
            seq += 1
            op = rng.random()
            try:
                if op < 0.3:
                    self.doc_writes.append((seq, Unknown))
                    await self.doc.update({f"c{self.n}": seq})
                    self.doc_writes[-1] = (seq, seq)
                    self.acked += 1
                elif op < 0.55:
                    item = await self.lst.push({"c": self.n, "seq": seq})
                    self.pushed[item.index] = item.data
                    self.acked += 1
                elif op < 0.62 and self.pushed:
                    index = rng.choice(sorted(set(self.pushed) - self.removed_indexes) or [-1])
                    if index >= 0:
                        self.removed_indexes.add(index)
                        await self.lst.remove(index)
                        self.acked += 1
                elif op < 0.92:
                    key = f"c{self.n}-k{rng.randrange(12)}"
                    self.map_last[key] = Unknown
                    data = {"c": self.n, "seq": seq}
                    await self.map.set(key, data)
                    self.map_last[key] = data
                    self.acked += 1
                else:
                    key = f"c{self.n}-k{rng.randrange(12)}"
                    if key in self.map_last:
                        self.map_last[key] = Unknown
                        await self.map.remove(key)
                        self.map_last[key] = None
                        self.acked += 1
            except ConnectionLostError:
                self.not_applied += 1  # never sent: roll the expectation back
                self._roll_back()
            except CommandTimeoutError:
                self.unknown += 1  # sent, outcome unknown: leave it marked Unknown
            except SyncError as err:
                if err.code in (54151, 54201):  # removed twice after an unknown outcome
                    continue
                raise

    def _roll_back(self) -> None:
        if self.doc_writes and self.doc_writes[-1][1] is Unknown:
            self.doc_writes.pop()


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def all_items(obj: SyncList | SyncMap) -> dict[Any, Any]:
    page: Any = await obj.get_items(page_size=100)
    out: dict[Any, Any] = {}
    while True:
        for item in page.items:
            out[getattr(item, "index", None) if isinstance(obj, SyncList) else item.key] = item.data
        if not page.has_next_page:
            return out
        page = await page.next_page()


async def converge_and_check(actors: list[Actor], referee_client: Client) -> int:
    """Wait until every actor is connected and caught up (after one last write per object by
    `referee_client`), then check: every client saw every event exactly once and in order,
    every client's view equals the server's state, and every acknowledged write is there.
    Returns the number of events checked."""
    # Let everyone reconnect and catch up, then flush with one last write per object.
    for a in actors:
        await wait_until(
            lambda a=a: a.client.connection_state is ConnectionState.CONNECTED, 20, "reconnect"
        )
        for obj in (a.doc, a.lst, a.map):
            await wait_until(
                lambda o=obj: o.subscription_state is SubscriptionState.ESTABLISHED,
                20,
                "subscriptions",
            )
    async with referee_client as referee:
        ref_doc = await referee.document(DOC, mode="open_existing")
        ref_list = await referee.list(LIST, mode="open_existing")
        ref_map = await referee.map(MAP, mode="open_existing")
        await ref_doc.update({"final": True})
        await ref_list.push({"final": True})
        await ref_map.set("final", {"final": True})
        last = {
            "doc": ref_doc.last_event_id,
            "list": ref_list.last_event_id,
            "map": ref_map.last_event_id,
        }
        for a in actors:
            await wait_until(
                lambda a=a: all(a.event_ids[k][-1:] == [last[k]] for k in last),
                20,
                f"client {a.n} events",
            )
        server_doc = dict(ref_doc.data)
        server_list = await all_items(ref_list)
        server_map = await all_items(ref_map)

    events_checked = 0
    for a in actors:
        # Exactly once, in order: event ids 1..last with no gap and no duplicate.
        for kind, ids in a.event_ids.items():
            assert ids == list(range(1, last[kind] + 1)), (
                f"client {a.n} {kind}: {len(ids)} events, first gap/dup near "
                f"{next((x for i, x in enumerate(ids) if x != i + 1), None)}"
            )
            events_checked += len(ids)
        # Every client's view equals the server's state.
        assert a.doc.data == server_doc
        assert a.list_view == server_list
        assert a.map_view == server_map
        # Every acknowledged write is there.
        acked_doc = [value for _, value in a.doc_writes]
        if acked_doc and acked_doc[-1] is not Unknown:
            assert server_doc[f"c{a.n}"] == acked_doc[-1]
        for index, data in a.pushed.items():
            if index not in a.removed_indexes:
                assert server_list.get(index) == data, f"acknowledged push {index} lost"
        for key, value in a.map_last.items():
            if value is Unknown:
                continue
            if value is None:
                assert key not in server_map, f"acknowledged removal of {key} lost"
            else:
                assert server_map.get(key) == value, f"acknowledged write of {key} lost"
    return events_checked


async def test_chaos_no_loss_no_duplicates_no_reordering(make_server: ServerFactory) -> None:
    srv = make_server(["--write-rate", "0", "--event-retention", "1000000"])
    proxy = TcpProxy(srv.port)
    await proxy.start()
    actors = [
        Actor(
            i, srv.client(f"chaos{i}", url=proxy.url, command_timeout=3.0, heartbeat_interval=0.5)
        )
        for i in range(CLIENTS)
    ]
    reconnects = 0

    def count_reconnects(state: ConnectionState) -> None:
        nonlocal reconnects
        reconnects += state is ConnectionState.CONNECTING

    try:
        for a in actors:
            a.client.on("connection_state_changed", count_reconnects)
            await a.client.connect()
            await a.open()
        stop = asyncio.Event()
        writers = [asyncio.create_task(a.write_forever(stop)) for a in actors]
        rng = random.Random(7)
        cuts = kills = stalls = 0
        end = time.monotonic() + DURATION
        while time.monotonic() < end:
            await asyncio.sleep(rng.uniform(0.8, 2.0))
            action = rng.random()
            if action < 0.45:
                cuts += proxy.cut_all() > 0
            elif action < 0.8:
                srv.stop(signal.SIGKILL)
                kills += 1
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                await asyncio.to_thread(srv.start)
            else:
                proxy.stalled = True
                stalls += 1
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                proxy.stalled = False
                proxy.cut_all()
        stop.set()
        await asyncio.gather(*writers)

        events_checked = await converge_and_check(actors, srv.client("referee"))
        acked = sum(a.acked for a in actors)
        print(
            f"\nchaos: {acked} writes acknowledged, {sum(a.unknown for a in actors)} unknown, "
            f"{sum(a.not_applied for a in actors)} not applied; {reconnects} reconnects "
            f"({cuts} cuts, {kills} server kills, {stalls} stalls); {events_checked} events checked"
        )
        assert acked > 200 and kills >= 2 and reconnects >= 10
    finally:
        for a in actors:
            await a.client.shutdown()
        await proxy.close()
        srv.stop()
