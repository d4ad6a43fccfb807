"""End to end: Sync webhooks from a real sync-server to a real local HTTP receiver.

The receiver is a Starlette app on uvicorn (127.0.0.1, random port) running in the test's
event loop; it records every request (method, URL, headers, form parameters) and can be told
to fail or to answer slowly. The server's default service points its WebhookUrl at it over
REST; SDK clients (and REST calls) make the changes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from tests.conftest import ServerProcess

SID_PARAMS = ("DocumentSid", "ListSid", "MapSid", "StreamSid")


# ---- the receiver ----------------------------------------------------------------------------


@dataclass
class Hit:
    method: str
    url: str
    headers: dict[str, str]
    form: dict[str, str]
    status: int
    arrived: float
    answered: float = 0.0

    @property
    def event(self) -> str:
        return self.form["EventType"]

    @property
    def object_sid(self) -> str:
        return next(self.form[p] for p in SID_PARAMS if p in self.form)

    def json(self, name: str) -> Any:
        return json.loads(self.form[name])


@dataclass
class Receiver:
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    fail_first: int = 0  # the next N requests get a 500
    delay: float = 0.0  # seconds before answering each request
    jitter: float = 0.0  # plus a random 0..jitter seconds (reorders anything sent in parallel)
    hold: asyncio.Event | None = None  # set: every request waits for it before its answer

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ok(self) -> list[Hit]:
        """Requests answered 200 (what the receiver accepted), in arrival order."""
        return [h for h in self.hits if h.status == 200]

    def for_object(self, sid: str) -> list[Hit]:
        return [h for h in self.ok() if h.object_sid == sid]

    async def handle(self, request: Request) -> PlainTextResponse:
        arrived = time.monotonic()
        body = (await request.body()).decode("utf-8")
        status = 200
        if self.fail_first > 0:
            self.fail_first -= 1
            status = 500
        hit = Hit(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers),
            form=dict(parse_qsl(body, keep_blank_values=True, strict_parsing=True)),
            status=status,
            arrived=arrived,
        )
        self.hits.append(hit)
        if self.hold is not None:
            await self.hold.wait()
        if self.delay or self.jitter:
            await asyncio.sleep(self.delay + random.uniform(0, self.jitter))
        hit.answered = time.monotonic()
        return PlainTextResponse("ok" if status == 200 else "boom", status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/{path:path}", rec.handle, methods=["GET", "POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "receiver did not start"
        await asyncio.sleep(0.01)
    rec.port = server.servers[0].sockets[0].getsockname()[1]
    yield rec
    server.should_exit = True
    await task


# ---- REST and helpers --------------------------------------------------------------------------


class Rest:
    def __init__(self, srv: ServerProcess) -> None:
        creds = srv.credentials
        assert creds is not None
        self.base = f"/v1/Services/{creds.service_sid}"
        self.http = httpx.AsyncClient(
            base_url=srv.url, auth=(creds.api_key_sid, creds.api_secret), timeout=10
        )

    async def post(self, path: str, **params: str) -> dict[str, Any]:
        response = await self.http.post(self.base + path, data=params)
        assert response.is_success, f"POST {path}: {response.status_code} {response.text}"
        body: dict[str, Any] = response.json()
        return body

    async def delete(self, path: str) -> None:
        response = await self.http.delete(self.base + path)
        assert response.status_code == 204, response.text


@pytest.fixture
async def rest(fresh_server: ServerProcess) -> AsyncIterator[Rest]:
    api = Rest(fresh_server)
    yield api
    await api.http.aclose()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for webhooks"
        await asyncio.sleep(0.02)


def events(hits: list[Hit]) -> list[str]:
    return [h.event for h in hits]


def assert_one_at_a_time(receiver: Receiver, sid: str) -> None:
    """Deliveries for one object are sequential: each request (retries included) arrives only
    after the previous one was answered."""
    attempts = [h for h in receiver.hits if h.object_sid == sid]
    for before, after in itertools.pairwise(attempts):
        assert before.answered and after.arrived >= before.answered, (before.form, after.form)


def assert_signed(hit: Hit, auth_token: str) -> None:
    signature = hit.headers["x-twilio-signature"]
    assert RequestValidator(auth_token).validate(hit.url, hit.form, signature), hit
    assert not RequestValidator("0" * 32).validate(hit.url, hit.form, signature)
    tampered = {**hit.form, "EventType": "document_removed"}
    if tampered != hit.form:
        assert not RequestValidator(auth_token).validate(hit.url, tampered, signature)


# ---- SDK writes ----------------------------------------------------------------------------------


async def test_sdk_writes_are_posted_signed_in_order_per_object(
    fresh_server: ServerProcess, rest: Rest, receiver: Receiver
) -> None:
    creds = fresh_server.credentials
    assert creds is not None
    # A query string is part of the signed URL.
    hook_url = receiver.url("/sync/hooks?tenant=acme&x=1")
    service = await rest.post("", WebhookUrl=hook_url)
    assert service["webhook_url"] == hook_url
    receiver.jitter = 0.03

    async with fresh_server.client("alice") as alice:
        doc = await alice.document("wh-doc", data={"v": 0})
        await doc.set({"v": 1})
        await doc.update({"w": "zoë ☃"})
        mp = await alice.map("wh-map")
        await mp.set("k1", {"n": 1})
        await mp.set("k1", {"n": 2})
        await mp.set("k 2/é", {"n": 3})
        await mp.remove("k1")
        lst = await alice.list("wh-list")
        for n in range(3):
            await lst.push({"n": n})
        await lst.set(1, {"n": 10})
        await lst.remove(0)
        stream = await alice.stream("wh-stream")
        await stream.publish_message({"m": 1})
        await stream.publish_message({"m": 2})
        await doc.remove_document()
        expected = {
            doc.sid: [
                "document_created",
                "document_updated",
                "document_updated",
                "document_removed",
            ],
            mp.sid: [
                "map_created",
                "map_item_added",
                "map_item_updated",
                "map_item_added",
                "map_item_removed",
            ],
            lst.sid: [
                "list_created",
                "list_item_added",
                "list_item_added",
                "list_item_added",
                "list_item_updated",
                "list_item_removed",
            ],
            stream.sid: [
                "stream_created",
                "stream_message_published",
                "stream_message_published",
            ],
        }
        total = sum(len(v) for v in expected.values())
        await wait_until(lambda: len(receiver.ok()) >= total)
        await asyncio.sleep(0.2)  # nothing more arrives
        assert len(receiver.hits) == total

    for sid, sequence in expected.items():
        assert events(receiver.for_object(sid)) == sequence, sid
        assert_one_at_a_time(receiver, sid)
    # ... while different objects are delivered in parallel.
    assert any(
        a.object_sid != b.object_sid and b.arrived < a.answered
        for a, b in itertools.pairwise(receiver.hits)
    )

    tokens = set()
    for hit in receiver.hits:
        assert hit.method == "POST"
        assert hit.url == hook_url
        assert hit.headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert_signed(hit, creds.auth_token)
        tokens.add(hit.headers["i-twilio-idempotency-token"])
        assert hit.form["AccountSid"] == creds.account_sid
        assert hit.form["ServiceSid"] == creds.service_sid
        assert hit.form["Identity"] == "alice"
        assert sum(p in hit.form for p in SID_PARAMS) == 1
    assert len(tokens) == total  # one per delivery

    d = receiver.for_object(doc.sid)
    assert d[0].form["DocumentUniqueName"] == "wh-doc"
    assert [h.json("DocumentData") for h in d[:3]] == [
        {"v": 0},
        {"v": 1},
        {"v": 1, "w": "zoë ☃"},
    ]
    revisions = [int(h.form["DocumentRevision"]) for h in d[:3]]
    assert revisions == sorted(revisions) and len(set(revisions)) == 3

    m = receiver.for_object(mp.sid)
    assert m[0].form["MapUniqueName"] == "wh-map"
    assert [h.form.get("ItemKey") for h in m] == [None, "k1", "k1", "k 2/é", "k1"]
    assert [h.json("ItemData") for h in m[1:4]] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert all("ItemRevision" in h.form for h in m[1:4])

    li = receiver.for_object(lst.sid)
    assert li[0].form["ListUniqueName"] == "wh-list"
    assert [h.form.get("ItemIndex") for h in li] == [None, "0", "1", "2", "1", "0"]
    assert [h.json("ItemData") for h in li[1:5]] == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 10}]
    assert not any("ItemKey" in h.form for h in li)

    s = receiver.for_object(stream.sid)
    assert s[0].form["StreamUniqueName"] == "wh-stream"
    assert [h.json("MessageData") for h in s[1:]] == [{"m": 1}, {"m": 2}]
    assert not any("ItemRevision" in h.form or "DocumentRevision" in h.form for h in s)


async def test_rest_writes_notify_only_with_webhooks_from_rest_enabled(
    fresh_server: ServerProcess, rest: Rest, receiver: Receiver
) -> None:
    creds = fresh_server.credentials
    assert creds is not None
    service = await rest.post("", WebhookUrl=receiver.url())
    assert service["webhooks_from_rest_enabled"] is False  # the default

    async def rest_writes(tag: str) -> dict[str, str]:
        doc = await rest.post("/Documents", UniqueName=f"{tag}-doc", Data='{"v":0}')
        await rest.post(f"/Documents/{doc['sid']}", Data='{"v":1}')
        mp = await rest.post("/Maps", UniqueName=f"{tag}-map")
        await rest.post(f"/Maps/{mp['sid']}/Items", Key="k", Data='{"n":1}')
        await rest.post(f"/Maps/{mp['sid']}/Items/k", Data='{"n":2}')
        await rest.delete(f"/Maps/{mp['sid']}/Items/k")
        lst = await rest.post("/Lists", UniqueName=f"{tag}-list")
        await rest.post(f"/Lists/{lst['sid']}/Items", Data='{"n":0}')
        st = await rest.post("/Streams", UniqueName=f"{tag}-stream")
        await rest.post(f"/Streams/{st['sid']}/Messages", Data='{"m":1}')
        await rest.delete(f"/Documents/{doc['sid']}")
        return {"doc": doc["sid"], "map": mp["sid"], "list": lst["sid"], "stream": st["sid"]}

    quiet = await rest_writes("quiet")
    # An SDK write after them does notify; once it is in, the REST ones would have been too.
    async with fresh_server.client("alice") as alice:
        marker = await alice.document("marker")
        await marker.set({"after": "quiet"})
        await wait_until(lambda: len(receiver.ok()) >= 2)
        await asyncio.sleep(0.3)
        assert events(receiver.ok()) == ["document_created", "document_updated"]
        assert {h.object_sid for h in receiver.hits} == {marker.sid}
        assert not set(quiet.values()) & {h.object_sid for h in receiver.hits}

        service = await rest.post("", WebhooksFromRestEnabled="true")
        assert service["webhooks_from_rest_enabled"] is True
        loud = await rest_writes("loud")
        expected = {
            loud["doc"]: ["document_created", "document_updated", "document_removed"],
            loud["map"]: ["map_created", "map_item_added", "map_item_updated", "map_item_removed"],
            loud["list"]: ["list_created", "list_item_added"],
            loud["stream"]: ["stream_created", "stream_message_published"],
        }
        await wait_until(lambda: len(receiver.ok()) >= 2 + sum(map(len, expected.values())))
        for sid, sequence in expected.items():
            assert events(receiver.for_object(sid)) == sequence, sid
        # SDK writes still notify, with the identity.
        await marker.set({"after": "loud"})
        await wait_until(lambda: len(receiver.for_object(marker.sid)) == 3)

    for hit in receiver.hits:
        assert_signed(hit, creds.auth_token)
    doc_hits = receiver.for_object(loud["doc"])
    assert [h.json("DocumentData") for h in doc_hits[:2]] == [{"v": 0}, {"v": 1}]
    map_hits = receiver.for_object(loud["map"])
    assert [h.form.get("ItemKey") for h in map_hits] == [None, "k", "k", "k"]
    assert receiver.for_object(loud["stream"])[1].json("MessageData") == {"m": 1}
    assert receiver.for_object(marker.sid)[-1].form["Identity"] == "alice"

    # Off again (and a removed URL stops everything, SDK writes included).
    await rest.post("", WebhooksFromRestEnabled="false")
    before = len(receiver.hits)
    await rest_writes("quiet-again")
    await rest.post("", WebhookUrl="")
    async with fresh_server.client("alice") as alice:
        doc = await alice.document("after-url-removed")
        await doc.set({"v": 1})
    await asyncio.sleep(0.3)
    assert len(receiver.hits) == before


# ---- delivery ------------------------------------------------------------------------------


async def test_failing_receiver_still_gets_every_event_in_order(
    fresh_server: ServerProcess, rest: Rest, receiver: Receiver
) -> None:
    creds = fresh_server.credentials
    assert creds is not None
    await rest.post("", WebhookUrl=receiver.url())
    receiver.fail_first = 2
    async with fresh_server.client("alice") as alice:
        doc = await alice.document("retry-doc", data={"v": 0})
        for v in range(1, 6):
            await doc.set({"v": v})
        await wait_until(lambda: len(receiver.ok()) >= 6, timeout=15)

    failed = [h for h in receiver.hits if h.status == 500]
    assert len(failed) == 2
    ok = receiver.for_object(doc.sid)
    assert events(ok) == ["document_created"] + ["document_updated"] * 5
    assert [h.json("DocumentData")["v"] for h in ok] == [0, 1, 2, 3, 4, 5]
    assert_one_at_a_time(receiver, doc.sid)
    # The failed attempts were retries of a delivery that then went through (same token),
    # signed the same way.
    ok_tokens = [h.headers["i-twilio-idempotency-token"] for h in ok]
    assert len(set(ok_tokens)) == 6
    for hit in failed:
        assert hit.headers["i-twilio-idempotency-token"] in ok_tokens
        assert_signed(hit, creds.auth_token)
    # In order per object: nothing for this object was accepted before the failed one was.
    first_ok = ok_tokens.index(failed[0].headers["i-twilio-idempotency-token"])
    assert first_ok == 0


async def test_slow_receiver_does_not_slow_sdk_writes(
    fresh_server: ServerProcess, rest: Rest, receiver: Receiver
) -> None:
    await rest.post("", WebhookUrl=receiver.url())
    receiver.hold = asyncio.Event()  # the receiver answers nothing until released
    async with fresh_server.client("alice") as alice:
        doc = await alice.document("slow-doc")
        await wait_until(lambda: len(receiver.hits) >= 1, timeout=10)  # document_created, held
        async with asyncio.timeout(60):
            for v in range(100):
                await doc.set({"v": v})
        # Every write was acknowledged while the receiver held the object's first webhook
        # (they go one at a time per object): the writes do not wait for them.
        assert not any(h.answered for h in receiver.hits)
        assert len(receiver.for_object(doc.sid)) == 1
        assert doc.data == {"v": 99}
        # Released, deliveries go on, in order.
        receiver.hold.set()
        await wait_until(lambda: len(receiver.hits) >= 3, timeout=10)
    hits = receiver.for_object(doc.sid)
    assert events(hits[:3]) == ["document_created", "document_updated", "document_updated"]
    assert [h.json("DocumentData") for h in hits[1:3]] == [{"v": 0}, {"v": 1}]
    assert_one_at_a_time(receiver, doc.sid)
    # The backlog stays in the outbox; no need to let the server finish a request at teardown.
    fresh_server.stop(signal.SIGKILL)


async def test_signature_matches_the_url_called_when_it_needs_percent_encoding(
    fresh_server: ServerProcess, rest: Rest, receiver: Receiver
) -> None:
    creds = fresh_server.credentials
    assert creds is not None
    await rest.post("", WebhookUrl=receiver.url("/hook?name=a b"))
    async with fresh_server.client("alice") as alice:
        await alice.document("encoded-url-doc")
        await wait_until(lambda: len(receiver.hits) >= 1)
    hit = receiver.hits[0]
    assert hit.url == receiver.url("/hook?name=a%20b")  # what was on the wire
    assert_signed(hit, creds.auth_token)


# ---- durability: SIGKILL with deliveries pending -------------------------------------------


def metric(srv: ServerProcess, name: str) -> float:
    text = httpx.get(srv.url + "/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith(name + " "))
    return float(line.split()[1])


def by_token(hits: list[Hit]) -> list[Hit]:
    """What a receiver that drops duplicates (by idempotency token) keeps, in arrival order."""
    seen: set[str] = set()
    kept = []
    for hit in hits:
        token = hit.headers["i-twilio-idempotency-token"]
        if token not in seen:
            seen.add(token)
            kept.append(hit)
    return kept


def change(hit: Hit) -> tuple[str, Any]:
    data = next(
        (hit.json(n) for n in ("DocumentData", "ItemData", "MessageData") if n in hit.form), None
    )
    return hit.event, data


def assert_every_change_once_in_order(
    receiver: Receiver, expected: dict[str, list[tuple[str, Any]]]
) -> None:
    """Per object: every change, in order, once after de-duplication; what came twice came
    again with its token, right after itself (nothing later was sent before it)."""
    for sid, changes in expected.items():
        hits = [h for h in receiver.hits if h.object_sid == sid]
        assert [change(h) for h in by_token(hits)] == changes, sid
        positions = [changes.index(change(h)) for h in hits]
        assert positions == sorted(positions), (sid, positions)
        tokens = {}
        for h in hits:
            assert (
                tokens.setdefault(changes.index(change(h)), h.headers["i-twilio-idempotency-token"])
                == (h.headers["i-twilio-idempotency-token"])
            )
    assert len(by_token(receiver.hits)) == sum(map(len, expected.values()))


async def make_changes(srv: ServerProcess, tag: str, n: int) -> dict[str, list[tuple[str, Any]]]:
    """Writes over the SDK (they notify); what each object's webhooks must report."""
    async with srv.client("alice") as alice:
        doc = await alice.document(f"{tag}-doc", data={"v": 0})
        lst = await alice.list(f"{tag}-list")
        stream = await alice.stream(f"{tag}-stream")
        for i in range(1, n + 1):
            await doc.set({"v": i})
            await lst.push({"n": i})
            await stream.publish_message({"m": i})
    return {
        doc.sid: [("document_created", {"v": 0})]
        + [("document_updated", {"v": i}) for i in range(1, n + 1)],
        lst.sid: [("list_created", None)]
        + [("list_item_added", {"n": i}) for i in range(1, n + 1)],
        stream.sid: [("stream_created", None)]
        + [("stream_message_published", {"m": i}) for i in range(1, n + 1)],
    }


async def test_sigkill_with_deliveries_pending_then_restart_delivers_the_rest(
    backend: str, fresh_server: ServerProcess, rest: Rest, receiver: Receiver
) -> None:
    if backend != "embedded":
        pytest.skip("one SQLite node; the cluster's takeover has its own test")
    await rest.post("", WebhookUrl=receiver.url())
    receiver.delay = 0.5  # slow: most deliveries wait in the outbox, one per object in flight
    expected = await make_changes(fresh_server, "crash", 8)
    await wait_until(lambda: len(receiver.hits) >= 3)
    assert metric(fresh_server, "sync_webhook_queue") >= 20  # the outbox depth
    fresh_server.stop(signal.SIGKILL)  # requests in flight: the receiver saw them, no answer
    seen_before = len(by_token(receiver.hits))
    assert seen_before < 27

    receiver.delay = 0
    fresh_server.start()  # the same data dir
    await wait_until(lambda: len(by_token(receiver.hits)) >= 27, timeout=30)
    await asyncio.sleep(0.3)  # nothing more arrives
    assert_every_change_once_in_order(receiver, expected)
    assert len(receiver.hits) > len(by_token(receiver.hits))  # the ones in flight, again
    await wait_until(lambda: metric(fresh_server, "sync_webhook_queue") == 0, timeout=5)


async def test_cluster_node_holding_the_leases_dies_and_another_node_delivers(
    backend: str, make_server: Callable[..., ServerProcess], receiver: Receiver
) -> None:
    if backend != "cluster":
        pytest.skip("needs PostgreSQL and two nodes")
    lease = 2.0
    first = make_server(["--webhook-lease", str(lease)])
    api = Rest(first)
    try:
        await api.post("", WebhookUrl=receiver.url())
    finally:
        await api.http.aclose()
    receiver.delay = 60  # the first node's requests hang: it holds the heads' leases
    expected = await make_changes(first, "takeover", 5)
    await wait_until(lambda: len(receiver.hits) == 3)  # one in flight per object
    second = first.node(["--webhook-lease", str(lease)])
    second.start()
    try:
        await asyncio.sleep(1.5 * lease)  # leases renewed: the second node sends nothing
        assert len(receiver.hits) == 3
        receiver.delay = 0
        first.stop(signal.SIGKILL)
        killed = time.monotonic()
        await wait_until(lambda: len(by_token(receiver.hits)) >= 18, timeout=30)
        await asyncio.sleep(0.3)
        assert_every_change_once_in_order(receiver, expected)
        after = [h for h in receiver.hits if h.arrived > killed]
        assert len(after) == 18  # the 3 heads again (same tokens), then the 15 behind them
        assert min(h.arrived for h in after) - killed > 0.3 * lease  # once the leases lapsed
    finally:
        second.destroy()
