"""`SyncService.expire`, the sweep the server runs every second: expiry and event-log pruning
in bounded storage calls, every removal published, the loop free between calls (a real
SQLite storage and the in-process broker, no sockets)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync_server import wire
from sync_server.broker import InProcessBroker
from sync_server.credentials import load_credentials
from sync_server.events import Event, StoredEvent
from sync_server.records import ServiceRecord
from sync_server.service import SyncService
from sync_server.storage.sqlite import SQLiteStorage


class CountingStorage(SQLiteStorage):
    """Records, for each expire / prune_events call, what it did and the loop's tick then."""

    ticks = 0

    def __init__(self, path: Path) -> None:
        super().__init__(path, event_retention_seconds=50)
        self.expired: list[tuple[int, int]] = []  # (events, tick)
        self.pruned: list[tuple[int, int]] = []  # (events deleted, tick)

    async def expire(self, now: float, limit: int) -> list[StoredEvent]:
        events = await super().expire(now, limit)
        self.expired.append((len(events), CountingStorage.ticks))
        return events

    async def prune_events(self, now: float, limit: int) -> int:
        deleted = await super().prune_events(now, limit)
        self.pruned.append((deleted, CountingStorage.ticks))
        return deleted


class RecordingBroker(InProcessBroker):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.published.append(event)
        await super().publish(event)


@dataclass
class Setup:
    service: SyncService
    storage: CountingStorage
    broker: RecordingBroker
    service_sid: str


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    storage = CountingStorage(tmp_path / "sync.db")
    await storage.start()
    creds = load_credentials(tmp_path, env={})
    await storage.put_service(ServiceRecord(sid=creds.service_sid, account_sid=creds.account_sid))
    broker = RecordingBroker()
    await broker.start()
    yield Setup(SyncService(storage, broker, credentials=creds), storage, broker, creds.service_sid)
    await broker.close()
    await storage.close()


async def test_the_sweep_runs_in_batches_and_yields_between_them(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, svc = setup.storage, setup.service_sid
    docs = await asyncio.gather(
        *(
            store.create_object(svc, "document", unique_name=None, data={}, ttl=10, created_by="s")
            for _ in range(120)
        )
    )
    m = await store.create_object(svc, "map", unique_name=None, data=None, ttl=None, created_by="s")
    for n in range(130):
        await store.set_item(
            svc,
            "map",
            m.sid,
            f"k{n:03}",
            data={},
            merge=False,
            if_match=None,
            ttl=10,
            origin=None,
            created_by="s",
        )

    async def ticker() -> None:
        while True:
            CountingStorage.ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    real_now = wire.now
    monkeypatch.setattr(wire, "now", lambda: real_now() + 100)  # all expired; item_added 100 s old
    try:
        assert await setup.service.expire(batch=50) == 250
    finally:
        task.cancel()

    # 120 objects, then 130 items, at most 50 per call; the sweep stops at a short call.
    assert [n for n, _ in store.expired] == [50, 50, 20 + 50, 50, 30]
    # The 130 item_added events are past the retention window (50 s): pruned 50 at a time.
    assert [n for n, _ in store.pruned] == [50, 50, 30]
    ticks = [tick for _, tick in store.expired + store.pruned]
    assert all(a < b for a, b in itertools.pairwise(ticks)), ticks  # the loop ran between calls

    published = setup.broker.published
    assert len(published) == 250
    assert {e.sid for e in published[:120]} == {d.sid for d in docs}
    assert all(e.name == "removed" for e in published[:120])
    assert [e.event_id for e in published[120:]] == list(range(131, 261))
    remaining = await store.events_since(svc, m.sid, 130, 1000)
    assert remaining is not None and [e.event_id for e in remaining] == list(range(131, 261))
    assert await setup.service.expire(batch=50) == 0
