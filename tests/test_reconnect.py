"""Connection lifecycle against a real server: reconnect with catch-up, heartbeats, history
loss, server crash, calls while disconnected, token expiry and refresh.

Network failures are made with a TCP proxy between the client and the server."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sync_sdk import (
    Client,
    ClientOptions,
    ConnectionLostError,
    ConnectionState,
    DocumentUpdatedEvent,
    MapItemAddedEvent,
    SubscriptionState,
    TokenAboutToExpireEvent,
    TokenExpiredEvent,
)
from tests.conftest import ServerFactory, ServerProcess, next_event, wait_for_state
from tests.netproxy import TcpProxy


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def proxy(server: ServerProcess) -> AsyncIterator[TcpProxy]:
    p = TcpProxy(server.port)
    await p.start()
    yield p
    await p.close()


def via(server: ServerProcess, proxy: TcpProxy, identity: str, **options: Any) -> Client:
    return server.client(identity, url=proxy.url, **options)


async def test_reconnect_replays_missed_events_in_order_exactly_once(
    server: ServerProcess, proxy: TcpProxy, bob: Client
) -> None:
    doc_name, map_name = name("doc"), name("map")
    async with via(server, proxy, "alice") as alice:
        doc = await alice.document(doc_name)
        m = await alice.map(map_name)
        doc_events: asyncio.Queue[DocumentUpdatedEvent] = asyncio.Queue()
        map_events: asyncio.Queue[MapItemAddedEvent] = asyncio.Queue()
        states: list[ConnectionState] = []
        doc.on("updated", doc_events.put_nowait)
        m.on("item_added", map_events.put_nowait)
        alice.on("connection_state_changed", states.append)
        bob_doc, bob_map = await bob.document(doc_name), await bob.map(map_name)
        await bob_doc.set({"n": 0})
        assert (await next_event(doc_events)).data == {"n": 0}

        proxy.accepting = False
        proxy.cut_all()
        await wait_for_state(alice, ConnectionState.CONNECTING)
        for i in range(1, 11):  # alice is offline for all of these
            await bob_doc.set({"n": i})
            await bob_map.set(f"k{i:02}", {"i": i})
        proxy.accepting = True
        await wait_for_state(alice, ConnectionState.CONNECTED)

        got_doc = [await next_event(doc_events) for _ in range(10)]
        got_map = [await next_event(map_events) for _ in range(10)]
        assert [e.data["n"] for e in got_doc] == list(range(1, 11))
        assert [e.event_id for e in got_doc] == list(
            range(got_doc[0].event_id, got_doc[0].event_id + 10)
        )
        assert [e.item.key for e in got_map] == [f"k{i:02}" for i in range(1, 11)]
        await bob_doc.set({"n": "live"})  # live events resume after the replay
        assert (await next_event(doc_events)).data == {"n": "live"}
        await asyncio.sleep(0.3)
        assert doc_events.empty() and map_events.empty(), "duplicate events delivered"
        assert doc.data == {"n": "live"}
        assert states[:2] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]


async def test_stalled_connection_is_noticed_by_heartbeat(
    server: ServerProcess, proxy: TcpProxy
) -> None:
    async with via(server, proxy, "alice", heartbeat_interval=0.5) as alice:
        doc = await alice.document(name("stall"))
        proxy.stalled = True  # bytes vanish; no FIN, no RST
        noticed = await wait_for_state(alice, ConnectionState.CONNECTING, timeout=5)
        assert noticed < 3.0, f"a dead connection took {noticed:.1f}s to notice"
        proxy.stalled = False
        proxy.cut_all()
        await wait_for_state(alice, ConnectionState.CONNECTED)
        await doc.set({"alive": True})
        assert doc.data == {"alive": True}


async def test_calls_while_disconnected_wait_then_fail_as_not_applied(
    server: ServerProcess, proxy: TcpProxy
) -> None:
    async with via(server, proxy, "alice", command_timeout=0.5) as alice:
        doc = await alice.document(name("offline"))
        proxy.accepting = False
        proxy.cut_all()
        await wait_for_state(alice, ConnectionState.CONNECTING)
        with pytest.raises(ConnectionLostError) as info:
            await doc.set({"lost": True})
        assert info.value.code == 51010 and "not sent" in info.value.message
        proxy.accepting = True
        pending = asyncio.create_task(doc.set({"queued": True}))  # waits for the reconnect
        await wait_for_state(alice, ConnectionState.CONNECTED)
        assert await pending == {"queued": True}


async def test_subscription_state_follows_the_connection(
    server: ServerProcess, proxy: TcpProxy
) -> None:
    async with via(server, proxy, "alice") as alice:
        lst = await alice.list(name("subs"))
        assert lst.subscription_state is SubscriptionState.ESTABLISHED
        seen: list[SubscriptionState] = []
        lst.on("subscription_state_changed", seen.append)
        proxy.cut_all()
        await wait_for_state(alice, ConnectionState.CONNECTING)
        await wait_for_state(alice, ConnectionState.CONNECTED)
        for _ in range(200):
            if lst.subscription_state is SubscriptionState.ESTABLISHED:
                break
            await asyncio.sleep(0.01)
        assert seen[0] is SubscriptionState.PENDING and seen[-1] is SubscriptionState.ESTABLISHED


async def test_lost_history_is_replaced_by_a_snapshot(make_server: ServerFactory) -> None:
    srv = make_server(["--event-retention", "3"])
    proxy = TcpProxy(srv.port)
    await proxy.start()
    try:
        doc_name, map_name = name("doc"), name("map")
        async with via(srv, proxy, "alice") as alice, srv.client("bob") as bob:
            doc, m = await alice.document(doc_name), await alice.map(map_name)
            bob_doc, bob_map = await bob.document(doc_name), await bob.map(map_name)
            await bob_map.set("keep", {"v": 0})
            await bob_map.set("drop", {"v": 0})
            await bob_map.set("change", {"v": 0})
            events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            await asyncio.sleep(0.2)
            doc.on("updated", lambda e: events.put_nowait(("doc", e)))
            for ev_name in ("item_added", "item_updated", "item_removed"):
                m.on(ev_name, lambda e, n=ev_name: events.put_nowait((n, e)))
            proxy.accepting = False
            proxy.cut_all()
            await wait_for_state(alice, ConnectionState.CONNECTING)
            for i in range(10):  # more than the server keeps
                await bob_doc.set({"n": i})
                await bob_map.set("change", {"v": i})
            await bob_map.remove("drop")
            await bob_map.set("new", {"v": 1})
            proxy.accepting = True
            await wait_for_state(alice, ConnectionState.CONNECTED)
            got = [await next_event(events) for _ in range(4)]
            kinds = sorted(
                (k, getattr(e, "key", None) or getattr(getattr(e, "item", None), "key", None))
                for k, e in got
            )
            assert kinds == [
                ("doc", None),
                ("item_added", "new"),
                ("item_removed", "drop"),
                ("item_updated", "change"),
            ]
            doc_event = next(e for k, e in got if k == "doc")
            assert doc_event.data == {"n": 9} and doc_event.is_local is False
            assert doc.data == {"n": 9}
            await asyncio.sleep(0.3)
            assert events.empty()
    finally:
        await proxy.close()
        srv.stop()


async def test_server_crash_loses_no_acknowledged_write(fresh_server: ServerProcess) -> None:
    async with fresh_server.client("alice") as alice:
        m = await alice.map("crash-map")
        acked: list[str] = []

        async def writer() -> None:
            i = 0
            while True:
                key = f"k{i:05}"
                try:
                    await m.set(key, {"i": i})
                except Exception:
                    return
                acked.append(key)
                i += 1

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.5)
        fresh_server.stop(signal.SIGKILL)  # mid-storm
        await asyncio.sleep(0.2)
        task.cancel()
        fresh_server.start()  # same port, same data dir: alice reconnects by herself
        await wait_for_state(alice, ConnectionState.CONNECTED, timeout=15)
        assert len(acked) > 10
        keys: list[str] = []
        page = await m.get_items(page_size=100)
        while True:
            keys.extend(item.key for item in page.items)
            if not page.has_next_page:
                break
            page = await page.next_page()
        missing = set(acked) - set(keys)
        assert not missing, f"{len(missing)} acknowledged writes lost"


async def test_token_expiry_then_update_token(server: ServerProcess) -> None:
    client = Client(
        server.token("alice", ttl=3), ClientOptions(url=server.url, token_refresh_margin=1.5)
    )
    about: list[TokenAboutToExpireEvent] = []
    expired: list[TokenExpiredEvent] = []
    client.on("token_about_to_expire", about.append)
    client.on("token_expired", expired.append)
    async with client:
        doc = await client.document(name("expiry"))
        await wait_for_state(client, ConnectionState.DENIED, timeout=10)
        assert len(about) == 1 and 0 < about[0].expires_in <= 1.6
        assert len(expired) == 1
        await client.update_token(server.token("alice", ttl=600))
        await wait_for_state(client, ConnectionState.CONNECTED)
        await doc.set({"after": "refresh"})
        assert doc.data == {"after": "refresh"}


async def test_token_provider_keeps_the_client_connected(server: ServerProcess) -> None:
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return server.token("alice", ttl=4)

    client = Client(
        server.token("alice", ttl=3),
        ClientOptions(url=server.url, token_refresh_margin=1.5, token_provider=provider),
    )
    states: list[ConnectionState] = []
    client.on("connection_state_changed", states.append)
    async with client:
        await asyncio.sleep(5)  # past the first token's expiry
        assert calls >= 1
        assert client.connection_state is ConnectionState.CONNECTED
        assert ConnectionState.DENIED not in states
