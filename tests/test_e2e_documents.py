"""End to end: documents, streams, connection states, open modes, tokens, durability.

A real sync-server subprocess on 127.0.0.1 and real SDK clients over real sockets."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import SyncGrant
from websockets.asyncio.client import connect

from sync_sdk import (
    AccessError,
    Client,
    ClientOptions,
    ConnectionErrorEvent,
    ConnectionState,
    DocumentNotFoundError,
    DocumentRemovedEvent,
    DocumentUpdatedEvent,
    StreamMessagePublishedEvent,
    SyncError,
    UniqueNameExistsError,
)
from sync_server.tokens import mint_token
from tests.conftest import ServerProcess


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def next_event(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_connection_states_in_order(server: ServerProcess) -> None:
    client = server.client("alice")
    states: list[ConnectionState] = []
    client.on("connection_state_changed", states.append)
    assert client.connection_state is ConnectionState.DISCONNECTED
    async with client:
        assert client.connection_state is ConnectionState.CONNECTED
        assert states == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
        assert client.identity == "alice"
        assert client.version == Client.version
    assert client.connection_state is ConnectionState.DISCONNECTED
    assert states[-2:] == [ConnectionState.DISCONNECTING, ConnectionState.DISCONNECTED]


async def test_document_events_between_two_clients(alice: Client, bob: Client) -> None:
    doc_name = name("doc")
    writer = await alice.document(doc_name)
    observer = await bob.document(doc_name)
    assert writer.sid == observer.sid and re.fullmatch(r"ET[0-9a-f]{32}", writer.sid)
    seen: asyncio.Queue[DocumentUpdatedEvent] = asyncio.Queue()
    local: asyncio.Queue[DocumentUpdatedEvent] = asyncio.Queue()
    observer.on("updated", seen.put_nowait)
    writer.on("updated", local.put_nowait)

    await writer.set({"theme": "dark"})
    await writer.update({"lang": "en"})
    await writer.mutate(lambda cur: {**cur, "count": 1})

    events = [await next_event(seen) for _ in range(3)]
    assert [e.data for e in events] == [
        {"theme": "dark"},
        {"theme": "dark", "lang": "en"},
        {"theme": "dark", "lang": "en", "count": 1},
    ]
    assert [e.previous_data for e in events] == [
        {},
        {"theme": "dark"},
        {"theme": "dark", "lang": "en"},
    ]
    assert [e.is_local for e in events] == [False, False, False]
    assert [int(e.revision) for e in events] == [1, 2, 3]
    own = [await next_event(local) for _ in range(3)]
    assert all(e.is_local for e in own)
    assert observer.data == {"theme": "dark", "lang": "en", "count": 1}
    assert observer.revision == writer.revision == "3"

    removed: asyncio.Queue[DocumentRemovedEvent] = asyncio.Queue()
    observer.on("removed", removed.put_nowait)
    await writer.remove_document()
    ev = await next_event(removed)
    assert ev.is_local is False and ev.previous_data == {"theme": "dark", "lang": "en", "count": 1}
    with pytest.raises(DocumentNotFoundError) as info:
        await alice.document(doc_name, mode="open_existing")
    assert (info.value.code, info.value.status) == (54100, 404)


async def test_document_open_modes_and_initial_data(alice: Client, bob: Client) -> None:
    doc_name = name("modes")
    created = await alice.document(doc_name, mode="create_new", data={"v": 1})
    assert created.data == {"v": 1} and created.unique_name == doc_name
    with pytest.raises(UniqueNameExistsError) as info:
        await bob.document(doc_name, mode="create_new")
    assert (info.value.code, info.value.status) == (54301, 409)
    by_sid = await bob.document(created.sid, mode="open_existing")
    assert by_sid.data == {"v": 1} and by_sid.unique_name == doc_name
    anonymous = await alice.document()
    assert anonymous.unique_name is None and anonymous.sid.startswith("ET")
    with pytest.raises(DocumentNotFoundError):
        await alice.document(name("missing"), mode="open_existing")


async def test_stream_messages_fan_out(alice: Client, bob: Client, server: ServerProcess) -> None:
    stream_name = name("chat")
    publisher = await alice.stream(stream_name)
    subscribers = [await bob.stream(stream_name)]
    async with server.client("carol") as carol:
        subscribers.append(await carol.stream(stream_name))
        queues: list[asyncio.Queue[StreamMessagePublishedEvent]] = []
        for s in subscribers:
            q: asyncio.Queue[StreamMessagePublishedEvent] = asyncio.Queue()
            s.on("message_published", q.put_nowait)
            queues.append(q)
        sent = [await publisher.publish_message({"text": f"hi {i}"}) for i in range(5)]
        assert all(re.fullmatch(r"TZ[0-9a-f]{32}", m.sid) for m in sent)
        for q in queues:
            got = [await next_event(q) for _ in range(5)]
            assert [e.message.data["text"] for e in got] == [f"hi {i}" for i in range(5)]
            assert [e.message.sid for e in got] == [m.sid for m in sent]
            assert not any(e.is_local for e in got)
        gone: asyncio.Queue[Any] = asyncio.Queue()
        subscribers[1].on("removed", gone.put_nowait)
        await publisher.remove_stream()
        assert (await next_event(gone)).is_local is False


async def test_concurrent_mutate_loses_no_increment(server: ServerProcess) -> None:
    doc_name = name("counter")
    clients = [server.client(f"user{i}") for i in range(3)]
    for c in clients:
        await c.connect()
    try:
        docs = [await c.document(doc_name) for c in clients]

        async def bump(doc: Any, times: int) -> None:
            for _ in range(times):
                await doc.mutate(lambda cur: {"n": cur.get("n", 0) + 1})

        await asyncio.gather(*(bump(d, 15) for d in docs))
        fresh = await clients[0].document(doc_name, mode="open_existing")
        assert fresh.data == {"n": 45}
    finally:
        for c in clients:
            await c.shutdown()


async def test_mutate_cancel_keeps_data(alice: Client) -> None:
    doc = await alice.document(name("cancel"), data={"keep": True})
    result = await doc.mutate(lambda cur: None)
    assert result == {"keep": True} and doc.revision == "0"


class Order(BaseModel):
    item: str
    qty: int


async def test_typed_data_round_trip(alice: Client, bob: Client) -> None:
    map_name = name("orders")
    orders = await alice.map(map_name, data_type=Order)
    observer = await bob.map(map_name, data_type=Order)
    q: asyncio.Queue[Any] = asyncio.Queue()
    observer.on("item_added", q.put_nowait)
    item = await orders.set("o1", Order(item="tea", qty=2))
    assert isinstance(item.data, Order) and item.data.qty == 2
    ev = await next_event(q)
    assert isinstance(ev.item.data, Order) and ev.item.data == Order(item="tea", qty=2)
    raw = await bob.map(map_name)
    assert (await raw.get("o1")).data == {"item": "tea", "qty": 2}


async def test_restart_keeps_every_acknowledged_write(fresh_server: ServerProcess) -> None:
    async with fresh_server.client("alice") as c:
        doc = await c.document("persist-doc")
        await doc.set({"v": 42})
        lst = await c.list("persist-list")
        for i in range(20):
            await lst.push({"i": i})
        await lst.remove(3)
        m = await c.map("persist-map")
        for i in range(20):
            await m.set(f"k{i:02}", {"i": i})
        doc_sid = doc.sid
    fresh_server.restart()
    async with fresh_server.client("bob") as c:
        doc2 = await c.document("persist-doc", mode="open_existing")
        assert doc2.sid == doc_sid and doc2.data == {"v": 42} and doc2.revision == "1"
        lst2 = await c.list("persist-list", mode="open_existing")
        page = await lst2.get_items(page_size=100)
        assert [it.index for it in page.items] == [i for i in range(20) if i != 3]
        assert (await lst2.push({"i": 99})).index == 20  # indexes are never reused
        m2 = await c.map("persist-map", mode="open_existing")
        page2 = await m2.get_items(page_size=100)
        assert [it.key for it in page2.items] == [f"k{i:02}" for i in range(20)]


async def test_bad_tokens_are_denied_with_a_clear_error(server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    good = dict(
        account_sid=creds.account_sid,
        api_key_sid=creds.api_key_sid,
        api_secret=creds.api_secret,
        service_sid=creds.service_sid,
        identity="mallory",
    )
    # A refused token is recoverable (denied); a token for a service that does not exist is
    # a permanent failure (error, terminal).
    cases: list[tuple[str, int, str, ConnectionState]] = [
        (
            mint_token(**{**good, "api_secret": "x" * 32}),
            20107,
            "signature",
            ConnectionState.DENIED,
        ),
        (
            mint_token(**{**good, "account_sid": "AC" + "0" * 32}),
            20103,
            "account",
            ConnectionState.DENIED,
        ),
        (
            mint_token(**{**good, "service_sid": "IS" + "0" * 32}),
            54050,
            "not found",
            ConnectionState.ERROR,
        ),
        (mint_token(**good, ttl=60, now=1_000_000_000), 20104, "expired", ConnectionState.DENIED),
    ]
    for token, code, fragment, settled in cases:
        client = Client(token, ClientOptions(url=server.url, log_level="silent"))
        errors: list[ConnectionErrorEvent] = []
        states: list[ConnectionState] = []
        client.on("connection_error", errors.append)
        client.on("connection_state_changed", states.append)
        with pytest.raises(SyncError) as info:
            async with client:
                pass
        assert info.value.code == code, (code, info.value)
        assert fragment in info.value.message.lower()
        assert settled in states
        assert errors and errors[0].code == code
        assert errors[0].terminal is (settled is ConnectionState.ERROR)
        assert client.connection_state is ConnectionState.DISCONNECTED


async def test_a_token_update_cannot_change_identity_or_service(server: ServerProcess) -> None:
    """update_token must keep the identity and service (Twilio's rule): another one is refused
    with 20106 and changes nothing; the same identity is accepted."""
    creds = server.credentials
    assert creds is not None

    def token(identity: str, service_sid: str = creds.service_sid, ttl: int = 3600) -> str:
        return mint_token(
            account_sid=creds.account_sid,
            api_key_sid=creds.api_key_sid,
            api_secret=creds.api_secret,
            service_sid=service_sid,
            identity=identity,
            ttl=ttl,
        )

    url = f"ws://127.0.0.1:{server.port}/v1/realtime"
    async with connect(url, compression=None) as ws:

        async def call(id_: int, type_: str, **params: Any) -> dict[str, Any]:
            await ws.send(orjson.dumps({"id": id_, "type": type_, **params}).decode())
            reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["id"] == id_, reply
            return reply

        hello = await call(1, "hello", token=token("alice", ttl=600), client_id="c1")
        assert hello["result"]["identity"] == "alice"
        expires = hello["result"]["token_expires_at"]
        for n, bad in enumerate([token("mallory"), token("alice", "IS" + "1" * 32)], start=2):
            reply = await call(n, "update_token", token=bad)
            assert reply["error"]["code"] == 20106, reply
        renewed = await call(9, "update_token", token=token("alice", ttl=3600))
        assert renewed["result"]["identity"] == "alice"
        assert renewed["result"]["token_expires_at"] > expires + 2000
        assert "result" in await call(10, "ping")


async def test_twilio_minted_token_is_accepted(server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    token = AccessToken(
        creds.account_sid, creds.api_key_sid, creds.api_secret, identity="twilio-user", ttl=600
    )
    token.add_grant(SyncGrant(service_sid=creds.service_sid))
    jwt = token.to_jwt()
    async with Client(
        jwt if isinstance(jwt, str) else jwt.decode(), ClientOptions(url=server.url)
    ) as client:
        assert client.identity == "twilio-user"
        doc = await client.document(name("twilio"))
        await doc.set({"ok": True})
        assert doc.data == {"ok": True}


async def test_update_token_keeps_subscriptions(server: ServerProcess, bob: Client) -> None:
    doc_name = name("token-swap")
    async with server.client("alice") as alice:
        doc = await alice.document(doc_name)
        q: asyncio.Queue[DocumentUpdatedEvent] = asyncio.Queue()
        doc.on("updated", q.put_nowait)
        await alice.update_token(server.token("alice", ttl=7200))
        assert alice.connection_state is ConnectionState.CONNECTED
        other = await bob.document(doc_name)
        await other.set({"after": "swap"})
        assert (await next_event(q)).data == {"after": "swap"}
        with pytest.raises(AccessError):
            await alice.update_token(
                mint_token(
                    account_sid=server.credentials.account_sid,  # type: ignore[union-attr]
                    api_key_sid=server.credentials.api_key_sid,  # type: ignore[union-attr]
                    api_secret="wrong-secret-wrong-secret-wrong-secret",
                    service_sid="IS" + "1" * 32,
                    identity="alice",
                )
            )
        # Another identity's token is refused, and the client keeps its own.
        with pytest.raises(AccessError) as refused:
            await alice.update_token(server.token("mallory"))
        assert refused.value.code == 20106
        assert alice._token != server.token("mallory")
        assert alice.identity == "alice" and alice.connection_state is ConnectionState.CONNECTED
        await other.set({"after": "refusal"})
        assert (await next_event(q)).data == {"after": "refusal"}


async def test_unreachable_server_fails_to_connect_in_time() -> None:
    client = Client(
        "a.b.c", ClientOptions(url="http://127.0.0.1:9", connect_timeout=0.5, log_level="silent")
    )
    with pytest.raises(SyncError) as info:
        await client.connect()
    assert info.value.code == 51013
    assert client.connection_state is ConnectionState.DISCONNECTED
