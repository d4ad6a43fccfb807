"""The blocking client (`sync_sdk.blocking`) end to end: a real sync-server subprocess and
real blocking clients over real sockets, called from plain (synchronous) test functions,
and from inside a running event loop, as a notebook would."""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import queue
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import BaseModel
from sync_generated import blocking as generated_blocking

import sync_sdk
from sync_sdk import blocking
from sync_sdk.blocking import (
    BlockingCallInHandlerError,
    Client,
    ClientClosedError,
    CollectionRemovedEvent,
    ConnectionState,
    DocumentUpdatedEvent,
    ListItemAddedEvent,
    ListItemRemovedEvent,
    MapItemAddedEvent,
    MapItemNotFoundError,
    MapItemUpdatedEvent,
    Paginator,
    StreamMessagePublishedEvent,
    SyncMap,
    TokenSignatureError,
    UniqueNameExistsError,
)
from tests.conftest import ServerProcess

TIMEOUT = 5.0


class Order(BaseModel):
    id: str
    total: int = 0


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def listen(handle: Any, event: str) -> queue.Queue[tuple[Any, str]]:
    """A thread-safe queue receiving every `event` payload of `handle`, with the name of
    the thread the handler ran on."""
    received: queue.Queue[tuple[Any, str]] = queue.Queue()
    handle.on(event, lambda e: received.put((e, threading.current_thread().name)))
    return received


def next_event(received: queue.Queue[tuple[Any, str]]) -> Any:
    event, thread = received.get(timeout=TIMEOUT)
    assert thread == "sync_sdk.blocking", f"handler ran on {thread}"
    return event


def sdk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sync_sdk.blocking"]


@pytest.fixture
def alice(server: ServerProcess) -> Iterator[Client]:
    with Client(server.token("alice"), server.options()) as client:
        yield client


@pytest.fixture
def bob(server: ServerProcess) -> Iterator[Client]:
    with Client(server.token("bob"), server.options()) as client:
        yield client


def test_the_blocking_module_exports_what_sync_sdk_does_with_blocking_classes() -> None:
    assert set(blocking.__all__) == set(sync_sdk.__all__)
    for name in generated_blocking.__all__:
        assert getattr(blocking, name) is getattr(generated_blocking, name)
        assert getattr(blocking, name) is not getattr(sync_sdk, name)
    shared = set(sync_sdk.__all__) - set(generated_blocking.__all__)
    assert all(getattr(blocking, name) is getattr(sync_sdk, name) for name in shared)


@pytest.mark.parametrize("name", ["Client", "SyncDocument", "SyncList", "SyncMap", "SyncStream"])
def test_every_public_async_method_has_a_blocking_twin(name: str) -> None:
    async_cls, blocking_cls = getattr(sync_sdk, name), getattr(blocking, name)
    public = [m for m in dir(async_cls) if not m.startswith("_")]
    assert public and all(hasattr(blocking_cls, m) for m in public), public
    for method in public:
        attr = getattr(async_cls, method)
        if inspect.iscoroutinefunction(attr):
            twin = getattr(blocking_cls, method)
            assert not inspect.iscoroutinefunction(twin), method
            assert twin.__doc__ == attr.__doc__, method
            async_params = inspect.signature(attr).parameters
            assert list(inspect.signature(twin).parameters) == list(async_params), method


def test_two_clients_round_trip_document_list_map_stream(alice: Client, bob: Client) -> None:
    assert alice.connection_state is ConnectionState.CONNECTED and alice.identity == "alice"

    # document
    doc_name = uniq("doc")
    writer, observer = alice.document(doc_name), bob.document(doc_name)
    assert writer.sid == observer.sid
    updates = listen(observer, "updated")
    assert writer.set({"theme": "dark"}) == {"theme": "dark"}
    assert writer.update({"lang": "en"}) == {"theme": "dark", "lang": "en"}
    assert writer.mutate(lambda d: {**d, "n": 1}) == {"theme": "dark", "lang": "en", "n": 1}
    seen: list[DocumentUpdatedEvent[Any]] = [next_event(updates) for _ in range(3)]
    assert [e.data for e in seen] == [
        {"theme": "dark"},
        {"theme": "dark", "lang": "en"},
        {"theme": "dark", "lang": "en", "n": 1},
    ]
    assert not any(e.is_local for e in seen)
    assert observer.data == writer.data and observer.revision == writer.revision == "3"

    # list
    list_name = uniq("tasks")
    tasks, tasks_seen = alice.list(list_name), bob.list(list_name)
    added, removed = listen(tasks_seen, "item_added"), listen(tasks_seen, "item_removed")
    items = [tasks.push({"title": f"t{i}"}) for i in range(3)]
    assert [i.index for i in items] == [0, 1, 2]
    got: list[ListItemAddedEvent[Any]] = [next_event(added) for _ in range(3)]
    assert [(e.item.index, e.item.data["title"]) for e in got] == [(0, "t0"), (1, "t1"), (2, "t2")]
    tasks.remove(1)
    gone: ListItemRemovedEvent[Any] = next_event(removed)
    assert (gone.index, gone.previous_item_data) == (1, {"title": "t1"})
    assert [i.index for i in tasks_seen.get_items().items] == [0, 2]

    # map, typed
    map_name = uniq("orders")
    orders, orders_seen = alice.map(map_name, data_type=Order), bob.map(map_name, data_type=Order)
    map_added, map_updated = listen(orders_seen, "item_added"), listen(orders_seen, "item_updated")
    orders.set("o1", Order(id="o1", total=3))
    new: MapItemAddedEvent[Order] = next_event(map_added)
    assert new.item.key == "o1" and new.item.data == Order(id="o1", total=3)
    assert (
        orders.mutate("o1", lambda o: o.model_copy(update={"total": o.total + 1})).data.total == 4
    )
    changed: MapItemUpdatedEvent[Order] = next_event(map_updated)
    assert changed.item.data.total == 4 and changed.previous_item_data == Order(id="o1", total=3)
    assert orders_seen.get("o1").data == Order(id="o1", total=4)
    with pytest.raises(MapItemNotFoundError):
        orders.get("missing")

    # stream
    stream_name = uniq("chat")
    chat, chat_seen = alice.stream(stream_name), bob.stream(stream_name)
    messages = listen(chat_seen, "message_published")
    sent = chat.publish_message({"text": "hi"})
    message: StreamMessagePublishedEvent[Any] = next_event(messages)
    assert message.message.sid == sent.sid and message.message.data == {"text": "hi"}
    assert message.is_local is False

    # removal reaches the other client
    list_removed = listen(tasks_seen, "removed")
    tasks.remove_list()
    assert isinstance(next_event(list_removed), CollectionRemovedEvent)


def test_paging_wraps_pages_in_blocking_paginators(alice: Client) -> None:
    numbers = alice.list(uniq("numbers"))
    for i in range(5):
        numbers.push({"n": i})
    page = numbers.get_items(page_size=2)
    assert isinstance(page, Paginator)
    seen = [item.data["n"] for item in page.items]
    while page.has_next_page:
        page = page.next_page()
        seen += [item.data["n"] for item in page.items]
    assert seen == [0, 1, 2, 3, 4]
    back = page.prev_page()
    assert [item.data["n"] for item in back.items] == [2, 3]


def test_one_client_serves_many_threads_at_once(alice: Client) -> None:
    """As a web server's request threads or a Celery worker's threads would use it."""
    hits = alice.list(uniq("hits"))
    counter = alice.map(uniq("counter"))

    def request(n: int) -> int:
        counter.mutate("total", lambda d: {"n": d.get("n", 0) + 1})
        return hits.push({"request": n}).index

    with ThreadPoolExecutor(max_workers=8) as pool:
        indexes = list(pool.map(request, range(40)))
    assert sorted(indexes) == list(range(40))
    assert counter.get("total").data == {"n": 40}


def _use_after_fork(client: Client, result: multiprocessing.SimpleQueue[str]) -> None:
    try:
        client.document("anything")
    except ClientClosedError as exc:
        result.put(str(exc))
    client.close()  # does not wait for a thread the child does not have
    result.put("closed")


def test_a_client_used_after_fork_raises_instead_of_hanging(alice: Client) -> None:
    """Celery's prefork pool and gunicorn fork workers: a client made before the fork has no
    thread in the child."""
    ctx = multiprocessing.get_context("fork")
    result: multiprocessing.SimpleQueue[str] = ctx.SimpleQueue()
    child = ctx.Process(target=_use_after_fork, args=(alice, result))
    child.start()
    child.join(TIMEOUT)
    assert child.exitcode == 0
    assert "created in another process, before a fork" in result.get()
    assert result.get() == "closed"
    assert alice.document(uniq("doc")).sid.startswith("ET")  # the parent's client still works


def test_errors_are_the_async_clients(alice: Client) -> None:
    name = uniq("once")
    alice.document(name, mode="create_new")
    with pytest.raises(UniqueNameExistsError) as info:
        alice.document(name, mode="create_new")
    assert (info.value.code, info.value.status) == (54301, 409)


def test_blocking_call_in_a_handler_raises_instead_of_deadlocking(alice: Client) -> None:
    orders: SyncMap[dict[str, Any]] = alice.map(uniq("orders"))
    outcome: queue.Queue[BaseException | object] = queue.Queue()

    def handler(e: MapItemAddedEvent[dict[str, Any]]) -> None:
        try:
            outcome.put(orders.get(e.item.key))  # would wait for this very thread
        except BaseException as exc:
            outcome.put(exc)

    orders.on("item_added", handler)
    orders.set("k", {"v": 1})
    err = outcome.get(timeout=TIMEOUT)
    assert isinstance(err, BlockingCallInHandlerError)
    assert "SyncMap.get() was called on the client's own event-loop thread" in str(err)
    assert (err.code, err.status) == (51014, 500)

    # a mutate callback runs there too: the error reaches the caller
    with pytest.raises(BlockingCallInHandlerError):
        orders.mutate("k", lambda d: {**d, "seen": orders.get("k").data})
    assert orders.get("k").data == {"v": 1}  # the client still works

    # close() there too (it would join the thread it runs on)
    def close_in_handler(e: MapItemUpdatedEvent[dict[str, Any]]) -> None:
        try:
            alice.close()
        except BaseException as exc:
            outcome.put(exc)

    orders.on("item_updated", close_in_handler)
    orders.set("k", {"v": 2})
    assert isinstance(outcome.get(timeout=TIMEOUT), BlockingCallInHandlerError)
    assert not alice.closed and orders.get("k").data == {"v": 2}


def test_close_shuts_down_and_joins_the_thread(server: ServerProcess) -> None:
    before = len(sdk_threads())
    states: list[ConnectionState] = []
    with Client(server.token("alice"), server.options()) as client:
        client.on("connection_state_changed", states.append)
        doc = client.document(uniq("doc"))
        assert len(sdk_threads()) == before + 1
    assert client.closed and client.connection_state is ConnectionState.DISCONNECTED
    assert states[-2:] == [ConnectionState.DISCONNECTING, ConnectionState.DISCONNECTED]
    assert len(sdk_threads()) == before
    with pytest.raises(ClientClosedError):
        client.document(uniq("doc"))
    with pytest.raises(ClientClosedError):
        doc.set({"a": 1})
    client.close()  # repeatable


def test_a_failed_enter_closes_the_client(server: ServerProcess) -> None:
    before = len(sdk_threads())
    head, claims, signature = server.token("alice").split(".")
    client = Client(f"{head}.{claims}.{signature[::-1]}", server.options())
    with pytest.raises(TokenSignatureError), client:
        pass
    assert client.closed and len(sdk_threads()) == before


async def test_works_while_an_event_loop_runs_in_the_calling_thread(
    server: ServerProcess,
) -> None:
    """As in a notebook cell: an event loop is running in this thread, and the blocking
    client is called synchronously from a coroutine on it."""
    asyncio.get_running_loop()  # this test body runs on a running loop
    with Client(server.token("alice"), server.options()) as client:
        counter = client.map(uniq("counter"))
        added = listen(counter, "item_added")
        counter.set("n", {"v": 1})
        assert counter.get("n").data == {"v": 1}
        assert next_event(added).item.key == "n"
    assert client.closed
