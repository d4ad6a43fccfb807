"""The broker's ordering and repair, on a real SQLite storage: events offered out of order,
twice, or not at all still reach subscribers once each and in event-id order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_server.broker import InProcessBroker
from sync_server.events import Event, StoredEvent
from sync_server.storage.base import ObjectKind
from sync_server.storage.sqlite import SQLiteStorage

SVC = "IS" + "0" * 32


class Recorder:
    def __init__(self) -> None:
        self.ids: list[int | None] = []
        self.frames: list[str] = []
        self.resyncs: list[str] = []

    def deliver(self, event: Event) -> None:
        self.ids.append(event.event_id)
        self.frames.append(event.text)

    def resync(self, sid: str) -> None:
        self.resyncs.append(sid)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(tmp_path / "sync.db", event_retention=5)
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def broker(storage: SQLiteStorage) -> AsyncIterator[InProcessBroker]:
    hub = InProcessBroker(gap_timeout=0.05)
    hub.bind(storage)
    await hub.start()
    yield hub
    await hub.close()


async def new_object(storage: SQLiteStorage, kind: ObjectKind) -> str:
    obj = await storage.create_object(
        SVC, kind, unique_name=None, data=None, ttl=None, created_by="t"
    )
    return obj.sid


async def map_events(storage: SQLiteStorage, count: int, sid: str) -> list[StoredEvent]:
    """`count` more committed events on the map `sid`."""
    events = []
    for n in range(count):
        _, event = await storage.set_item(
            SVC,
            "map",
            sid,
            f"k{n}",
            data={"n": n},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="t",
        )
        events.append(event)
    return events


async def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_out_of_order_and_duplicates_are_delivered_once_in_order(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)  # baseline: event 0
    events = await map_events(storage, 4, sid)
    for event in (events[2], events[0], events[0], events[3], events[1], events[2]):
        await broker.publish(event)
    assert rec.ids == [1, 2, 3, 4]
    assert rec.frames == [e.frame.decode() for e in events]
    assert broker.repairs == 0


async def test_a_lost_event_is_repaired_from_storage(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    events = await map_events(storage, 3, sid)
    await broker.publish(events[0])
    await broker.publish(events[2])  # event 2 never arrives
    assert rec.ids == [1]
    await wait_for(lambda: rec.ids == [1, 2, 3])
    assert rec.frames[1] == events[1].frame.decode()
    assert broker.repairs == 1 and rec.resyncs == []


async def test_the_audit_finds_events_that_never_arrived(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    await map_events(storage, 2, sid)  # committed, never published
    await broker.audit()
    await wait_for(lambda: rec.ids == [1, 2])


async def test_a_gap_older_than_the_log_makes_subscribers_resync(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    events = await map_events(storage, 8, sid)  # the log keeps the last 5
    await broker.publish(events[7])
    await wait_for(lambda: rec.resyncs == [sid])
    assert rec.ids == []  # the subscriber catches up by itself (snapshot)
    nxt = await map_events(storage, 1, sid)
    await broker.publish(nxt[0])
    assert rec.ids == [9]  # live again from where storage is


async def test_a_removed_object_whose_removal_was_lost_resyncs(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    await storage.remove_object(SVC, "map", sid, origin=None)  # its event is never published
    await broker.audit()
    await wait_for(lambda: rec.resyncs == [sid])


async def test_a_delivered_removal_ends_the_topic(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    removal = await storage.remove_object(SVC, "map", sid, origin=None)
    assert removal.final
    await broker.publish(removal)
    await broker.audit()
    await asyncio.sleep(0.2)
    assert rec.ids == [1] and rec.resyncs == []


async def test_stream_messages_pass_straight_through(
    storage: SQLiteStorage, broker: InProcessBroker
) -> None:
    sid = await new_object(storage, "stream")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    for n in range(3):
        await broker.publish(Event(SVC, sid, None, b'{"n":%d}' % n))
    assert rec.ids == [None, None, None] and rec.frames == ['{"n":0}', '{"n":1}', '{"n":2}']
    broker.unsubscribe(sid, rec)
    await broker.publish(Event(SVC, sid, None, b"{}"))
    assert len(rec.ids) == 3 and broker.subscriber_count(sid) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(12)),
    dropped=st.sets(st.integers(0, 11), max_size=4),
    repeated=st.sets(st.integers(0, 11), max_size=4),
)
async def test_any_arrival_order_with_losses_and_repeats_is_delivered_once_in_order(
    tmp_path: Path,
    order: list[int],
    dropped: set[int],
    repeated: set[int],
) -> None:
    """Whatever reaches the broker (reordered, some events lost, some twice), every
    subscriber ends up with events 1..12, each once, in order (repaired from the log)."""
    storage = SQLiteStorage(tmp_path / f"{uuid.uuid4().hex}.db")
    await storage.start()
    broker = InProcessBroker(gap_timeout=0.01)
    broker.bind(storage)
    try:
        await _deliver_scrambled(storage, broker, order, dropped, repeated)
    finally:
        await broker.close()
        await storage.close()


async def _deliver_scrambled(
    storage: SQLiteStorage,
    broker: InProcessBroker,
    order: list[int],
    dropped: set[int],
    repeated: set[int],
) -> None:
    sid = await new_object(storage, "map")
    rec = Recorder()
    await broker.subscribe(SVC, sid, rec)
    events = await map_events(storage, 12, sid)
    for i in order:
        if i in dropped:
            continue
        for _ in range(2 if i in repeated else 1):
            await broker.publish(events[i])
    if dropped:
        await broker.audit()  # a lost last event is only noticed by the audit
    await wait_for(lambda: len(rec.ids) >= 12)
    assert rec.ids == list(range(1, 13))
    assert rec.frames == [e.frame.decode() for e in events]
    assert rec.resyncs == []
