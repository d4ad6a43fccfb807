"""`sync_server.webhooks` against a real HTTP receiver (Starlette on uvicorn, 127.0.0.1, random
port) that records every request and can be told to fail or to answer slowly, with the outbox
in real storage (an SQLite file; PostgreSQL for the tests of leases between nodes)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
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

from sync_server.storage.base import Storage, WebhookDelivery
from sync_server.storage.postgres import PostgresStorage
from sync_server.storage.sqlite import SQLiteStorage
from sync_server.webhooks import (
    USER_AGENT,
    WebhookDispatcher,
    backoff_delay,
    compute_signature,
    event_params,
)
from tests import services

TOKEN = "0123456789abcdef0123456789abcdef"


# -- the receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    url: str
    method: str
    headers: dict[str, str]
    form: dict[str, str]
    status: int
    arrived: float
    answered: float = 0.0


@dataclass
class Receiver:
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0  # the next N requests, whatever they are, get a 500
    # [params subset, remaining failures]: a matching request gets a 500 while remaining > 0
    fail_rules: list[list[Any]] = field(default_factory=list)
    delay: float = 0.0
    hold: asyncio.Event | None = None  # set: every request waits for it before its answer
    in_flight: int = 0
    max_in_flight: int = 0
    got_one: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_when(self, times: int, **match: str) -> None:
        self.fail_rules.append([match, times])

    def by(self, **match: str) -> list[Received]:
        return [r for r in self.requests if all(r.form.get(k) == v for k, v in match.items())]

    async def handle(self, request: Request) -> PlainTextResponse:
        arrived = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.got_one.set()
        try:
            body = (await request.body()).decode("ascii")
            form = dict(parse_qsl(body, keep_blank_values=True, strict_parsing=True))
            status = 200
            if self.fail_first > 0:
                self.fail_first -= 1
                status = 500
            else:
                for rule in self.fail_rules:
                    match, remaining = rule
                    if remaining > 0 and all(form.get(k) == v for k, v in match.items()):
                        rule[1] -= 1
                        status = 500
                        break
            record = Received(
                url=str(request.url),
                method=request.method,
                headers=dict(request.headers),
                form=form,
                status=status,
                arrived=arrived,
            )
            self.requests.append(record)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.hold is not None:
                await self.hold.wait()
            record.answered = time.monotonic()
            return PlainTextResponse("ok" if status == 200 else "boom", status_code=status)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/{path:path}", rec.handle, methods=["POST"])])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = SQLiteStorage(tmp_path / "sync.db")
    await storage.start()
    yield storage
    await storage.close()


@pytest.fixture
async def make_dispatcher(store: Storage) -> AsyncIterator[Callable[..., WebhookDispatcher]]:
    made: list[WebhookDispatcher] = []

    def make(start: bool = True, **kwargs: Any) -> WebhookDispatcher:
        kwargs.setdefault("auth_token", TOKEN)
        kwargs.setdefault("storage", store)
        kwargs.setdefault("poll_interval", 0.1)
        kwargs.setdefault("initial_backoff", 0.01)
        kwargs.setdefault("max_backoff", 0.05)
        kwargs.setdefault("timeout", 10.0)
        d = WebhookDispatcher(**kwargs)
        if start:
            d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        await d.close(drain_timeout=0)


async def idle(d: WebhookDispatcher, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        await d.wait_idle()


def seq_params(object_sid: str, seq: int) -> dict[str, str]:
    return {"EventType": "document_updated", "DocumentSid": object_sid, "Seq": str(seq)}


def seqs(requests: list[Received]) -> list[int]:
    return [int(r.form["Seq"]) for r in requests]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- signature ------------------------------------------------------------------------------


SIGNATURE_CASES: list[tuple[str, dict[str, str]]] = [
    ("https://example.com/hook", {}),
    (
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        {
            "CallSid": "CA1234567890ABCDE",
            "Caller": "+14158675309",
            "Digits": "1234",
            "From": "+14158675309",
            "To": "+18005551212",
        },
    ),
    (
        "http://127.0.0.1:8080/sync/hooks?tenant=acme&x=%20y",
        {"EventType": "document_updated", "DocumentData": '{"a":1}', "b": "", "B": "z"},
    ),
    (
        "https://example.com:8443/webhooks/sync",
        {"Identity": "zoë", "ItemData": '{"name":"Zoë ☃ 😀","n":1}', "ItemKey": "キー"},
    ),
    ("https://user:pass@hooks.example.org/a/b/?q=ünïcode", {"z": "1", "a": "2", "m": "3"}),
]


@pytest.mark.parametrize(("url", "params"), SIGNATURE_CASES)
def test_compute_signature_matches_twilio(url: str, params: dict[str, str]) -> None:
    validator = RequestValidator(TOKEN)
    signature = compute_signature(TOKEN, url, params)
    assert signature == validator.compute_signature(url, params)
    assert validator.validate(url, params, signature)
    assert not RequestValidator("another-token").validate(url, params, signature)
    if params:
        tampered = {**params, next(iter(params)): "tampered"}
        assert not validator.validate(url, tampered, signature)


# -- event params ---------------------------------------------------------------------------


def test_event_params_document() -> None:
    params = event_params(
        event_type="document_updated",
        account_sid="AC1",
        service_sid="IS1",
        object_kind="document",
        object_sid="ET1",
        unique_name="settings",
        identity="alice",
        data={"theme": "dark", "name": "Zoë"},
        revision="3",
        date_created="2024-01-01T00:00:00Z",
        date_updated="2024-01-02T00:00:00Z",
    )
    assert params == {
        "EventType": "document_updated",
        "AccountSid": "AC1",
        "ServiceSid": "IS1",
        "DocumentSid": "ET1",
        "DocumentUniqueName": "settings",
        "Identity": "alice",
        "DocumentData": '{"theme":"dark","name":"Zoë"}',
        "DocumentRevision": "3",
        "DateCreated": "2024-01-01T00:00:00Z",
        "DateUpdated": "2024-01-02T00:00:00Z",
    }
    assert json.loads(params["DocumentData"]) == {"theme": "dark", "name": "Zoë"}


def test_event_params_items_messages_and_omissions() -> None:
    common: dict[str, Any] = {"account_sid": "AC1", "service_sid": "IS1"}
    assert event_params(
        event_type="list_item_added",
        object_kind="list",
        object_sid="ES1",
        unique_name=None,
        identity=None,
        data={"x": [1, 2]},
        item_index=0,
        revision="0",
        **common,
    ) == {
        "EventType": "list_item_added",
        "AccountSid": "AC1",
        "ServiceSid": "IS1",
        "ListSid": "ES1",
        "ItemData": '{"x":[1,2]}',
        "ItemIndex": "0",
        "ItemRevision": "0",
    }
    assert event_params(
        event_type="map_item_removed",
        object_kind="map",
        object_sid="MP1",
        unique_name="users",
        identity="bob",
        item_key="k1",
        **common,
    ) == {
        "EventType": "map_item_removed",
        "AccountSid": "AC1",
        "ServiceSid": "IS1",
        "MapSid": "MP1",
        "MapUniqueName": "users",
        "Identity": "bob",
        "ItemKey": "k1",
    }
    assert event_params(
        event_type="stream_message_published",
        object_kind="stream",
        object_sid="TO1",
        unique_name="chat",
        identity=None,
        data={"text": "hi"},
        **common,
    ) == {
        "EventType": "stream_message_published",
        "AccountSid": "AC1",
        "ServiceSid": "IS1",
        "StreamSid": "TO1",
        "StreamUniqueName": "chat",
        "MessageData": '{"text":"hi"}',
    }
    assert event_params(
        event_type="list_removed",
        object_kind="list",
        object_sid="ES1",
        unique_name=None,
        identity=None,
        **common,
    ) == {"EventType": "list_removed", "AccountSid": "AC1", "ServiceSid": "IS1", "ListSid": "ES1"}


@pytest.mark.parametrize(
    "bad",
    [
        {"object_kind": "queue", "event_type": "queue_created"},
        {"object_kind": "map", "event_type": "list_item_added"},
        {"object_kind": "map", "event_type": "map_item_added", "item_index": 1},
        {"object_kind": "list", "event_type": "list_item_added", "item_key": "k"},
        {"object_kind": "stream", "event_type": "stream_created", "revision": "1"},
    ],
)
def test_event_params_rejects_inconsistent_arguments(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        event_params(
            account_sid="AC1",
            service_sid="IS1",
            object_sid="XX1",
            unique_name=None,
            identity=None,
            **bad,
        )


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    rng = random.Random(7)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 30.0), (500, 30.0)]:
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(base / 2 <= d <= base for d in delays)
        assert len(set(delays)) > 100  # jittered


# -- delivery -------------------------------------------------------------------------------


async def test_delivery_has_form_params_and_a_valid_signature(
    receiver: Receiver, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    d = make_dispatcher()
    url = receiver.url("/hooks/sync?tenant=acme&x=1")
    params = event_params(
        event_type="map_item_updated",
        account_sid="AC" + "0" * 32,
        service_sid="IS" + "1" * 32,
        object_kind="map",
        object_sid="MP" + "2" * 32,
        unique_name="prefs",
        identity="zoë",
        data={"greeting": "héllo ☃ 😀", "n": 1, "ok": True},
        item_key="clé",
        revision="7",
        date_updated="2024-05-01T12:00:00Z",
    )
    await d.enqueue(url, params["MapSid"], params)
    await d.enqueue(url, params["MapSid"], {**params, "ItemRevision": "8"})
    await idle(d)

    assert d.delivered == 2 and d.failed == 0 and d.retried == 0 and d.pending == 0
    first, second = receiver.requests
    assert first.method == "POST"
    assert first.url == url
    assert first.form == params
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.headers["user-agent"] == USER_AGENT
    signature = first.headers["x-twilio-signature"]
    assert RequestValidator(TOKEN).validate(first.url, first.form, signature)
    assert not RequestValidator("wrong-token").validate(first.url, first.form, signature)
    assert RequestValidator(TOKEN).validate(
        second.url, second.form, second.headers["x-twilio-signature"]
    )
    assert second.form["ItemRevision"] == "8"
    tokens = {r.headers["i-twilio-idempotency-token"] for r in receiver.requests}
    assert len(tokens) == 2


async def test_per_object_order_under_retries_without_blocking_other_objects(
    receiver: Receiver, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    d = make_dispatcher(initial_backoff=0.2, max_backoff=1.0)
    receiver.fail_when(2, DocumentSid="ETa", Seq="0")
    for i in range(5):
        await d.enqueue(receiver.url(), "ETa", seq_params("ETa", i))
        await d.enqueue(receiver.url(), "ETb", seq_params("ETb", i))
    await idle(d)

    a, b = receiver.by(DocumentSid="ETa"), receiver.by(DocumentSid="ETb")
    # Every request for ETa, failed ones included: ETa1 was not sent before ETa0 succeeded.
    assert seqs(a) == [0, 0, 0, 1, 2, 3, 4]
    assert [r.status for r in a] == [500, 500] + [200] * 5
    assert seqs(b) == [0, 1, 2, 3, 4]
    assert all(r.status == 200 for r in b)
    # The three attempts of ETa0 are one delivery: one idempotency token.
    assert len({r.headers["i-twilio-idempotency-token"] for r in a[:3]}) == 1
    # ETb was not held up by ETa's retries.
    assert max(r.arrived for r in b) < a[2].arrived
    assert (d.delivered, d.failed, d.retried, d.dropped) == (10, 0, 2, 0)


async def test_enqueue_returns_without_waiting_for_the_receiver(
    receiver: Receiver, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    # The receiver answers nothing until released: enqueue returning at all shows it does not
    # wait for the receiver (100 storage writes, no network).
    receiver.hold = asyncio.Event()
    # A generous timeout: a request timed out on a loaded machine is retried (a duplicate).
    d = make_dispatcher(max_concurrency=32, timeout=30.0)
    async with asyncio.timeout(20):
        for i in range(100):
            await d.enqueue(receiver.url(), f"ET{i}", seq_params(f"ET{i}", 0))
        await receiver.got_one.wait()
    await asyncio.sleep(0.02)
    assert receiver.in_flight > 0  # now requests are in flight at the held receiver
    async with asyncio.timeout(20):
        for i in range(100):
            await d.enqueue(receiver.url(), f"ET{i}", seq_params(f"ET{i}", 1))
    assert d.delivered == 0 and not any(r.answered for r in receiver.requests)

    receiver.hold.set()
    await idle(d, timeout=60)
    assert d.delivered == 200
    assert 1 < receiver.max_in_flight <= 32
    for i in range(100):
        assert seqs(receiver.by(DocumentSid=f"ET{i}")) == [0, 1]


async def test_retries_stop_after_max_attempts_and_the_next_one_goes_out(
    receiver: Receiver,
    make_dispatcher: Callable[..., WebhookDispatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = make_dispatcher(max_attempts=3)
    receiver.fail_when(1_000, DocumentSid="ETx", Seq="0")
    with caplog.at_level(logging.WARNING, logger="sync_server.webhooks"):
        await d.enqueue(receiver.url(), "ETx", seq_params("ETx", 0))
        await d.enqueue(receiver.url(), "ETx", seq_params("ETx", 1))
        await idle(d)
    assert seqs(receiver.requests) == [0, 0, 0, 1]
    assert (d.delivered, d.failed, d.retried) == (1, 1, 2)
    assert any(
        "giving up" in r.getMessage() and "HTTP 500" in r.getMessage() for r in caplog.records
    )


async def test_connection_errors_and_timeouts_are_retried_then_dropped(
    receiver: Receiver, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    d = make_dispatcher(max_attempts=2, timeout=0.2)
    await d.enqueue(f"http://127.0.0.1:{closed_port()}/hook", "ETc", seq_params("ETc", 0))
    receiver.delay = 1.0
    await d.enqueue(receiver.url(), "ETt", seq_params("ETt", 0))
    await idle(d)
    assert (d.delivered, d.failed, d.retried) == (0, 2, 2)
    assert len(receiver.requests) == 2  # both attempts reached the (too slow) receiver


async def test_a_url_that_cannot_work_is_not_retried(
    make_dispatcher: Callable[..., WebhookDispatcher],
) -> None:
    d = make_dispatcher(max_attempts=5, initial_backoff=1.0)
    await d.enqueue("ftp://127.0.0.1/hook", "ETf", seq_params("ETf", 0))
    await d.enqueue("not a url", "ETg", seq_params("ETg", 0))
    await idle(d, timeout=1)
    assert (d.delivered, d.failed, d.retried) == (0, 2, 0)


async def test_close_finishes_requests_in_flight_and_leaves_the_rest_for_the_next_start(
    receiver: Receiver, store: Storage, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    receiver.delay = 0.3
    d = make_dispatcher()
    for i in range(5):
        await d.enqueue(receiver.url(), "ET1", seq_params("ET1", i))
    async with asyncio.timeout(5):
        await receiver.got_one.wait()
    await d.close(drain_timeout=5)
    assert (d.delivered, d.dropped) == (1, 0)  # the request in flight was answered
    assert await store.webhook_backlog() == 4
    with pytest.raises(RuntimeError):
        d.start()

    receiver.delay = 0
    again = make_dispatcher()  # a restart: the rest goes out, in order, each once
    await idle(again)
    assert seqs(receiver.requests) == [0, 1, 2, 3, 4]
    assert len({r.headers["i-twilio-idempotency-token"] for r in receiver.requests}) == 5


async def test_close_leaves_a_request_that_does_not_fit_in_drain_timeout(
    receiver: Receiver, store: Storage, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    receiver.hold = asyncio.Event()  # the request in flight is answered only when released
    d = make_dispatcher()
    for i in range(3):
        await d.enqueue(receiver.url(), "ET1", seq_params("ET1", i))
    async with asyncio.timeout(5):
        await receiver.got_one.wait()
    async with asyncio.timeout(10):  # close does not wait for the held request
        await d.close(drain_timeout=0.1)
    assert d.delivered == 0 and await store.webhook_backlog() == 3

    receiver.hold.set()
    again = make_dispatcher()
    await idle(again)
    # The abandoned request is sent again with its token: the receiver can tell.
    assert seqs(receiver.requests) == [0, 0, 1, 2]
    tokens = [r.headers["i-twilio-idempotency-token"] for r in receiver.requests]
    assert tokens[0] == tokens[1] and len(set(tokens)) == 3


async def test_attempts_survive_a_restart(
    receiver: Receiver, store: Storage, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    """The attempts made before a stop count: 3 attempts in all, 2 of them before."""
    receiver.fail_when(1_000, DocumentSid="ETr", Seq="0")
    d = make_dispatcher(max_attempts=3, initial_backoff=0.2, max_backoff=0.2)
    await d.enqueue(receiver.url(), "ETr", seq_params("ETr", 0))
    await d.enqueue(receiver.url(), "ETr", seq_params("ETr", 1))
    await wait_for(lambda: len(receiver.requests) == 2)
    await d.close(drain_timeout=0)
    again = make_dispatcher(max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    await idle(again)
    assert seqs(receiver.requests) == [0, 0, 0, 1]
    assert (again.failed, again.delivered) == (1, 1)


async def test_an_objects_backlog_is_bounded_oldest_dropped(
    receiver: Receiver,
    store: Storage,
    make_dispatcher: Callable[..., WebhookDispatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = make_dispatcher(start=False, max_queue_per_object=3)
    for i in range(5):
        await d.enqueue(receiver.url(), "ETo", seq_params("ETo", i))
    await d.enqueue(receiver.url(), "ETp", seq_params("ETp", 0))
    assert await store.webhook_backlog() == 6
    with caplog.at_level(logging.WARNING, logger="sync_server.webhooks"):
        d.start()  # deliveries stored before start go out now, the oldest 2 of ETo dropped
        await idle(d)
    assert seqs(receiver.by(DocumentSid="ETo")) == [2, 3, 4]
    assert (d.delivered, d.dropped) == (4, 2)
    assert sum("dropped the oldest 2" in r.getMessage() for r in caplog.records) == 1


async def test_the_whole_backlog_is_bounded(
    receiver: Receiver,
    store: Storage,
    make_dispatcher: Callable[..., WebhookDispatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many busy objects, no one delivering: past max_pending in all, new deliveries are
    not stored (counted, one warning per thousand), and the earlier ones still go out."""
    d = make_dispatcher(start=False, max_pending=50, max_queue_per_object=10)
    with caplog.at_level(logging.WARNING, logger="sync_server.webhooks"):
        stored = [
            await d.enqueue(receiver.url(), f"ET{obj:02}", seq_params(f"ET{obj:02}", i))
            for obj in range(20)
            for i in range(5)
        ]
    assert stored == [True] * 50 + [False] * 50
    assert (d.pending, d.dropped, await store.webhook_backlog()) == (50, 50, 50)
    assert sum("pending in all" in r.getMessage() for r in caplog.records) == 1
    d.start()
    await idle(d)
    assert d.delivered == 50 and d.pending == 0
    assert seqs(receiver.by(DocumentSid="ET00")) == [0, 1, 2, 3, 4]
    assert receiver.by(DocumentSid="ET10") == []  # enqueued after the bound was reached


async def test_a_caller_owned_client_is_left_open(
    receiver: Receiver, make_dispatcher: Callable[..., WebhookDispatcher]
) -> None:
    async with httpx.AsyncClient() as client:
        d = make_dispatcher(client=client)
        for i in range(10):
            await d.enqueue(receiver.url(), "ETth", seq_params("ETth", i))
        await idle(d)
        assert d.delivered == 10
        assert seqs(receiver.requests) == list(range(10))
        assert receiver.requests[0].headers["user-agent"] == USER_AGENT
        await d.close()
        assert not client.is_closed  # the caller's client is the caller's to close


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_queue_per_object": 0},
        {"max_pending": 0},
        {"max_concurrency": 0},
        {"timeout": 0},
        {"lease": 0},
    ],
)
def test_constructor_rejects_nonsense(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        WebhookDispatcher(auth_token=TOKEN, storage=SQLiteStorage(tmp_path / "x.db"), **kwargs)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


# -- leases: several nodes on one outbox -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Storage]]:
    """Two storages on one outbox: two nodes of a cluster (PostgreSQL), or, for SQLite, one
    storage twice (a server owns its file alone, and refuses a second process on it; leases
    are per owner all the same, so two dispatchers on it are two nodes to the outbox)."""
    if request.param == "postgres":
        services.require("postgres")
        url = services.create_database()
        stores: list[Storage] = [PostgresStorage(url, min_pool=1), PostgresStorage(url, min_pool=1)]
    else:
        url = ""
        only = SQLiteStorage(tmp_path / "sync.db")
        stores = [only, only]
    distinct = list({id(st): st for st in stores}.values())
    for st in distinct:
        await st.start()
    yield stores
    for st in distinct:
        await st.close()
    if url:
        services.drop_database(url)


def delivery(url: str, sid: str, seq: int) -> WebhookDelivery:
    return WebhookDelivery(object_sid=sid, url=url, params=seq_params(sid, seq))


async def test_a_delivery_leased_by_another_node_holds_back_its_object_until_the_lease_lapses(
    receiver: Receiver, shared: list[Storage]
) -> None:
    first, second = shared
    for i in range(3):
        await first.add_webhook(delivery(receiver.url(), "ETa", i))
    await first.add_webhook(delivery(receiver.url(), "ETb", 0))
    # A node that claims ETa's head and dies (it never renews the lease).
    claimed = await first.claim_webhooks("dead-node", 1.5, 1)
    assert [r.delivery.params["Seq"] for r in claimed] == ["0"]
    assert claimed[0].delivery.object_sid == "ETa"
    leased_at = time.monotonic()

    d = WebhookDispatcher(auth_token=TOKEN, storage=second, poll_interval=0.1, lease=5.0)
    d.start()
    try:
        await wait_for(lambda: len(receiver.requests) >= 1)
        await asyncio.sleep(0.5)
        # Only ETb: ETa's later deliveries wait for the head another node holds.
        assert [(r.form["DocumentSid"], r.form["Seq"]) for r in receiver.requests] == [("ETb", "0")]
        await d.wait_idle()
        assert time.monotonic() - leased_at >= 1.4  # not before the lease lapsed
        assert seqs(receiver.by(DocumentSid="ETa")) == [0, 1, 2]
        assert receiver.by(DocumentSid="ETa")[0].headers["i-twilio-idempotency-token"] == (
            claimed[0].delivery.token
        )
        assert not await first.finish_webhook(claimed[0].seq, "dead-node")  # too late
    finally:
        await d.close()


async def test_two_nodes_share_the_outbox_each_delivery_sent_once_in_order(
    receiver: Receiver, shared: list[Storage]
) -> None:
    receiver.delay = 0.005
    nodes = [
        WebhookDispatcher(auth_token=TOKEN, storage=st, poll_interval=0.05, max_claimed=4)
        for st in shared
    ]
    for node in nodes:
        node.start()
    try:
        for i in range(10):
            for obj in range(8):
                await nodes[obj % 2].enqueue(receiver.url(), f"ET{obj}", seq_params(f"ET{obj}", i))
        async with asyncio.timeout(30):
            await nodes[0].wait_idle()
            await nodes[1].wait_idle()
    finally:
        for node in nodes:
            await node.close()
    for obj in range(8):
        assert seqs(receiver.by(DocumentSid=f"ET{obj}")) == list(range(10))
    assert nodes[0].delivered + nodes[1].delivered == 80
    assert nodes[0].delivered > 0 and nodes[1].delivered > 0  # both did some
