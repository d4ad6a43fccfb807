"""Several sync-server nodes sharing PostgreSQL and Redis: every write reaches every node's
subscribers in event-id order; expiry runs once; a killed node's clients move to another
node and converge; a Redis restart leaves no subscriber stale."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from sync_sdk import Client, ConnectionState, SubscriptionState, SyncError
from tests import services
from tests.conftest import ServerProcess, next_event
from tests.netproxy import TcpProxy
from tests.test_acl import Rest, forbidden, state_queue
from tests.test_chaos import Actor, all_items, converge_and_check, wait_until
from tests.test_fuzz_wire import RawConn


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Three nodes on one fresh database, started at once (their migrations race)."""
    first = ServerProcess(tmp_path / "data", ["--write-rate", "0"], backend="cluster")
    nodes = [first, first.node(), first.node()]
    # The credentials live in the shared data dir: let the first node write them.
    first.start()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ServerProcess.start, nodes[1:]))
    yield nodes
    for node in nodes[1:]:
        node.stop()
    first.destroy()


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_writes_on_every_node_reach_every_node_in_order(
    cluster: list[ServerProcess],
) -> None:
    map_name, list_name, stream_name = name("map"), name("list"), name("stream")
    clients = [node.client(f"user{i}") for i, node in enumerate(cluster)]
    seen: list[dict[str, list[int]]] = [{"map": [], "list": []} for _ in clients]
    messages: list[list[Any]] = [[] for _ in clients]
    try:
        maps, lists, streams = [], [], []
        for i, client in enumerate(clients):
            await client.connect()
            m, lst, st = (
                await client.map(map_name),
                await client.list(list_name),
                await client.stream(stream_name),
            )
            m.on("item_added", lambda e, i=i: seen[i]["map"].append(e.item.last_event_id))
            m.on("item_updated", lambda e, i=i: seen[i]["map"].append(e.item.last_event_id))
            lst.on("item_added", lambda e, i=i: seen[i]["list"].append(e.item.last_event_id))
            st.on("message_published", lambda e, i=i: messages[i].append(e.message.data))
            maps.append(m)
            lists.append(lst)
            streams.append(st)

        async def write(i: int) -> None:
            for n in range(25):
                await maps[i].set(f"k{n % 7}", {"by": i, "n": n})
                await lists[i].push({"by": i, "n": n})
            await streams[i].publish_message({"from": i})

        # Every node writes to the same objects at once.
        await asyncio.gather(*(write(i) for i in range(len(clients))))
        total = 25 * len(clients)
        for i in range(len(clients)):
            await wait_until(
                lambda i=i: len(seen[i]["map"]) >= total and len(seen[i]["list"]) >= total,
                15,
                f"events on node {i}",
            )
            # Exactly once and in order on every node, whichever node wrote.
            assert seen[i]["map"] == list(range(1, total + 1))
            assert seen[i]["list"] == list(range(1, total + 1))
            await wait_until(lambda i=i: len(messages[i]) == len(clients), 10, "stream messages")
            assert sorted(m["from"] for m in messages[i]) == list(range(len(clients)))
        server_map = await all_items(maps[0])
        server_list = await all_items(lists[0])
        assert len(server_list) == total
        for m, lst in zip(maps, lists, strict=True):
            assert await all_items(m) == server_map
            assert await all_items(lst) == server_list
    finally:
        for client in clients:
            await client.shutdown()


async def test_expiry_runs_once_across_the_cluster(cluster: list[ServerProcess]) -> None:
    map_name = name("ttl")
    clients = [node.client("alice") for node in cluster]
    try:
        removed: list[asyncio.Queue[Any]] = []
        for client in clients:
            await client.connect()
            m = await client.map(map_name)
            queue: asyncio.Queue[Any] = asyncio.Queue()
            m.on("item_removed", queue.put_nowait)
            removed.append(queue)
        writer = await clients[0].map(map_name)
        await writer.set("short", {"v": 1}, ttl=1)
        for queue in removed:
            event = await next_event(queue, 10)
            assert event.key == "short" and event.event_id == 2
        await asyncio.sleep(2.5)  # several sweeps on every node
        for queue in removed:
            assert queue.empty(), "an item expired more than once"
        reopened = await clients[2].map(map_name)
        assert reopened.last_event_id == 2  # one set, one removal: no second expiry event
    finally:
        for client in clients:
            await client.shutdown()


async def test_killed_node_clients_move_and_converge(cluster: list[ServerProcess]) -> None:
    """Six clients, two per node, each given every node's URL; node 0 is SIGKILLed in the
    middle of a write storm. Its clients move to another node; at the end every client saw
    every event exactly once and in order, and no acknowledged write is lost."""
    urls = [node.url for node in cluster]
    actors = []
    for i in range(6):
        start = i % len(urls)
        order = urls[start:] + urls[:start]
        client = cluster[0].client(f"actor{i}", urls=order, command_timeout=3.0)
        actors.append(Actor(i, client))
    try:
        for a in actors:
            await a.client.connect()
            await a.open()
        stop = asyncio.Event()
        writers = [asyncio.create_task(a.write_forever(stop)) for a in actors]
        await asyncio.sleep(2.0)
        cluster[0].stop(signal.SIGKILL)
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*writers)
        for a in actors[0::3]:  # the clients that started on node 0
            await wait_until(
                lambda a=a: a.client.connection_state is ConnectionState.CONNECTED, 20, "failover"
            )
            assert a.client.server_url != cluster[0].url
        checked = await converge_and_check(actors, cluster[1].client("referee"))
        assert sum(a.acked for a in actors) > 100 and checked > 100
    finally:
        for a in actors:
            await a.client.shutdown()


async def test_redis_restart_leaves_no_subscriber_stale(cluster: list[ServerProcess]) -> None:
    """Writes keep landing on node 0 while Redis is down; node 1's subscriber still gets
    every one of them, in order, once Redis is back (repaired from PostgreSQL)."""
    map_name = name("outage")
    writer_client, reader_client = cluster[0].client("writer"), cluster[1].client("reader")
    seen: list[int] = []
    try:
        await writer_client.connect()
        await reader_client.connect()
        writer = await writer_client.map(map_name)
        reader = await reader_client.map(map_name)
        reader.on("item_added", lambda e: seen.append(e.item.last_event_id))
        reader.on("item_updated", lambda e: seen.append(e.item.last_event_id))
        stop = asyncio.Event()
        written = 0

        async def write() -> None:
            nonlocal written
            rng = random.Random(3)
            while not stop.is_set():
                await writer.set(f"k{rng.randrange(5)}", {"n": written})
                written += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        before = written
        await asyncio.to_thread(services.restart_redis, 1.0)
        await asyncio.sleep(0.5)
        stop.set()
        await task
        assert written > before + 20, "writes must go on while Redis is away"
        await wait_until(lambda: seen[-1:] == [written], 15, f"event {written} (got {seen[-3:]})")
        assert seen == list(range(1, written + 1))
        assert await all_items(reader) == await all_items(writer)
    finally:
        await writer_client.shutdown()
        await reader_client.shutdown()


async def test_one_client_per_node_sees_the_others_document_updates(
    cluster: list[ServerProcess],
) -> None:
    doc_name = name("doc")
    clients: list[Client] = [node.client(f"u{i}") for i, node in enumerate(cluster)]
    try:
        docs = []
        queues: list[asyncio.Queue[Any]] = []
        for client in clients:
            await client.connect()
            doc = await client.document(doc_name)
            queue: asyncio.Queue[Any] = asyncio.Queue()
            doc.on("updated", queue.put_nowait)
            docs.append(doc)
            queues.append(queue)
        for i, doc in enumerate(docs):
            await doc.set({"last": i})
            for queue in queues:
                event = await next_event(queue)
                assert event.data == {"last": i} and event.event_id == i + 1
    finally:
        for client in clients:
            await client.shutdown()


async def test_postgres_connection_loss_fails_writes_clearly_then_recovers(
    tmp_path: Path,
) -> None:
    """The node's database connections are cut and refused for a while: writes fail with a
    typed 20500 (never a hang, never a false acknowledgement), live subscriptions stay
    open, and once PostgreSQL is reachable again the pool reconnects and writes go on."""
    database_url = services.create_database()
    proxy = TcpProxy(urlsplit(database_url).port or 5432)
    await proxy.start()
    node = ServerProcess(
        tmp_path / "data",
        ["--write-rate", "0"],
        backend="cluster",
        database_url=urlunsplit(
            urlsplit(database_url)._replace(netloc=f"postgres@127.0.0.1:{proxy.port}")
        ),
        redis_prefix=services.channel_prefix(),
    )
    await asyncio.to_thread(node.start)  # the proxy runs on this loop
    writer_client, reader_client = node.client("writer"), node.client("reader")
    seen: list[int] = []
    try:
        await writer_client.connect()
        await reader_client.connect()
        writer = await writer_client.map(name("pg-loss"))
        reader = await reader_client.map(writer.sid)
        reader.on("item_added", lambda e: seen.append(e.item.last_event_id))
        await writer.set("before", {"n": 0})

        proxy.accepting = False
        proxy.cut_all()
        with pytest.raises(SyncError) as failed:
            await writer.set("during", {"n": 1})
        assert failed.value.code == 20500
        assert reader_client.connection_state is ConnectionState.CONNECTED
        async with httpx.AsyncClient(base_url=node.url) as http:
            unready = await http.get("/readyz")  # load balancers: route clients elsewhere
            assert unready.status_code == 503
            assert unready.json()["status"] == "unavailable"
            assert unready.json()["storage"]["ok"] is False

        proxy.accepting = True
        acknowledged = ["before"]
        for n in range(40):  # the pool replaces its broken connections as they are used
            try:
                await writer.set(f"after{n}", {"n": n})
                acknowledged.append(f"after{n}")
            except SyncError as err:
                assert err.code == 20500
                await asyncio.sleep(0.05)
        assert len(acknowledged) > 30, acknowledged
        async with httpx.AsyncClient(base_url=node.url) as http:
            assert (await http.get("/readyz")).json()["status"] == "ready"
        await wait_until(lambda: len(seen) == len(acknowledged), 10, "the reader's events")
        assert seen == list(range(1, len(acknowledged) + 1))
        assert sorted(await all_items(reader)) == sorted(acknowledged)
    finally:
        await writer_client.shutdown()
        await reader_client.shutdown()
        node.stop()
        await proxy.close()
        services.drop_database(database_url)


async def test_access_changes_on_one_node_apply_on_the_others(
    cluster: list[ServerProcess],
) -> None:
    """ACL switched on, granted and revoked over REST on node 0: a subscriber on node 1 is
    cut off, let back in and cut off again, live (cache invalidations cross over Redis)."""
    rest = Rest(cluster[0])
    bob = cluster[1].client("bob")
    try:
        sid = await rest.create("map", name("acl"))
        await bob.connect()
        bobs_map = await bob.map(sid, mode="open_existing")  # node 1 caches: no ACL
        states = state_queue(bobs_map)

        await rest.set_acl(True)
        assert await next_event(states) is SubscriptionState.FAILED
        await forbidden(bob.map(sid, mode="open_existing"))

        await rest.grant("map", sid, "bob", read=True)
        again = await bob.map(sid, mode="open_existing")
        again_states = state_queue(again)
        await rest.set_item("map", sid, "k", {"v": 1})
        await wait_until(lambda: again.subscription_state is SubscriptionState.ESTABLISHED, 5, "")
        assert (await again.get("k")).data == {"v": 1}

        await rest.revoke("map", sid, "bob")
        assert await next_event(again_states) is SubscriptionState.FAILED
    finally:
        await bob.shutdown()
        await rest.aclose()


async def test_a_stream_removed_on_one_node_is_gone_on_the_others(
    cluster: list[ServerProcess],
) -> None:
    """Node 1 caches that a stream exists (publishing needs no storage read); a removal on
    node 0 must reach that cache, so publishing on node 1 then fails with 54250. A bare
    protocol connection that never subscribes publishes, so no `removed` event is involved."""
    rest = Rest(cluster[0])
    publisher = await RawConn(cluster[1], "alice").open()
    try:
        sid = (await publisher.ok("open", kind="stream", object_id=name("stream")))["sid"]
        await publisher.ok("stream_publish", sid=sid, data={"n": 1})
        await rest._ok("DELETE", f"/Streams/{sid}")
        replies = []
        for _ in range(50):  # the removal reaches node 1 within a few milliseconds
            replies.append(await publisher.request("stream_publish", sid=sid, data={"n": 2}))
            if "error" in replies[-1]:
                break
            await asyncio.sleep(0.02)
        assert replies[-1].get("error", {}).get("code") == 54250, replies
    finally:
        await publisher.close()
        await rest.aclose()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--storage", "postgres"], "--storage postgres needs --database-url"),
        (["--broker", "redis", "--redis-url", "redis://127.0.0.1:1"], "use it with --storage"),
        (["--broker", "redis"], "--broker redis needs --redis-url"),
        (
            ["--storage", "postgres", "--database-url", "postgresql://u:secret@127.0.0.1:1/x"],
            "cannot use PostgreSQL at postgresql://u:***@127.0.0.1:1/x",
        ),
    ],
)
def test_serve_explains_what_is_missing(tmp_path: Path, flags: list[str], message: str) -> None:
    done = _serve(tmp_path, flags)
    assert done.returncode != 0
    assert message in done.stderr
    assert ":secret@" not in done.stderr + done.stdout  # no database password in logs


def test_serve_rejects_a_typo_in_the_storage_variable(tmp_path: Path) -> None:
    # argparse checks the choices of flags given, not of defaults taken from the environment
    done = _serve(tmp_path, [], SYNC_STORAGE="postgress")
    assert done.returncode != 0
    assert "storage must be sqlite or postgres, got 'postgress'" in done.stderr


@pytest.mark.parametrize("value", ["abc", "-3", "1.5", "１０"])
def test_serve_names_a_bad_number_in_the_environment(tmp_path: Path, value: str) -> None:
    done = _serve(tmp_path, [], SYNC_DATABASE_POOL_SIZE=value)
    assert done.returncode != 0
    assert f"SYNC_DATABASE_POOL_SIZE={value!r} is not a whole number" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-subscriptions", "0"], "argument --max-subscriptions: 0 is not above 0"),
        (["--write-rate", "-1"], "argument --write-rate: '-1' is not 0 or more"),
        (["--heartbeat-interval", "nan"], "argument --heartbeat-interval: 'nan' is not above 0"),
        (["--drain-timeout", "soon"], "argument --drain-timeout: 'soon' is not a number"),
    ],
)
def test_serve_names_a_bad_flag_value(tmp_path: Path, flags: list[str], message: str) -> None:
    done = _serve(tmp_path, flags)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_serve_names_a_bad_drain_timeout_in_the_environment(tmp_path: Path) -> None:
    done = _serve(tmp_path, [], SYNC_DRAIN_TIMEOUT="-1")
    assert (
        done.returncode != 0 and "SYNC_DRAIN_TIMEOUT='-1' is not a number of seconds" in done.stderr
    )


def test_serve_takes_the_clients_word_for_warning() -> None:
    from sync_server.cli import build_parser

    for given, taken in (("warn", "warning"), ("warning", "warning"), ("debug", "debug")):
        assert build_parser().parse_args(["serve", "--log-level", given]).log_level == taken
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--log-level", "chatty"])


def _serve(tmp_path: Path, flags: list[str], **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")} | env_vars
    serve = [sys.executable, "-m", "sync_server", "serve", "--port", "0"]
    return subprocess.run(
        [*serve, "--data-dir", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
