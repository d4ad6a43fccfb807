"""End to end: ACL (per-identity read/write/manage permissions) on a real sync-server.

Real SDK clients over WebSocket; the service settings, objects and permissions are managed
over the Twilio-compatible REST API (HTTP Basic with the API key SID + secret). Every test
gets a server of its own (`fresh_server`), so enabling the ACL never leaks into other tests.
The last test drives two nodes' services directly, to hold back what Redis would carry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_sdk import (
    Client,
    ConnectionState,
    DocumentUpdatedEvent,
    ForbiddenError,
    MapItemAddedEvent,
    SubscriptionState,
    SyncDocument,
)
from sync_server.broker import InProcessBroker
from sync_server.credentials import load_credentials
from sync_server.records import PermissionRecord, ServiceRecord
from sync_server.service import Caller, SyncService
from sync_server.storage.sqlite import SQLiteStorage
from tests.conftest import ServerProcess, next_event

COLLECTION = {"document": "Documents", "list": "Lists", "map": "Maps", "stream": "Streams"}


class Rest:
    """The REST API of the server's default service, as an administrator uses it."""

    def __init__(self, srv: ServerProcess) -> None:
        creds = srv.credentials
        assert creds is not None
        self.service_sid = creds.service_sid
        self.base = f"/v1/Services/{creds.service_sid}"
        self.http = httpx.AsyncClient(
            base_url=srv.url, auth=(creds.api_key_sid, creds.api_secret), timeout=10
        )

    async def _ok(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, self.base + path, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response

    async def update_service(self, **params: str) -> dict[str, Any]:
        response = await self._ok("POST", "", data=params)
        body: dict[str, Any] = response.json()
        return body

    async def set_acl(self, enabled: bool) -> None:
        body = await self.update_service(AclEnabled=str(enabled).lower())
        assert body["acl_enabled"] is enabled

    async def create(self, kind: str, unique_name: str, data: dict[str, Any] | None = None) -> str:
        params = {"UniqueName": unique_name}
        if data is not None:
            params["Data"] = json.dumps(data)
        response = await self._ok("POST", f"/{COLLECTION[kind]}", data=params)
        assert response.status_code == 201
        sid: str = response.json()["sid"]
        return sid

    async def fetch(self, kind: str, sid: str) -> httpx.Response:
        return await self.http.get(f"{self.base}/{COLLECTION[kind]}/{sid}")

    async def get(self, path: str) -> Any:
        return (await self._ok("GET", path)).json()

    async def items(self, kind: str, sid: str) -> list[dict[str, Any]]:
        response = await self._ok("GET", f"/{COLLECTION[kind]}/{sid}/Items")
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def set_item(self, kind: str, sid: str, key: str, data: dict[str, Any]) -> None:
        await self._ok(
            "POST", f"/{COLLECTION[kind]}/{sid}/Items", data={"Key": key, "Data": json.dumps(data)}
        )

    async def push(self, kind: str, sid: str, data: dict[str, Any]) -> None:
        await self._ok("POST", f"/{COLLECTION[kind]}/{sid}/Items", data={"Data": json.dumps(data)})

    async def grant(
        self,
        kind: str,
        sid: str,
        identity: str,
        *,
        read: bool = False,
        write: bool = False,
        manage: bool = False,
    ) -> None:
        flags = {"Read": read, "Write": write, "Manage": manage}
        response = await self._ok(
            "POST",
            f"/{COLLECTION[kind]}/{sid}/Permissions/{identity}",
            data={name: str(value).lower() for name, value in flags.items()},
        )
        body = response.json()
        assert (body["identity"], body["read"], body["write"], body["manage"]) == (
            identity,
            read,
            write,
            manage,
        )

    async def revoke(self, kind: str, sid: str, identity: str) -> None:
        response = await self._ok("DELETE", f"/{COLLECTION[kind]}/{sid}/Permissions/{identity}")
        assert response.status_code == 204

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def rest(fresh_server: ServerProcess) -> AsyncIterator[Rest]:
    api = Rest(fresh_server)
    yield api
    await api.aclose()


@pytest.fixture
async def objects(rest: Rest) -> dict[str, str]:
    """A document, a list and a map created over REST (with some content), then ACL on."""
    sids = {
        "document": await rest.create("document", "acl-doc", {"v": 0}),
        "list": await rest.create("list", "acl-list"),
        "map": await rest.create("map", "acl-map"),
    }
    await rest.push("list", sids["list"], {"n": 0})  # index 0
    await rest.set_item("map", sids["map"], "k0", {"n": 0})
    await rest.set_acl(True)
    return sids


def assert_forbidden(exc: pytest.ExceptionInfo[ForbiddenError]) -> None:
    assert exc.value.code == 54007
    assert exc.value.status == 403


async def forbidden(call: Awaitable[Any]) -> None:
    with pytest.raises(ForbiddenError) as exc:
        await call
    assert_forbidden(exc)


def state_queue(handle: Any) -> asyncio.Queue[SubscriptionState]:
    queue: asyncio.Queue[SubscriptionState] = asyncio.Queue()
    handle.on("subscription_state_changed", queue.put_nowait)
    return queue


async def open_all(client: Client, sids: dict[str, str]) -> tuple[Any, Any, Any]:
    return (
        await client.document(sids["document"], mode="open_existing"),
        await client.list(sids["list"], mode="open_existing"),
        await client.map(sids["map"], mode="open_existing"),
    )


# ---- no permission -------------------------------------------------------------------------


async def test_no_permission_denies_open_subscribe_writes_and_remove(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    async with fresh_server.client("eve") as eve:
        # Open by unique name and by SID, in every mode that finds an existing object
        # (opening subscribes, so this covers subscribe too).
        for kind, unique_name in (
            ("document", "acl-doc"),
            ("list", "acl-list"),
            ("map", "acl-map"),
        ):
            opener: Callable[..., Awaitable[Any]] = getattr(eve, kind)
            await forbidden(opener(unique_name))
            await forbidden(opener(objects[kind], mode="open_existing"))
            await forbidden(opener(unique_name, mode="open_or_create"))
        assert eve.connection_state is ConnectionState.CONNECTED

        # A permission row with every flag false is no permission either.
        for kind in ("document", "list", "map"):
            await rest.grant(kind, objects[kind], "eve")
        await forbidden(eve.document("acl-doc"))

    # Handles opened while the ACL was off lose everything once it is on: writes, item reads,
    # remove.
    await rest.set_acl(False)
    async with fresh_server.client("eve") as eve:
        doc, lst, mp = await open_all(eve, objects)
        await rest.set_acl(True)
        await forbidden(doc.set({"v": 1}))
        await forbidden(doc.update({"v": 1}))
        await forbidden(doc.set_ttl(60))
        await forbidden(doc.remove_document())
        await forbidden(lst.push({"n": 1}))
        await forbidden(lst.set(0, {"n": 1}))
        await forbidden(lst.remove(0))
        await forbidden(lst.get(0))
        await forbidden(lst.get_items())
        await forbidden(lst.remove_list())
        await forbidden(mp.set("k1", {"n": 1}))
        await forbidden(mp.update("k0", {"n": 1}))
        await forbidden(mp.remove("k0"))
        await forbidden(mp.set_item_ttl("k0", 60))
        await forbidden(mp.get("k0"))
        await forbidden(mp.remove_map())

    # Nothing was applied.
    doc_body = (await rest.fetch("document", objects["document"])).json()
    assert doc_body["data"] == {"v": 0} and doc_body["date_expires"] is None
    assert [i["data"] for i in await rest.items("list", objects["list"])] == [{"n": 0}]
    assert [(i["key"], i["data"]) for i in await rest.items("map", objects["map"])] == [
        ("k0", {"n": 0})
    ]


# ---- read only -----------------------------------------------------------------------------


async def test_read_only_identity_subscribes_and_receives_events_but_cannot_write(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    for kind in ("document", "list", "map"):
        await rest.grant(kind, objects[kind], "reader", read=True)
        await rest.grant(kind, objects[kind], "writer", read=True, write=True)
    async with fresh_server.client("reader") as reader, fresh_server.client("writer") as writer:
        doc, lst, mp = await open_all(reader, objects)
        for handle in (doc, lst, mp):
            assert handle.subscription_state is SubscriptionState.ESTABLISHED
        assert doc.data == {"v": 0}
        assert (await lst.get(0)).data == {"n": 0}
        assert (await mp.get("k0")).data == {"n": 0}
        assert [i.key for i in (await mp.get_items()).items] == ["k0"]

        doc_events: asyncio.Queue[DocumentUpdatedEvent[Any]] = asyncio.Queue()
        list_events: asyncio.Queue[Any] = asyncio.Queue()
        map_events: asyncio.Queue[MapItemAddedEvent[Any]] = asyncio.Queue()
        doc.on("updated", doc_events.put_nowait)
        lst.on("item_added", list_events.put_nowait)
        mp.on("item_added", map_events.put_nowait)

        w_doc, w_list, w_map = await open_all(writer, objects)
        await w_doc.set({"v": 1})
        await w_list.push({"n": 1})
        await w_map.set("k1", {"n": 1})
        # REST writes reach the reader too.
        await rest.set_item("map", objects["map"], "k2", {"n": 2})

        event = await next_event(doc_events)
        assert event.data == {"v": 1} and not event.is_local
        assert (await next_event(list_events)).item.data == {"n": 1}
        assert [(await next_event(map_events)).item.key for _ in range(2)] == ["k1", "k2"]

        await forbidden(doc.set({"v": 9}))
        await forbidden(doc.update({"x": 9}))
        await forbidden(doc.mutate(lambda d: {**d, "v": 9}))
        await forbidden(doc.set_ttl(60))
        await forbidden(doc.remove_document())
        await forbidden(lst.push({"n": 9}))
        await forbidden(lst.set(0, {"n": 9}))
        await forbidden(lst.update(0, {"n": 9}))
        await forbidden(lst.remove(0))
        await forbidden(lst.set_item_ttl(0, 60))
        await forbidden(mp.set("k0", {"n": 9}))
        await forbidden(mp.update("k0", {"n": 9}))
        await forbidden(mp.remove("k0"))
        await forbidden(mp.remove_map())
        # Denied writes do not disturb the subscription.
        assert doc.subscription_state is SubscriptionState.ESTABLISHED
        assert reader.connection_state is ConnectionState.CONNECTED
        assert doc.data == {"v": 1}

    assert (await rest.fetch("document", objects["document"])).json()["data"] == {"v": 1}
    assert [i["data"] for i in await rest.items("list", objects["list"])] == [{"n": 0}, {"n": 1}]
    assert [i["key"] for i in await rest.items("map", objects["map"])] == ["k0", "k1", "k2"]


# ---- write and manage ----------------------------------------------------------------------


async def test_write_allows_writes_but_removing_the_object_needs_manage(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    for kind in ("document", "list", "map"):
        await rest.grant(kind, objects[kind], "bob", read=True, write=True)
    # Write without read: no handle at all (open needs read).
    await rest.grant("document", objects["document"], "wo", write=True)
    async with fresh_server.client("bob") as bob, fresh_server.client("wo") as wo:
        await forbidden(wo.document("acl-doc"))

        doc, lst, mp = await open_all(bob, objects)
        assert await doc.set({"v": 1}) == {"v": 1}
        assert await doc.update({"w": 2}) == {"v": 1, "w": 2}
        assert await doc.mutate(lambda d: {**d, "v": d["v"] + 1}) == {"v": 2, "w": 2}
        await doc.set_ttl(3600)
        assert (await lst.push({"n": 1})).index == 1
        assert (await lst.set(0, {"n": 10})).data == {"n": 10}
        await lst.remove(1)
        assert (await mp.set("k1", {"n": 1})).key == "k1"
        assert (await mp.update("k0", {"m": 1})).data == {"n": 0, "m": 1}
        await mp.remove("k1")

        await forbidden(doc.remove_document())
        await forbidden(lst.remove_list())
        await forbidden(mp.remove_map())

        for kind in ("document", "list", "map"):
            await rest.grant(kind, objects[kind], "bob", read=True, write=True, manage=True)
        # Manage alone is enough to remove (no read/write needed) ...
        await rest.grant("map", objects["map"], "bob", manage=True)
        await doc.remove_document()
        await lst.remove_list()
        await mp.remove_map()

    body = (await rest.fetch("document", objects["document"])).json()
    assert body["code"] == 54100
    assert (await rest.fetch("list", objects["list"])).status_code == 404
    assert (await rest.fetch("map", objects["map"])).status_code == 404


async def test_sdk_cannot_create_objects_under_acl_but_streams_are_free(
    fresh_server: ServerProcess, rest: Rest
) -> None:
    await rest.set_acl(True)
    async with fresh_server.client("alice") as alice:
        await forbidden(alice.document("new-doc"))
        await forbidden(alice.document("new-doc", data={"a": 1}))
        await forbidden(alice.document())  # a random SID
        await forbidden(alice.document("new-doc-2", mode="create_new"))
        await forbidden(alice.list("new-list"))
        await forbidden(alice.map("new-map", mode="create_new"))
        # Streams are not covered by the ACL.
        stream = await alice.stream("new-stream")
        assert (await stream.publish_message({"hi": 1})).data == {"hi": 1}
        await stream.remove_stream()
    for kind, unique_name in (("document", "new-doc"), ("list", "new-list"), ("map", "new-map")):
        assert (await rest.fetch(kind, unique_name)).status_code == 404
    docs = (await rest.get("/Documents"))["documents"]
    assert docs == []


async def test_acl_disabled_allows_everything(fresh_server: ServerProcess, rest: Rest) -> None:
    service = await rest.get("")
    assert service["acl_enabled"] is False  # the default
    sid = await rest.create("map", "plain-map")
    # Permission rows exist but are ignored while the ACL is off.
    await rest.grant("map", sid, "alice")
    async with fresh_server.client("alice") as alice:
        doc = await alice.document("free-doc", data={"a": 1})
        await doc.set({"a": 2})
        await doc.remove_document()
        lst = await alice.list()
        await lst.push({"n": 1})
        await lst.remove_list()
        mp = await alice.map("plain-map")
        await mp.set("k", {"n": 1})
        assert (await mp.get("k")).data == {"n": 1}
        await mp.remove("k")
        await mp.remove_map()


# ---- live changes --------------------------------------------------------------------------


async def test_grants_take_effect_on_a_live_connection(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    async with fresh_server.client("bob") as bob:
        states: list[ConnectionState] = []
        bob.on("connection_state_changed", states.append)

        await forbidden(bob.document("acl-doc"))
        await rest.grant("document", objects["document"], "bob", read=True)
        doc = await bob.document("acl-doc")  # same connection, no reconnect
        assert doc.subscription_state is SubscriptionState.ESTABLISHED
        await forbidden(doc.set({"v": 1}))

        await rest.grant("document", objects["document"], "bob", read=True, write=True)
        assert await doc.set({"v": 1}) == {"v": 1}
        await forbidden(doc.remove_document())

        # Write taken away again: the next write is refused at once.
        await rest.grant("document", objects["document"], "bob", read=True)
        await forbidden(doc.set({"v": 2}))

        await rest.grant("document", objects["document"], "bob", read=True, manage=True)
        await doc.remove_document()

        await forbidden(bob.map("acl-map"))
        await rest.grant("map", objects["map"], "bob", read=True, write=True)
        mp = await bob.map("acl-map")
        await mp.set("k9", {"n": 9})

        assert states == []  # never reconnected
        assert bob.connection_state is ConnectionState.CONNECTED


async def _sentinel(writer_map: Any, reader_queue: asyncio.Queue[Any], key: str) -> None:
    """Write to an object the reader still reads and wait until the reader has seen it: every
    event published before it has reached the reader by then (one ordered connection)."""
    await writer_map.set(key, {"sentinel": True})
    while True:
        event = await next_event(reader_queue)
        if event.item.key == key:
            return


async def test_revoking_read_fails_the_subscription_and_stops_events(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    for kind in ("document", "list", "map"):
        await rest.grant(kind, objects[kind], "alice", read=True, write=True, manage=True)
        await rest.grant(kind, objects[kind], "bob", read=True, write=True)
    sentinel_sid = await rest.create("map", "sentinel")
    await rest.grant("map", sentinel_sid, "alice", read=True, write=True)
    await rest.grant("map", sentinel_sid, "bob", read=True)

    async with fresh_server.client("alice") as alice, fresh_server.client("bob") as bob:
        conn_states: list[ConnectionState] = []
        bob.on("connection_state_changed", conn_states.append)
        doc, lst, mp = await open_all(bob, objects)
        a_doc, a_list, a_map = await open_all(alice, objects)
        a_sentinel = await alice.map(sentinel_sid)
        b_sentinel = await bob.map(sentinel_sid)
        sentinel_events: asyncio.Queue[Any] = asyncio.Queue()
        b_sentinel.on("item_added", sentinel_events.put_nowait)
        # A second handle on the same document in bob's client: it fails too.
        doc2: SyncDocument[Any] = await bob.document("acl-doc")

        handles = {"doc": doc, "doc2": doc2, "list": lst, "map": mp}
        states = {name: state_queue(h) for name, h in handles.items()}
        received: dict[str, list[Any]] = {name: [] for name in handles}
        doc.on("updated", received["doc"].append)
        doc2.on("updated", received["doc2"].append)
        lst.on("item_added", received["list"].append)
        mp.on("item_added", received["map"].append)
        alice_doc_events: asyncio.Queue[DocumentUpdatedEvent[Any]] = asyncio.Queue()
        a_doc.on("updated", alice_doc_events.put_nowait)

        # Events flow while bob may read.
        await a_doc.set({"v": 1})
        await a_list.push({"n": 1})
        await a_map.set("k1", {"n": 1})
        await _sentinel(a_sentinel, sentinel_events, "s1")
        assert [len(received[n]) for n in handles] == [1, 1, 1, 1]

        # Revoke: the document by deleting the permission, the list and the map by updating
        # it to write-only.
        await rest.revoke("document", objects["document"], "bob")
        await rest.grant("list", objects["list"], "bob", write=True)
        await rest.grant("map", objects["map"], "bob", write=True)
        for name in handles:
            assert await next_event(states[name]) is SubscriptionState.FAILED, name
            assert handles[name].subscription_state is SubscriptionState.FAILED

        await a_doc.set({"v": 2})
        await a_list.push({"n": 2})
        await a_map.set("k2", {"n": 2})
        await rest.set_item("map", objects["map"], "k3", {"n": 3})
        await _sentinel(a_sentinel, sentinel_events, "s2")
        await asyncio.sleep(0.2)
        assert [len(received[n]) for n in handles] == [1, 1, 1, 1]
        assert all(q.empty() for q in states.values())
        assert doc.data == {"v": 1}  # no longer kept up to date

        # Write-only now: bob may still write the list and the map, but not the document.
        await lst.push({"n": 3})
        await mp.set("k4", {"n": 4})
        await forbidden(doc.set({"v": 3}))
        # A new open of the document is refused.
        await forbidden(bob.document("acl-doc"))

        # Alice, who keeps her permissions, is unaffected.
        assert a_doc.subscription_state is SubscriptionState.ESTABLISHED
        assert [(await next_event(alice_doc_events)).data for _ in range(2)] == [
            {"v": 1},
            {"v": 2},
        ]
        assert b_sentinel.subscription_state is SubscriptionState.ESTABLISHED
        assert conn_states == []  # all of it on the same connection


async def test_disabling_and_enabling_acl_takes_effect_live(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    async with fresh_server.client("bob") as bob:
        conn_states: list[ConnectionState] = []
        bob.on("connection_state_changed", conn_states.append)
        await forbidden(bob.document("acl-doc"))
        await forbidden(bob.document("fresh-doc"))

        await rest.set_acl(False)
        doc = await bob.document("acl-doc")
        assert await doc.set({"v": 1}) == {"v": 1}
        created = await bob.document("fresh-doc")  # creating is allowed again
        mp = await bob.map("acl-map")
        await mp.set("k1", {"n": 1})
        stream = await bob.stream("bob-stream")

        handles = {"doc": doc, "created": created, "map": mp}
        states = {name: state_queue(h) for name, h in handles.items()}
        stream_states = state_queue(stream)

        # On again: bob has no permission on anything, so every subscription is revoked ...
        await rest.set_acl(True)
        for name in handles:
            assert await next_event(states[name]) is SubscriptionState.FAILED, name
        # ... except the stream's: streams are not under the ACL.
        await stream.publish_message({"still": "ok"})
        assert stream_states.empty()
        assert stream.subscription_state is SubscriptionState.ESTABLISHED

        await forbidden(doc.set({"v": 2}))
        await forbidden(created.set({"x": 1}))
        await forbidden(mp.set("k2", {"n": 2}))
        await forbidden(bob.document("another-doc"))
        assert conn_states == []


async def test_opening_again_after_read_is_granted_back_resubscribes(
    fresh_server: ServerProcess, rest: Rest, objects: dict[str, str]
) -> None:
    sid = objects["document"]
    await rest.grant("document", sid, "alice", read=True, write=True)
    await rest.grant("document", sid, "bob", read=True)
    async with fresh_server.client("alice") as alice, fresh_server.client("bob") as bob:
        writer = await alice.document(sid)
        revoked = await bob.document(sid)
        states = state_queue(revoked)
        await rest.revoke("document", sid, "bob")
        assert await next_event(states) is SubscriptionState.FAILED

        await rest.grant("document", sid, "bob", read=True)
        reopened = await bob.document(sid)  # the server allows it again ...
        updates: asyncio.Queue[DocumentUpdatedEvent[Any]] = asyncio.Queue()
        reopened.on("updated", updates.put_nowait)
        await writer.set({"v": 1})
        # ... so the new handle should be live and get the update.
        assert reopened.subscription_state is SubscriptionState.ESTABLISHED
        assert (await next_event(updates, timeout=2)).data == {"v": 1}


async def test_a_refusal_is_read_again_from_storage_before_it_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nodes on one database that hear nothing from each other (an in-process broker each,
    so no invalidation crosses): a grant, or ACL switched off, on one applies on the other at
    once, although the other had cached the refusal. What allows is served from the caches."""
    storage = SQLiteStorage(tmp_path / "sync.db")
    await storage.start()
    creds = load_credentials(tmp_path, env={})
    svc_sid = creds.service_sid
    service = ServiceRecord(sid=svc_sid, account_sid=creds.account_sid, acl_enabled=True)
    await storage.put_service(service)
    brokers = [InProcessBroker(), InProcessBroker()]
    for broker in brokers:
        await broker.start()
    here, there = (SyncService(storage, broker, credentials=creds) for broker in brokers)
    system = Caller(svc_sid, "system", None, trusted=True)
    bob, carol = Caller(svc_sid, "bob", "bob-1"), Caller(svc_sid, "carol", "carol-1")
    reads: list[str] = []
    real_get_permission = storage.get_permission

    async def counted(service_sid: str, object_sid: str, identity: str) -> PermissionRecord | None:
        reads.append(identity)
        return await real_get_permission(service_sid, object_sid, identity)

    monkeypatch.setattr(storage, "get_permission", counted)
    try:
        m = await storage.create_object(
            svc_sid, "map", unique_name=None, data=None, ttl=None, created_by="system"
        )
        for caller in (bob, carol):
            with pytest.raises(ForbiddenError):
                await there.authorize(caller, m.sid, "read")

        await here.set_permission(
            system, PermissionRecord(svc_sid, m.sid, "bob", read=True, write=False, manage=False)
        )
        await there.authorize(bob, m.sid, "read")
        reads.clear()
        await there.authorize(bob, m.sid, "read")
        assert reads == []  # allowed: from the cache
        with pytest.raises(ForbiddenError):
            await there.authorize(bob, m.sid, "write")
        assert reads == ["bob"]  # a refusal: read again first

        service.acl_enabled = False
        await here.update_service(service)
        await there.authorize(carol, m.sid, "write")
    finally:
        for broker in brokers:
            await broker.close()
        await storage.close()
