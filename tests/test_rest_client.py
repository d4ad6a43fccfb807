"""The typed REST client (`sync_sdk.rest.SyncRestClient` over the generated
`sync_generated.rest.SyncRestApi`) against a real sync-server, plus injected-transport tests.

Server tests use a service of their own (created over REST) unless they need the realtime
SDK, whose tokens from `server.client()` are for the default service."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
from sync_generated.rest import OPERATIONS, Document, SyncRestApi

from sync_sdk import (
    AuthenticationError,
    Client,
    ClientOptions,
    ConflictError,
    ConnectFailedError,
    ConnectionState,
    DocumentNotFoundError,
    DocumentRevisionMismatchError,
    DocumentUpdatedEvent,
    InvalidTtlError,
    InvalidUniqueNameError,
    ListItemNotFoundError,
    ListItemRevisionMismatchError,
    ListNotFoundError,
    MapItemAlreadyExistsError,
    MapItemNotFoundError,
    MapItemRevisionMismatchError,
    MapNotFoundError,
    NotFoundError,
    PermissionNotFoundError,
    ServerError,
    ServiceNotFoundError,
    StreamMessagePublishedEvent,
    StreamNotFoundError,
    SyncError,
)
from sync_sdk.rest import Permissions, ServiceContext, SyncRestClient, mint_access_token
from tests.conftest import ServerProcess

SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rest_client(server: ServerProcess) -> SyncRestClient:
    c = server.credentials
    assert c is not None and c.auth_token
    return SyncRestClient(c.account_sid, c.auth_token, base_url=server.url)


@pytest.fixture
async def rest(server: ServerProcess) -> AsyncIterator[SyncRestClient]:
    async with rest_client(server) as client:
        yield client


@pytest.fixture
async def service(rest: SyncRestClient) -> AsyncIterator[ServiceContext]:
    svc = await rest.services.create(friendly_name=name("rest-client-test"))
    yield rest.service(svc.sid)
    try:
        await rest.service(svc.sid).delete()
    except ServiceNotFoundError:
        pass


async def next_event(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


# ---- spec coverage ----------------------------------------------------------------------


def test_spec_covers_every_server_route() -> None:
    from sync_server.rest import RestApi

    api = RestApi(SimpleNamespace(storage=None), SimpleNamespace())  # type: ignore[arg-type]
    served = {
        (method, re.sub(r"{[^}]+}", "{}", route.path))
        for route in api.routes()
        for method in route.methods or ()
        if method != "HEAD"
    }
    described = {
        (method, re.sub(r"{[^}]+}", "{}", path))
        for method, path in OPERATIONS.values()
        if path.startswith("/v1/Services")
    }
    assert len(served) == 48  # services 5, documents 9, lists 14, maps 14, streams 6
    assert described == served
    for op_id in ("createDocument", "listListItems", "updateMapPermission", "createStreamMessage"):
        assert hasattr(SyncRestApi, re.sub(r"(?<!^)(?=[A-Z])", "_", op_id).lower()), op_id


# ---- CRUD against the server ------------------------------------------------------------


async def test_health_and_default_service(server: ServerProcess, rest: SyncRestClient) -> None:
    health = await rest.health()
    assert health.status == "ok"
    assert "service_sid" not in health.model_dump()  # nothing that identifies the deployment
    assert server.credentials is not None
    default = await rest.service(server.credentials.service_sid).fetch()
    assert default.sid == server.credentials.service_sid
    assert default.account_sid == server.credentials.account_sid


async def test_services_crud(rest: SyncRestClient) -> None:
    unique = name("svc")
    created = await rest.services.create(
        friendly_name="before",
        unique_name=unique,
        acl_enabled=True,
        reachability_debouncing_window=2000,
    )
    assert SID.fullmatch(created.sid) and created.sid.startswith("IS")
    assert (created.friendly_name, created.unique_name) == ("before", unique)
    assert created.acl_enabled is True and created.reachability_debouncing_window == 2000
    assert created.links["documents"].endswith(f"/v1/Services/{created.sid}/Documents")

    by_name = await rest.service(unique).fetch()
    assert by_name.sid == created.sid

    updated = await rest.service(created.sid).update(friendly_name="after", acl_enabled=False)
    assert (updated.friendly_name, updated.acl_enabled) == ("after", False)
    assert updated.reachability_debouncing_window == 2000  # untouched
    assert created.sid in {s.sid for s in await rest.services.list()}

    await rest.service(created.sid).delete()
    with pytest.raises(ServiceNotFoundError) as info:
        await rest.service(created.sid).fetch()
    assert (info.value.code, info.value.status) == (54050, 404)


async def test_documents_crud_and_if_match(service: ServiceContext) -> None:
    unique = name("doc")
    doc = await service.documents.create(unique_name=unique, data={"theme": "dark", "n": 1})
    assert doc.sid.startswith("ET") and doc.unique_name == unique
    assert doc.data == {"theme": "dark", "n": 1}
    assert doc.service_sid == service.sid and doc.date_expires is None
    assert doc.created_by == "system"

    fetched = await service.documents(unique).fetch()
    assert (fetched.sid, fetched.revision, fetched.data) == (doc.sid, doc.revision, doc.data)

    updated = await service.documents(doc.sid).update({"theme": "light"}, if_match=doc.revision)
    assert updated.data == {"theme": "light"}  # replaced, not merged
    assert updated.revision != doc.revision

    with pytest.raises(DocumentRevisionMismatchError) as info:
        await service.documents(doc.sid).update({"theme": "stale"}, if_match=doc.revision)
    assert (info.value.code, info.value.status) == (54103, 412)
    assert isinstance(info.value, ConflictError)
    assert (await service.documents(doc.sid).fetch()).data == {"theme": "light"}

    expiring = await service.documents(doc.sid).update(ttl=3600)
    assert expiring.date_expires is not None and expiring.data == {"theme": "light"}

    empty = await service.documents.create()
    assert empty.data == {} and empty.unique_name is None
    assert {d.sid for d in await service.documents.list()} == {doc.sid, empty.sid}

    await service.documents(doc.sid).delete()
    with pytest.raises(DocumentNotFoundError):
        await service.documents(unique).fetch()


async def test_fetch_missing_document_raises_typed_error(service: ServiceContext) -> None:
    with pytest.raises(DocumentNotFoundError) as info:
        await service.documents("no-such-document").fetch()
    err = info.value
    assert isinstance(err, NotFoundError) and isinstance(err, SyncError)
    assert (err.code, err.status) == (54100, 404)
    assert "no-such-document" in err.message


async def test_lists_and_items_crud(service: ServiceContext) -> None:
    unique = name("list")
    lst = await service.lists.create(unique_name=unique)
    assert lst.sid.startswith("ES") and lst.unique_name == unique and lst.date_expires is None
    items = service.lists(unique).items
    first = await items.create({"title": "a"})
    second = await items.create({"title": "b"}, ttl=600)
    assert (first.index, first.list_sid) == (0, lst.sid)
    assert second.index == 1 and second.date_expires is not None and first.date_expires is None

    assert (await items(1).fetch()).data == {"title": "b"}
    changed = await items(0).update({"title": "A"}, if_match=first.revision)
    assert changed.data == {"title": "A"} and changed.revision != first.revision
    with pytest.raises(ListItemRevisionMismatchError) as info:
        await items(0).update({"title": "stale"}, if_match=first.revision)
    assert (info.value.code, info.value.status) == (54155, 412)
    with pytest.raises(ListItemRevisionMismatchError):
        await items(0).delete(if_match=first.revision)

    await items(0).delete(if_match=changed.revision)
    with pytest.raises(ListItemNotFoundError) as missing:
        await items(0).fetch()
    assert missing.value.code == 54151
    third = await items.create({"title": "c"})
    assert third.index == 2  # indexes are never reused
    assert [i.index for i in await items.list()] == [1, 2]

    with_ttl = await service.lists(lst.sid).update(ttl=120)
    assert with_ttl.date_expires is not None
    assert lst.sid in {x.sid for x in await service.lists.list()}
    await service.lists(lst.sid).delete()
    with pytest.raises(ListNotFoundError) as gone:
        await service.lists(unique).fetch()
    assert gone.value.code == 54150


async def test_maps_and_items_crud(service: ServiceContext) -> None:
    mp = await service.maps.create(unique_name=name("map"))
    assert mp.sid.startswith("MP")
    items = service.maps(mp.sid).items
    alice = await items.create("alice", {"online": True})
    assert (alice.key, alice.map_sid, alice.data) == ("alice", mp.sid, {"online": True})
    with pytest.raises(MapItemAlreadyExistsError) as dup:
        await items.create("alice", {"online": False})
    assert (dup.value.code, dup.value.status) == (54208, 409)

    odd = "a/b c?d%e&f=ü#"
    created = await items.create(odd, {"odd": 1})
    assert created.key == odd
    assert (await items(odd).fetch()).data == {"odd": 1}

    changed = await items("alice").update({"online": False}, if_match=alice.revision)
    assert changed.data == {"online": False}
    with pytest.raises(MapItemRevisionMismatchError) as info:
        await items("alice").update({"online": True}, if_match=alice.revision)
    assert (info.value.code, info.value.status) == (54205, 412)

    await items.create("bob", {})
    keys = sorted(["alice", "bob", odd])  # by code point: "a/b…" < "alice" < "bob"
    assert [i.key for i in await items.list()] == keys
    assert [i.key for i in await items.list(order="desc")] == keys[::-1]
    assert [i.key for i in await items.list(from_="alice")] == ["alice", "bob"]
    assert [i.key for i in await items.list(from_="alice", bounds="exclusive")] == ["bob"]

    await items(odd).delete()
    with pytest.raises(MapItemNotFoundError):
        await items(odd).fetch()
    assert (await service.maps(mp.sid).update(ttl=30)).date_expires is not None
    await service.maps(mp.sid).delete()
    with pytest.raises(MapNotFoundError):
        await service.maps(mp.sid).fetch()


async def test_permissions_on_documents_lists_and_maps(service: ServiceContext) -> None:
    doc = await service.documents.create()
    lst = await service.lists.create()
    mp = await service.maps.create()
    targets: list[tuple[Permissions[Any, Any], str, str]] = [
        (service.documents(doc.sid).permissions, "document_sid", doc.sid),
        (service.lists(lst.sid).permissions, "list_sid", lst.sid),
        (service.maps(mp.sid).permissions, "map_sid", mp.sid),
    ]
    for permissions, sid_field, sid in targets:
        granted = await permissions("alice").update(read=True, write=False, manage=False)
        assert getattr(granted, sid_field) == sid
        assert (granted.identity, granted.read, granted.write, granted.manage) == (
            "alice",
            True,
            False,
            False,
        )
        await permissions("bob@example.com/x y").update(read=True, write=True, manage=True)
        fetched = await permissions("bob@example.com/x y").fetch()
        assert (fetched.identity, fetched.manage) == ("bob@example.com/x y", True)
        listed = await permissions.list()
        assert sorted(p.identity for p in listed) == ["alice", "bob@example.com/x y"]

        await permissions("alice").delete()
        with pytest.raises(PermissionNotFoundError) as info:
            await permissions("alice").fetch()
        assert (info.value.code, info.value.status) == (54354, 404)
        with pytest.raises(PermissionNotFoundError):
            await permissions("alice").delete()


async def test_streams_and_messages(service: ServiceContext) -> None:
    stream = await service.streams.create(unique_name=name("stream"))
    assert stream.sid.startswith("TO") and stream.links["messages"].endswith("/Messages")
    assert (await service.streams(stream.unique_name or "").fetch()).sid == stream.sid
    assert (await service.streams(stream.sid).update(ttl=60)).date_expires is not None
    message = await service.streams(stream.sid).messages.create({"text": "hi"})
    assert message.sid.startswith("TZ") and message.data == {"text": "hi"}
    assert [s.sid for s in await service.streams.list()] == [stream.sid]
    await service.streams(stream.sid).delete()
    with pytest.raises(StreamNotFoundError):
        await service.streams(stream.sid).messages.create({"text": "late"})


async def test_rest_writes_reach_realtime_subscribers(
    server: ServerProcess, rest: SyncRestClient
) -> None:
    assert server.credentials is not None
    default = rest.service(server.credentials.service_sid)
    doc_name, stream_name = name("doc"), name("stream")
    await default.documents.create(unique_name=doc_name, data={"v": 0})
    await default.streams.create(unique_name=stream_name)
    async with server.client("watcher") as client:
        doc = await client.document(doc_name, mode="open_existing")
        stream = await client.stream(stream_name, mode="open_existing")
        updates: asyncio.Queue[DocumentUpdatedEvent[Any]] = asyncio.Queue()
        messages: asyncio.Queue[StreamMessagePublishedEvent[Any]] = asyncio.Queue()
        doc.on("updated", updates.put_nowait)
        stream.on("message_published", messages.put_nowait)

        written = await default.documents(doc_name).update({"v": 1})
        event = await next_event(updates)
        assert (event.data, event.is_local, event.revision) == ({"v": 1}, False, written.revision)

        sent = await default.streams(stream_name).messages.create({"text": "from rest"})
        got = await next_event(messages)
        assert (got.message.sid, got.message.data) == (sent.sid, {"text": "from rest"})


# ---- paging -----------------------------------------------------------------------------


async def test_list_items_iterator_visits_every_item_once(service: ServiceContext) -> None:
    lst = await service.lists.create()
    items = service.lists(lst.sid).items
    created = [(await items.create({"n": n})).index for n in range(23)]

    seen = [item.index async for item in items.iter(page_size=5)]
    assert seen == created
    assert [item.data["n"] async for item in items.iter(page_size=5, order="desc")] == list(
        range(22, -1, -1)
    )
    assert [item.index async for item in items.iter(page_size=4, limit=7)] == created[:7]
    assert [i.index for i in await items.list(from_=20)] == created[20:]
    assert [i.index for i in await items.list(from_=20, bounds="exclusive")] == created[21:]

    # Page by page: 5 + 5 + 5 + 5 + 3, following next_page_url.
    sizes: list[int] = []
    page = await items.page(page_size=5)
    assert page.meta.page == 0 and page.meta.page_size == 5 and page.meta.key == "items"
    while True:
        sizes.append(len(page.items))
        following = await items.next_page(page)
        if following is None:
            assert page.meta.next_page_url is None
            break
        assert page.meta.next_page_url is not None and following.meta.page == page.meta.page + 1
        page = following
    assert sizes == [5, 5, 5, 5, 3]


async def test_map_documents_and_services_iterators(
    rest: SyncRestClient, service: ServiceContext
) -> None:
    mp = await service.maps.create()
    keys = [f"k{n:02d}" for n in range(12)]
    for key in reversed(keys):
        await service.maps(mp.sid).items.create(key, {"key": key})
    seen = [item.key async for item in service.maps(mp.sid).items.iter(page_size=5)]
    assert seen == keys

    docs = {(await service.documents.create(data={"n": n})).sid for n in range(7)}
    listed = [d.sid async for d in service.documents.iter(page_size=3)]
    assert len(listed) == 7 and set(listed) == docs
    assert len(await service.documents.list(page_size=2, limit=5)) == 5

    identities = [f"user{n}" for n in range(5)]
    permissions = service.maps(mp.sid).permissions
    for identity in identities:
        await permissions(identity).update(read=True, write=False, manage=False)
    assert [p.identity async for p in permissions.iter(page_size=2)] == identities

    services = [s.sid async for s in rest.services.iter(page_size=2)]
    assert len(services) == len(set(services)) and service.sid in services


# ---- auth and errors --------------------------------------------------------------------


async def test_api_key_auth_and_bad_credentials(server: ServerProcess) -> None:
    c = server.credentials
    assert c is not None
    async with SyncRestClient(
        c.account_sid, api_key=c.api_key_sid, api_secret=c.api_secret, base_url=server.url
    ) as by_key:
        assert (await by_key.service(c.service_sid).fetch()).sid == c.service_sid
    async with SyncRestClient(c.account_sid, "wrong-token", base_url=server.url) as bad:
        with pytest.raises(AuthenticationError) as info:
            await bad.services.list()
        assert (info.value.code, info.value.status) == (20003, 401)
        assert (await bad.health()).status == "ok"  # /healthz needs no credentials
        ready = await bad.readiness()  # nor does /readyz
        assert ready.status == "ready" and ready.storage.ok
        assert (ready.storage.kind, ready.broker.kind) == (
            ("sqlite", "local") if server.backend == "embedded" else ("postgres", "redis")
        )
        assert ready.broker.connected
    with pytest.raises(ValueError):
        SyncRestClient(c.account_sid)
    with pytest.raises(ValueError):
        SyncRestClient(c.account_sid, api_key=c.api_key_sid)


async def test_invalid_input_errors(service: ServiceContext) -> None:
    with pytest.raises(InvalidTtlError) as ttl:
        await service.documents.create(ttl=-1)
    assert (ttl.value.code, ttl.value.status) == (54011, 400)
    with pytest.raises(InvalidUniqueNameError) as unique:
        await service.documents.create(unique_name="x" * 321)
    assert unique.value.code == 54302


async def test_unreachable_server_raises_connect_failed() -> None:
    async with SyncRestClient("AC" + "0" * 32, "t", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(ConnectFailedError) as info:
            await client.services.list()
    assert info.value.code == 51013


# ---- access tokens ----------------------------------------------------------------------


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(segment: str) -> dict[str, Any]:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        assert isinstance(value, dict)
        return value

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


async def test_minted_token_connects_realtime_client(
    server: ServerProcess, rest: SyncRestClient, service: ServiceContext
) -> None:
    c = server.credentials
    assert c is not None
    token = mint_access_token(
        c.account_sid, c.api_key_sid, c.api_secret, service.sid, "minted-user", ttl=600
    )
    header, claims = _segments(token)
    assert header == {"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}
    assert claims["grants"] == {
        "data_sync": {"service_sid": service.sid},
        "identity": "minted-user",
    }
    assert (claims["iss"], claims["sub"], claims["exp"] - claims["nbf"]) == (
        c.api_key_sid,
        c.account_sid,
        600,
    )

    doc_name = name("doc")
    async with Client(token, ClientOptions(url=server.url, log_level="warn")) as client:
        assert client.connection_state is ConnectionState.CONNECTED
        assert client.identity == "minted-user"
        doc = await client.document(doc_name)
        await doc.set({"written": "realtime"})
    # The realtime write landed in the token's service, attributed to its identity.
    fetched = await service.documents(doc_name).fetch()
    assert fetched.data == {"written": "realtime"} and fetched.created_by == "minted-user"


async def test_token_with_wrong_secret_is_denied(server: ServerProcess) -> None:
    c = server.credentials
    assert c is not None
    token = mint_access_token(c.account_sid, c.api_key_sid, "not-the-secret", c.service_sid, "eve")
    client = Client(token, ClientOptions(url=server.url, log_level="silent"))
    with pytest.raises(SyncError):
        async with client:
            pass
    assert client.connection_state is not ConnectionState.CONNECTED


def test_token_is_byte_identical_to_twilio_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    access_token = pytest.importorskip("twilio.jwt.access_token")
    grants = pytest.importorskip("twilio.jwt.access_token.grants")
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.25)
    args = (
        "AC" + "1" * 32,
        "SK" + "2" * 32,
        "s3cr3t-ü-long-enough-for-hs256-0123456789",
        "IS" + "3" * 32,
    )
    twilio = access_token.AccessToken(args[0], args[1], args[2], identity="alice", ttl=900)
    twilio.add_grant(grants.SyncGrant(service_sid=args[3]))
    ours = mint_access_token(*args, "alice", ttl=900)
    assert ours == twilio.to_jwt()
    with pytest.raises(ValueError):
        mint_access_token(*args, "")
    with pytest.raises(ValueError):
        mint_access_token(*args, "alice", ttl=0)


# ---- injected transport -----------------------------------------------------------------


def _document_json(sid: str, data: dict[str, Any], revision: str = "8") -> dict[str, Any]:
    base = "http://mock/v1/Services/IS" + "a" * 32
    return {
        "sid": sid,
        "unique_name": "doc/1",
        "account_sid": "AC" + "b" * 32,
        "service_sid": "IS" + "a" * 32,
        "url": f"{base}/Documents/{sid}",
        "revision": revision,
        "data": data,
        "links": {"permissions": f"{base}/Documents/{sid}/Permissions"},
        "date_expires": None,
        "date_created": "2024-05-01T12:00:00Z",
        "date_updated": "2024-05-01T12:00:01Z",
        "created_by": "system",
    }


async def test_mock_transport_is_injectable() -> None:
    requests: list[httpx.Request] = []
    doc_sid = "ET" + "c" * 32

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        return httpx.Response(200, json=_document_json(doc_sid, json.loads(form["Data"])))

    async with SyncRestClient(
        "AC" + "b" * 32,
        "tok",
        base_url="http://mock",
        transport=httpx.MockTransport(handler),
    ) as client:
        doc = (
            await client.service("IS" + "a" * 32)
            .documents("doc/1")
            .update({"a": [1, "ü"]}, ttl=60, if_match="7")
        )

    assert isinstance(doc, Document)
    assert (doc.sid, doc.data, doc.revision) == (doc_sid, {"a": [1, "ü"]}, "8")
    assert doc.date_updated.tzinfo is not None
    [request] = requests
    assert request.method == "POST"
    assert request.url.host == "mock"
    assert request.url.raw_path == f"/v1/Services/IS{'a' * 32}/Documents/doc%2F1".encode()
    assert unquote(request.url.raw_path.decode().rsplit("/", 1)[-1]) == "doc/1"
    assert request.headers["If-Match"] == "7"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"AC{'b' * 32}:tok".encode()
    ).decode("ascii")
    assert parse_qs(request.content.decode()) == {"Data": ['{"a":[1,"ü"]}'], "Ttl": ["60"]}


async def test_mock_transport_resource_arguments_reach_the_wire() -> None:
    """The generated resource classes send each argument as its spec says: `ttl` of an item
    as ItemTtl, `key`/`data` positionally, path ids percent-encoded, If-Match as a header."""
    sent: list[tuple[str, str, dict[str, list[str]], str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        sent.append(
            (request.method, request.url.raw_path.decode(), form, request.headers.get("If-Match"))
        )
        common = {
            "account_sid": "AC" + "b" * 32,
            "service_sid": "IS" + "a" * 32,
            "url": "http://mock/x",
            "revision": "2",
            "data": {},
            "date_created": "2024-05-01T12:00:00Z",
            "date_updated": "2024-05-01T12:00:00Z",
        }
        if request.method == "DELETE":
            return httpx.Response(204)
        if "/Maps/" in request.url.path:
            return httpx.Response(200, json={**common, "key": "k", "map_sid": "MP" + "d" * 32})
        return httpx.Response(200, json={**common, "index": 3, "list_sid": "ES" + "d" * 32})

    async with SyncRestClient(
        "AC" + "b" * 32, "tok", base_url="http://mock", transport=httpx.MockTransport(handler)
    ) as client:
        svc = client.service("S")
        await svc.lists("L").items(3).update({"a": 1}, ttl=5, collection_ttl=6, if_match="1")
        await svc.maps("M").items.create("a/b", {"b": 2}, ttl=7)
        await svc.maps("M").items("a/b").delete(if_match="2")

    assert sent == [
        (
            "POST",
            "/v1/Services/S/Lists/L/Items/3",
            {"Data": ['{"a":1}'], "ItemTtl": ["5"], "CollectionTtl": ["6"]},
            "1",
        ),
        (
            "POST",
            "/v1/Services/S/Maps/M/Items",
            {"Key": ["a/b"], "Data": ['{"b":2}'], "ItemTtl": ["7"]},
            None,
        ),
        ("DELETE", "/v1/Services/S/Maps/M/Items/a%2Fb", {}, "2"),
    ]


async def test_mock_transport_errors_map_to_typed_exceptions() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/missing"):
            return httpx.Response(
                404,
                json={"code": 54100, "message": "gone", "more_info": None, "status": 404},
            )
        if request.url.path.endswith("/stale"):
            return httpx.Response(
                412, json={"code": 54103, "message": "stale", "more_info": "x", "status": 412}
            )
        if request.url.path.endswith("/boom"):
            return httpx.Response(503, text="<html>upstream unavailable</html>")
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = SyncRestApi(http, "http://mock/", auth=("AC" + "b" * 32, "tok"))
        with pytest.raises(DocumentNotFoundError) as missing:
            await api.fetch_document("ISx", "missing")
        assert (missing.value.code, missing.value.status, missing.value.message) == (
            54100,
            404,
            "gone",
        )
        with pytest.raises(DocumentRevisionMismatchError) as stale:
            await api.update_document("ISx", "stale", data={}, if_match="1")
        assert stale.value.status == 412
        with pytest.raises(ServerError) as boom:
            await api.delete_document("ISx", "boom")
        assert boom.value.status == 503 and "upstream unavailable" in boom.value.message
        with pytest.raises(ConnectFailedError):
            await api.delete_document("ISx", "other")


async def test_mock_transport_paging_follows_next_page_url_on_base_url() -> None:
    hosts: list[str] = []
    tokens: list[str | None] = []
    all_items = list(range(7))

    def item(index: int) -> dict[str, Any]:
        return {
            "index": index,
            "account_sid": "AC" + "b" * 32,
            "service_sid": "IS" + "a" * 32,
            "list_sid": "ES" + "d" * 32,
            "url": f"http://internal/v1/x/{index}",
            "revision": "1",
            "data": {"i": index},
            "date_created": "2024-05-01T12:00:00Z",
            "date_updated": "2024-05-01T12:00:00Z",
        }

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        token = request.url.params.get("PageToken")
        tokens.append(token)
        start = int(token) if token else 0
        chunk = all_items[start : start + 3]
        path = "/v1/Services/S/Lists/L/Items"
        more = start + 3 < len(all_items)
        meta = {
            "page": start // 3,
            "page_size": 3,
            "first_page_url": f"http://internal:9999{path}?PageSize=3&Page=0",
            "previous_page_url": None,
            "next_page_url": f"http://internal:9999{path}?PageSize=3&PageToken={start + 3}"
            if more
            else None,
            "url": f"http://internal:9999{path}",
            "key": "items",
        }
        return httpx.Response(200, json={"items": [item(i) for i in chunk], "meta": meta})

    async with SyncRestClient(
        "AC" + "b" * 32, "tok", base_url="http://public", transport=httpx.MockTransport(handler)
    ) as client:
        seen = [i.index async for i in client.service("S").lists("L").items.iter(page_size=3)]
    assert seen == all_items
    assert tokens == [None, "3", "6"]
    assert hosts == ["public"] * 3  # credentials never follow the server's inner host
