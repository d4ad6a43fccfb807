"""Several equivalent server nodes (`ClientOptions.urls`): rotation, validation, and failover
with catch-up against a real server.

Two TcpProxy instances in front of one server stand for two nodes sharing state: stopping a
proxy is a node going away, while the state behind it lives on."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sync_sdk import (
    Client,
    ClientOptions,
    ConnectFailedError,
    ConnectionErrorEvent,
    ConnectionState,
    DocumentUpdatedEvent,
    InvalidRequestError,
    MapItemAddedEvent,
    SubscriptionState,
)
from sync_sdk.client import _check_urls, _NodeRotation
from tests.conftest import ServerFactory, ServerProcess, next_event, wait_for_state
from tests.netproxy import TcpProxy

FAKE_TOKEN = "header.payload.signature"  # JWT-shaped: enough for a client that never connects


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def dead_url() -> str:
    """A URL on a local port where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def wait_established(*objects: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while any(o.subscription_state is not SubscriptionState.ESTABLISHED for o in objects):
        assert time.monotonic() < deadline, "subscriptions not re-established"
        await asyncio.sleep(0.01)


@pytest.fixture
async def nodes(fresh_server: ServerProcess) -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    first, second = TcpProxy(fresh_server.port), TcpProxy(fresh_server.port)
    await first.start()
    await second.start()
    yield first, second
    await first.close()
    await second.close()


# ---- rotation and validation (no server) ---------------------------------------------------


def test_rotation_tries_each_node_once_per_round_then_backs_off() -> None:
    nodes = _NodeRotation(["http://a", "http://b", "http://c"])
    assert nodes.current == "http://a"
    assert nodes.attempt() == "http://a"
    assert nodes.failed() is False and nodes.current == "http://b"
    assert nodes.attempt() == "http://b"
    assert nodes.failed() is False and nodes.current == "http://c"
    assert nodes.attempt() == "http://c"
    assert nodes.failed() is True, "a full round of failures must ask for a back-off"
    assert nodes.current == "http://a"
    assert nodes.tried == ("http://a", "http://b", "http://c")
    # Second round: again two prompt moves, then a back-off.
    assert [nodes.failed() for _ in range(3)] == [False, False, True]

    # Connected on b: the round restarts there; losing b moves on to c at once, and a
    # back-off is due only when the failures since the success cover every node.
    nodes.failed()
    nodes.attempt()
    assert nodes.current == "http://b"
    nodes.succeeded()
    assert nodes.tried == ()
    assert nodes.failed() is False and nodes.current == "http://c"
    assert nodes.failed() is False and nodes.current == "http://a"
    assert nodes.failed() is True and nodes.current == "http://b"


def test_single_node_backs_off_after_every_failure() -> None:
    nodes = _NodeRotation(["http://only"])
    assert [nodes.failed() for _ in range(3)] == [True, True, True]
    assert nodes.current == "http://only"


def test_urls_take_precedence_over_url_and_empty_means_url() -> None:
    assert _check_urls(ClientOptions(url="http://a")) == ("http://a",)
    assert _check_urls(ClientOptions(url="http://a", urls=[])) == ("http://a",)
    assert _check_urls(ClientOptions(url="http://a", urls=("wss://b", "http://c", "wss://b"))) == (
        "wss://b",
        "http://c",
    )
    client = Client(FAKE_TOKEN, ClientOptions(url="http://a", urls=["https://b", "ws://c"]))
    assert client.server_url == "https://b"
    assert Client(FAKE_TOKEN, ClientOptions(url="http://a", urls=[])).server_url == "http://a"


@pytest.mark.parametrize(
    ("urls", "fragment"),
    [
        (["http://ok", "ftp://node2"], "ClientOptions.urls[1] must be an http(s):// or ws(s)://"),
        (["127.0.0.1:4700"], "got '127.0.0.1:4700'"),
        ([""], "ClientOptions.urls[0]"),
        ([None], "ClientOptions.urls[0]"),
        ("http://a,http://b", "must be a list of URLs"),
    ],
)
def test_bad_urls_raise_invalid_request(urls: Any, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Client(FAKE_TOKEN, ClientOptions(urls=urls))
    assert info.value.code == 51000
    assert fragment in info.value.message


# ---- against a real server -----------------------------------------------------------------


async def test_unreachable_first_node_is_skipped_promptly(server: ServerProcess) -> None:
    dead = dead_url()
    errors: list[ConnectionErrorEvent] = []
    # A back-off of 5 s would show: moving on within a round must not wait for it.
    client = server.client(
        "alice", urls=[dead, server.url], reconnect_initial_delay=5.0, reconnect_max_delay=5.0
    )
    client.on("connection_error", errors.append)
    start = time.monotonic()
    async with client:
        elapsed = time.monotonic() - start
        assert elapsed < 2.0, f"took {elapsed:.1f}s to reach the second node"
        assert client.server_url == server.url
        assert len(errors) == 1 and dead.removeprefix("http://") in errors[0].message
        doc = await client.document(name("skip"))
        assert await doc.set({"ok": True}) == {"ok": True}


async def test_silent_first_node_costs_a_share_of_connect_timeout(server: ServerProcess) -> None:
    blackhole = TcpProxy(server.port)
    await blackhole.start()
    blackhole.stalled = True  # accepts TCP, then never answers
    try:
        client = server.client("alice", urls=[blackhole.url, server.url], connect_timeout=2.0)
        start = time.monotonic()
        async with client:  # would raise ConnectFailedError if the first node took it all
            assert client.server_url == server.url
            assert time.monotonic() - start < 1.9
    finally:
        await blackhole.close()


async def test_all_nodes_down_names_every_url_tried() -> None:
    first, second = dead_url(), dead_url()
    client = Client(
        FAKE_TOKEN,
        ClientOptions(urls=[first, second], connect_timeout=0.6, reconnect_initial_delay=0.05),
    )
    with pytest.raises(ConnectFailedError) as info:
        await client.connect()
    message = info.value.message
    assert f"could not connect to any of {first}, {second} within 0.6s" in message
    assert client.connection_state is ConnectionState.DISCONNECTED


async def test_back_off_applies_between_rounds_not_between_nodes() -> None:
    client = Client(
        FAKE_TOKEN,
        ClientOptions(
            urls=[dead_url(), dead_url()],
            connect_timeout=1.1,
            reconnect_initial_delay=0.3,
            reconnect_max_delay=0.3,
            reconnect_jitter=0.0,
        ),
    )
    stamps: list[float] = []
    client.on("connection_error", lambda _e: stamps.append(time.monotonic()))
    with pytest.raises(ConnectFailedError):
        await client.connect()
    # Rounds start at 0, 0.3, 0.6 and 0.9 s, two refused attempts each.
    assert 6 <= len(stamps) <= 10, f"{len(stamps)} attempts in 1.1 s"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    within = gaps[0::2]  # node 1 -> node 2 of the same round
    between = gaps[1::2]  # end of a round -> next round, after the back-off
    assert max(within) < 0.15, within
    assert min(between) > 0.25, between


async def test_failover_catches_up_every_missed_event_once(
    fresh_server: ServerProcess, nodes: tuple[TcpProxy, TcpProxy], caplog: Any
) -> None:
    node1, node2 = nodes
    doc_name, map_name = name("doc"), name("map")
    caplog.set_level(logging.INFO, logger="sync_sdk")
    async with (
        fresh_server.client("alice", urls=[node1.url, node2.url], log_level="info") as alice,
        fresh_server.client("bob") as bob,
    ):
        assert alice.server_url == node1.url
        doc, m = await alice.document(doc_name), await alice.map(map_name)
        doc_events: asyncio.Queue[DocumentUpdatedEvent] = asyncio.Queue()
        map_events: asyncio.Queue[MapItemAddedEvent] = asyncio.Queue()
        doc.on("updated", doc_events.put_nowait)
        m.on("item_added", map_events.put_nowait)
        bob_doc, bob_map = await bob.document(doc_name), await bob.map(map_name)
        await bob_doc.set({"n": 0})
        assert (await next_event(doc_events)).data == {"n": 0}

        node2.accepting = False  # hold alice off node 2 until the writes are done
        await node1.close()  # node 1 goes away: connections cut, no longer listening
        await wait_for_state(alice, ConnectionState.CONNECTING)
        for i in range(1, 11):  # alice is offline for all of these
            await bob_doc.set({"n": i})
            await bob_map.set(f"k{i:02}", {"i": i})
        node2.accepting = True
        await wait_for_state(alice, ConnectionState.CONNECTED)
        assert alice.server_url == node2.url

        got_doc = [await next_event(doc_events) for _ in range(10)]
        got_map = [await next_event(map_events) for _ in range(10)]
        assert [e.data["n"] for e in got_doc] == list(range(1, 11))
        first_id = got_doc[0].event_id
        assert [e.event_id for e in got_doc] == list(range(first_id, first_id + 10))
        assert [e.item.key for e in got_map] == [f"k{i:02}" for i in range(1, 11)]
        await bob_doc.set({"n": "live"})  # live events flow through node 2
        assert (await next_event(doc_events)).data == {"n": "live"}
        await m.set("from-alice", {"via": "node2"})  # and calls go through it
        assert (await bob_map.get("from-alice")).data == {"via": "node2"}
        await asyncio.sleep(0.3)
        assert doc_events.empty(), "duplicate document events delivered"
        assert map_events.get_nowait().item.key == "from-alice"
        assert map_events.empty(), "duplicate map events delivered"
        assert doc.data == {"n": "live"}
        assert alice.server_url == node2.url
    logged = [r.getMessage() for r in caplog.records if r.name == alice.logger.name]
    assert f"connected to {node1.url}" in logged
    assert f"connected to {node2.url}" in logged


async def test_lost_node_is_left_for_the_next_without_back_off(
    fresh_server: ServerProcess, nodes: tuple[TcpProxy, TcpProxy]
) -> None:
    node1, node2 = nodes
    async with fresh_server.client(
        "alice", urls=[node1.url, node2.url], reconnect_initial_delay=5.0, reconnect_max_delay=5.0
    ) as alice:
        lst = await alice.list(name("list"))
        await lst.push({"before": True})
        states: list[tuple[ConnectionState, float]] = []
        reconnected = asyncio.Event()

        def on_state(state: ConnectionState) -> None:
            states.append((state, time.monotonic()))
            if state is ConnectionState.CONNECTED:
                reconnected.set()

        alice.on("connection_state_changed", on_state)
        node1.cut_all()  # a reset; node 1 still listens, but alice moves on to node 2
        await asyncio.wait_for(reconnected.wait(), 5.0)
        assert [s for s, _ in states] == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
        took = states[1][1] - states[0][1]
        assert took < 1.0, f"failover took {took:.1f}s (the 5 s back-off was applied)"
        assert alice.server_url == node2.url
        await wait_established(lst)
        item = await lst.push({"after": True})
        assert item.index == 1
        assert node1.connections_cut == 1 and node1.connections_seen == 1
        # Both nodes down: losing node 2 sends alice to node 1 at once (refused), which
        # ends the round, so she waits the back-off (2.5 to 5 s) before node 2 again.
        node1.accepting = node2.accepting = False
        seen1, seen2 = node1.connections_seen, node2.connections_seen
        node2.cut_all()
        await wait_for_state(alice, ConnectionState.CONNECTING)
        await asyncio.sleep(1.0)
        assert alice.connection_state is ConnectionState.CONNECTING
        assert node1.connections_seen == seen1 + 1, "node 1 was not tried at once"
        assert node2.connections_seen == seen2, "node 2 was retried before the back-off"


async def test_failover_with_lost_history_sends_the_snapshot_diff(
    make_server: ServerFactory,
) -> None:
    srv = make_server(["--event-retention", "3"])
    node1, node2 = TcpProxy(srv.port), TcpProxy(srv.port)
    await node1.start()
    await node2.start()
    try:
        map_name = name("map")
        async with (
            srv.client("alice", urls=[node1.url, node2.url]) as alice,
            srv.client("bob") as bob,
        ):
            m = await alice.map(map_name)
            bob_map = await bob.map(map_name)
            await bob_map.set("drop", {"v": 0})
            await bob_map.set("change", {"v": 0})
            events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            await asyncio.sleep(0.2)
            for ev_name in ("item_added", "item_updated", "item_removed"):
                m.on(ev_name, lambda e, n=ev_name: events.put_nowait((n, e)))
            node2.accepting = False
            await node1.close()
            await wait_for_state(alice, ConnectionState.CONNECTING)
            for i in range(1, 10):  # more than the server keeps
                await bob_map.set("change", {"v": i})
            await bob_map.remove("drop")
            await bob_map.set("new", {"v": 1})
            node2.accepting = True
            await wait_for_state(alice, ConnectionState.CONNECTED)
            assert alice.server_url == node2.url
            got = sorted(
                (k, getattr(e, "key", None) or e.item.key)
                for k, e in [await next_event(events) for _ in range(3)]
            )
            assert got == [
                ("item_added", "new"),
                ("item_removed", "drop"),
                ("item_updated", "change"),
            ]
            assert (await m.get("change")).data == {"v": 9}
            await asyncio.sleep(0.3)
            assert events.empty()
    finally:
        await node1.close()
        await node2.close()
        srv.stop()
