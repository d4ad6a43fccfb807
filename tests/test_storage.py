"""The storage conformance suite: every test of the `Storage` contract runs on SQLite (SQL on
the loop's thread and on the writer thread) and on PostgreSQL, with identical expectations.
Then the tests of one backend's own machinery: SQLite's group commit and files, PostgreSQL's
migrations and several server processes sharing one database.

PostgreSQL comes from tests/services.py (skipped, with the reason, when it cannot be reached):
one database per module, emptied before each test."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import orjson
import pytest
from sync_generated.errors import (
    DocumentNotFoundError,
    DocumentRevisionMismatchError,
    InvalidRequestError,
    ListItemNotFoundError,
    ListItemRevisionMismatchError,
    ListNotFoundError,
    MapItemNotFoundError,
    MapItemRevisionMismatchError,
    MapNotFoundError,
    StreamNotFoundError,
    SyncError,
    UniqueNameExistsError,
)

from sync_server import events as frames
from sync_server.events import StoredEvent
from sync_server.storage import postgres as postgres_module
from sync_server.storage import sqlite as sqlite_module
from sync_server.storage.base import (
    ItemRecord,
    JsonObject,
    ObjectKind,
    PermissionRecord,
    ServiceRecord,
    Storage,
    WebhookDelivery,
)
from sync_server.storage.postgres import MIGRATIONS, PostgresStorage
from sync_server.storage.sqlite import SQLiteStorage
from sync_server.wire import dumps
from tests import services

SVC = "IS" + "0" * 32
OTHER_SVC = "IS" + "1" * 32
TABLES = ("services", "objects", "items", "events", "permissions", "webhook_outbox")


class Backend:
    """One storage backend under test: makes storages on one shared file or database."""

    def __init__(self, name: str, module: ModuleType, tmp_path: Path, pg_url: str | None) -> None:
        self.name = name
        self.module = module  # its `now` is what tests move forward
        self.path = tmp_path / "sync.db"
        self.pg_url = pg_url

    @property
    def is_postgres(self) -> bool:
        return self.pg_url is not None

    @property
    def log_slack(self) -> int:
        """Rows an object's log may hold beyond `event_retention` until its next trim (SQLite
        trims every `_PRUNE_STRIDE` events, PostgreSQL at every write)."""
        return 0 if self.is_postgres else sqlite_module._PRUNE_STRIDE - 1

    def make(self, **options: Any) -> Storage:
        """A new (not started) storage on this backend's file or database."""
        if self.pg_url is not None:
            return PostgresStorage(self.pg_url, min_pool=1, max_pool=10, **options)
        return SQLiteStorage(self.path, inline=self.name == "sqlite-inline", **options)

    async def count(self, storage: Storage, table: str, column: str, values: list[str]) -> int:
        """Rows of `table` whose `column` is one of `values`, read straight from the database
        (SQLite: through `storage`'s connection, as the running storage holds the file)."""
        if self.pg_url is not None:
            conn = await asyncpg.connect(self.pg_url)
            try:
                count = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE {column} = ANY($1::text[])", values
                )
            finally:
                await conn.close()
            return int(count)
        assert isinstance(storage, SQLiteStorage)
        marks = ", ".join("?" * len(values))
        query = f"SELECT COUNT(*) FROM {table} WHERE {column} IN ({marks})"
        return int(await storage._read(lambda conn: conn.execute(query, values).fetchone()[0]))

    def shift_clock(self, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
        """The storage's idea of now moves `seconds` ahead (expiry checks of reads and writes)."""
        real_now = time.time
        monkeypatch.setattr(self.module, "now", lambda: real_now() + seconds)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module (skips the PostgreSQL tests if unreachable)."""
    url = services.create_database()
    yield url
    services.drop_database(url)


async def empty_database(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass('objects') IS NOT NULL"):
            await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite-inline", "sqlite-thread", "postgres"])
def backend_target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(backend name, database URL for PostgreSQL)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return request.param, url
    return request.param, None


@pytest.fixture
async def backend(backend_target: tuple[str, str | None], tmp_path: Path) -> Backend:
    name, url = backend_target
    if url is not None:
        await empty_database(url)
        return Backend(name, postgres_module, tmp_path, url)
    return Backend(name, sqlite_module, tmp_path, None)


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    store = backend.make()
    await store.start()
    yield store
    await store.close()


def frame(event: StoredEvent) -> dict[str, Any]:
    decoded: dict[str, Any] = orjson.loads(event.frame)
    return decoded


def svc_sid(n: int) -> str:
    return "IS" + f"{n:032x}"


# ---- services ------------------------------------------------------------------------


async def test_services_put_get(storage: Storage) -> None:
    svc = ServiceRecord(sid=SVC, account_sid="AC" + "2" * 32, unique_name="main", acl_enabled=True)
    stored = await storage.put_service(svc)
    assert stored == svc
    assert await storage.get_service(SVC) == svc
    assert await storage.get_service("main") == svc
    assert await storage.get_service("nope") is None
    svc.friendly_name = "Main"
    await storage.put_service(svc)
    got = await storage.get_service("main")
    assert got is not None and got.friendly_name == "Main" and got.acl_enabled is True


async def test_list_services_paging(storage: Storage) -> None:
    sids = [svc_sid(n) for n in (7, 3, 11, 1, 5)]  # inserted out of order
    for sid in sids:
        await storage.put_service(ServiceRecord(sid=sid, account_sid="AC" + "2" * 32))
    expected = sorted(sids)
    pages: list[list[str]] = []
    after: str | None = None
    for _ in range(10):  # bounded: a wrong after_* filter must fail, not hang
        page = await storage.list_services(after_sid=after, limit=2)
        if not page:
            break
        assert len(page) <= 2
        pages.append([s.sid for s in page])
        after = page[-1].sid
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    everything = await storage.list_services(after_sid=None, limit=100)
    assert [s.sid for s in everything] == expected
    assert everything[0] == ServiceRecord(sid=expected[0], account_sid="AC" + "2" * 32)
    # after_sid need not be an existing sid; limit 0 gives nothing.
    between = await storage.list_services(after_sid=svc_sid(4), limit=10)
    assert [s.sid for s in between] == [svc_sid(5), svc_sid(7), svc_sid(11)]
    assert await storage.list_services(after_sid=None, limit=0) == []
    assert await storage.list_services(after_sid=expected[-1], limit=10) == []


async def test_delete_service_cascades(storage: Storage, backend: Backend) -> None:
    for sid in (SVC, OTHER_SVC):
        await storage.put_service(ServiceRecord(sid=sid, account_sid="AC" + "2" * 32))
    doomed: list[str] = []
    kept: list[str] = []
    for service_sid, sids in ((SVC, doomed), (OTHER_SVC, kept)):
        doc = await storage.create_object(
            service_sid, "document", unique_name="d", data={"a": 1}, ttl=None, created_by="s"
        )
        await storage.update_document(
            service_sid, doc.sid, data={"b": 2}, merge=True, if_match=None, ttl=None, origin=None
        )
        lst = await storage.create_object(
            service_sid, "list", unique_name=None, data=None, ttl=None, created_by="s"
        )
        await storage.list_push(
            service_sid, lst.sid, data={"x": 1}, ttl=None, origin=None, created_by="s"
        )
        m = await storage.create_object(
            service_sid, "map", unique_name=None, data=None, ttl=None, created_by="s"
        )
        await storage.set_item(
            service_sid,
            "map",
            m.sid,
            "k",
            data={},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        )
        for obj_sid in (doc.sid, lst.sid, m.sid):
            await storage.put_permission(
                PermissionRecord(service_sid, obj_sid, "alice", True, False, False)
            )
        sids += [doc.sid, lst.sid, m.sid]
    assert await backend.count(storage, "items", "object_sid", doomed) == 2
    assert await backend.count(storage, "events", "object_sid", doomed) == 3
    assert await backend.count(storage, "permissions", "object_sid", doomed) == 3

    assert await storage.delete_service(SVC) is True
    assert await storage.get_service(SVC) is None
    for table, column in (
        ("objects", "sid"),
        ("items", "object_sid"),
        ("events", "object_sid"),
        ("permissions", "object_sid"),
    ):
        assert await backend.count(storage, table, column, doomed) == 0, table
    assert await storage.get_object(SVC, "document", "d") is None
    assert await storage.list_objects(SVC, "list", after_sid=None, limit=10) == []
    assert await storage.get_permission(SVC, doomed[0], "alice") is None
    # The other service is untouched.
    assert await storage.get_service(OTHER_SVC) is not None
    assert await backend.count(storage, "items", "object_sid", kept) == 2
    assert await backend.count(storage, "events", "object_sid", kept) == 3
    assert await backend.count(storage, "permissions", "object_sid", kept) == 3
    other_doc = await storage.get_object(OTHER_SVC, "document", "d")
    assert other_doc is not None and other_doc.data == {"a": 1, "b": 2}
    assert (await storage.get_item(OTHER_SVC, "map", kept[2], "k")).data == {}
    # The unique name is free again in the deleted service; a second delete finds nothing.
    assert await storage.delete_service(SVC) is False
    again = await storage.create_object(
        SVC, "document", unique_name="d", data=None, ttl=None, created_by="s"
    )
    assert again.sid != doomed[0]


async def test_delete_service_without_row_still_removes_its_objects(
    storage: Storage,
) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data=None, ttl=None, created_by="s"
    )
    await storage.put_permission(PermissionRecord(SVC, doc.sid, "bob", True, True, True))
    assert await storage.delete_service(SVC) is False
    assert await storage.get_object(SVC, "document", doc.sid) is None
    assert await storage.get_permission(SVC, doc.sid, "bob") is None


# ---- objects -------------------------------------------------------------------------


async def test_create_and_get_by_sid_and_name(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name="cfg", data={"a": 1}, ttl=None, created_by="alice"
    )
    assert doc.sid.startswith("ET") and len(doc.sid) == 34
    assert doc.last_event_id == 0 and doc.revision == "0"
    assert doc.data == {"a": 1} and doc.date_expires is None and doc.created_by == "alice"
    assert await storage.get_object(SVC, "document", doc.sid) == doc
    assert await storage.get_object(SVC, "document", "cfg") == doc
    # Another kind may share the unique name; other kinds and services don't see the doc.
    lst = await storage.create_object(
        SVC, "list", unique_name="cfg", data=None, ttl=None, created_by="alice"
    )
    assert lst.sid.startswith("ES") and lst.data is None
    got_list = await storage.get_object(SVC, "list", "cfg")
    assert got_list is not None and got_list.sid == lst.sid
    assert await storage.get_object(SVC, "list", doc.sid) is None
    assert await storage.get_object(OTHER_SVC, "document", doc.sid) is None
    assert await storage.get_object(OTHER_SVC, "document", "cfg") is None
    m = await storage.create_object(
        SVC, "map", unique_name=None, data={"x": 1}, ttl=0, created_by="s"
    )
    st = await storage.create_object(
        SVC, "stream", unique_name=None, data=None, ttl=60, created_by="s"
    )
    assert m.sid.startswith("MP") and m.data is None and m.date_expires is None
    assert st.sid.startswith("TO") and st.date_expires == pytest.approx(time.time() + 60, abs=5)
    empty = await storage.create_object(
        SVC, "document", unique_name=None, data=None, ttl=None, created_by="s"
    )
    assert empty.data == {}


async def test_unique_name_conflict(storage: Storage) -> None:
    await storage.create_object(SVC, "map", unique_name="m", data=None, ttl=None, created_by="s")
    with pytest.raises(UniqueNameExistsError) as err:
        await storage.create_object(
            SVC, "map", unique_name="m", data=None, ttl=None, created_by="s"
        )
    assert err.value.code == 54301
    # Same name in another service is fine.
    other = await storage.create_object(
        OTHER_SVC, "map", unique_name="m", data=None, ttl=None, created_by="s"
    )
    assert other.service_sid == OTHER_SVC


async def test_expired_name_is_reusable_and_invisible(
    storage: Storage, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = await storage.create_object(
        SVC, "document", unique_name="d", data={"v": 1}, ttl=10, created_by="s"
    )
    backend.shift_clock(monkeypatch, 20)
    assert await storage.get_object(SVC, "document", old.sid) is None
    assert await storage.get_object(SVC, "document", "d") is None
    with pytest.raises(DocumentNotFoundError):
        await storage.update_document(
            SVC, old.sid, data={}, merge=False, if_match=None, ttl=None, origin=None
        )
    new = await storage.create_object(
        SVC, "document", unique_name="d", data={"v": 2}, ttl=None, created_by="s"
    )
    assert new.sid != old.sid
    got = await storage.get_object(SVC, "document", "d")
    assert got is not None and got.data == {"v": 2}


async def test_list_objects_paging(
    storage: Storage, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def make(service_sid: str, kind: ObjectKind, ttl: int | None = None) -> str:
        obj = await storage.create_object(
            service_sid, kind, unique_name=None, data=None, ttl=ttl, created_by="s"
        )
        return obj.sid

    docs = [await make(SVC, "document") for _ in range(7)]
    expiring = await make(SVC, "document", ttl=10)
    await make(SVC, "list")
    await make(SVC, "map")
    await make(OTHER_SVC, "document")
    lists = [await make(SVC, "list") for _ in range(2)]

    all_docs = await storage.list_objects(SVC, "document", after_sid=None, limit=100)
    assert [o.sid for o in all_docs] == sorted([*docs, expiring])
    assert all(o.kind == "document" and o.service_sid == SVC for o in all_docs)

    backend.shift_clock(monkeypatch, 20)
    expected = sorted(docs)
    pages: list[list[str]] = []
    after: str | None = None
    for _ in range(10):  # bounded: a wrong after_* filter must fail, not hang
        page = await storage.list_objects(SVC, "document", after_sid=after, limit=3)
        if not page:
            break
        pages.append([o.sid for o in page])
        after = page[-1].sid
    assert pages == [expected[0:3], expected[3:6], expected[6:7]]
    assert expiring not in {sid for page in pages for sid in page}

    listed = await storage.list_objects(SVC, "list", after_sid=None, limit=100)
    assert len(listed) == 3 and set(lists) <= {o.sid for o in listed}
    assert [o.sid for o in listed] == sorted(o.sid for o in listed)
    assert len(await storage.list_objects(SVC, "map", after_sid=None, limit=100)) == 1
    assert await storage.list_objects(SVC, "stream", after_sid=None, limit=100) == []
    assert len(await storage.list_objects(OTHER_SVC, "document", after_sid=None, limit=9)) == 1
    assert await storage.list_objects(SVC, "document", after_sid=None, limit=0) == []
    with pytest.raises(InvalidRequestError):
        await storage.list_objects(SVC, "bogus", after_sid=None, limit=1)  # type: ignore[arg-type]


async def test_document_update_merge_if_match(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={"a": 1}, ttl=None, created_by="s"
    )
    doc1, ev1 = await storage.update_document(
        SVC, doc.sid, data={"b": 2}, merge=True, if_match=None, ttl=None, origin="c1"
    )
    assert doc1.data == {"a": 1, "b": 2} and doc1.last_event_id == 1 and doc1.revision == "1"
    assert ev1.event_id == 1 and ev1.sid == doc.sid and ev1.service_sid == SVC
    f1 = frame(ev1)
    assert f1["name"] == "updated" and f1["event_id"] == 1 and f1["origin"] == "c1"
    assert f1["data"] == {"a": 1, "b": 2} and f1["previous_data"] == {"a": 1}
    assert f1["revision"] == "1" and f1["kind"] == "document" and f1["sid"] == doc.sid

    doc2, ev2 = await storage.update_document(
        SVC, doc.sid, data={"c": 3}, merge=False, if_match="1", ttl=100, origin=None
    )
    assert doc2.data == {"c": 3} and doc2.last_event_id == 2 and ev2.event_id == 2
    assert doc2.date_expires is not None
    assert frame(ev2)["previous_data"] == {"a": 1, "b": 2}

    with pytest.raises(DocumentRevisionMismatchError) as err:
        await storage.update_document(
            SVC, doc.sid, data={"d": 4}, merge=True, if_match="1", ttl=None, origin=None
        )
    assert err.value.code == 54103
    with pytest.raises(DocumentNotFoundError) as nf:
        await storage.update_document(
            SVC, "ET" + "f" * 32, data={}, merge=False, if_match=None, ttl=None, origin=None
        )
    assert nf.value.code == 54100

    # ttl None keeps the expiry, ttl 0 removes it.
    doc3, _ = await storage.update_document(
        SVC, doc.sid, data={}, merge=True, if_match=None, ttl=None, origin=None
    )
    assert doc3.date_expires == doc2.date_expires and doc3.data == {"c": 3}
    doc4, _ = await storage.update_document(
        SVC, doc.sid, data={}, merge=True, if_match=None, ttl=0, origin=None
    )
    assert doc4.date_expires is None
    assert await storage.get_object(SVC, "document", doc.sid) == doc4


async def test_a_merge_with_a_nul_in_a_key_works_everywhere(storage: Storage) -> None:
    """PostgreSQL's text type cannot hold NUL, which its in-database merge needs for the
    top-level keys: such a merge is done by the server instead, with the same result."""
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={"a\x00": 1, "b": 1}, ttl=None, created_by="s"
    )
    doc1, ev1 = await storage.update_document(
        SVC, doc.sid, data={"b": 2, "c\x00": 3}, merge=True, if_match=None, ttl=None, origin="o"
    )
    assert doc1.data == {"a\x00": 1, "b": 2, "c\x00": 3} and doc1.last_event_id == 1
    assert frame(ev1)["previous_data"] == {"a\x00": 1, "b": 1}
    with pytest.raises(DocumentRevisionMismatchError):
        await storage.update_document(
            SVC, doc.sid, data={"\x00": 0}, merge=True, if_match="0", ttl=None, origin=None
        )
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    set_args: dict[str, Any] = {"if_match": None, "ttl": None, "origin": None, "created_by": "u"}
    await storage.set_item(SVC, "map", m.sid, "k", data={"x\x00": 1}, merge=False, **set_args)
    item, _ = await storage.set_item(SVC, "map", m.sid, "k", data={"y": 2}, merge=True, **set_args)
    assert item.data == {"x\x00": 1, "y": 2} and item.revision == "2"
    assert (await storage.get_object(SVC, "document", doc.sid)) == doc1


async def test_object_ttl_and_remove(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name="x", data={"k": "v"}, ttl=None, created_by="s"
    )
    await storage.update_document(
        SVC, doc.sid, data={"k": "w"}, merge=False, if_match=None, ttl=None, origin=None
    )
    with_ttl = await storage.set_object_ttl(SVC, "document", doc.sid, 50)
    assert with_ttl.date_expires is not None and with_ttl.last_event_id == 1
    no_ttl = await storage.set_object_ttl(SVC, "document", doc.sid, 0)
    assert no_ttl.date_expires is None
    ev = await storage.remove_object(SVC, "document", doc.sid, origin="o")
    f = frame(ev)
    assert ev.event_id == 2 and f["name"] == "removed" and f["event_id"] == 2
    assert ev.final  # nothing follows an object's removal
    assert f["previous_data"] == {"k": "w"} and f["origin"] == "o"
    assert await storage.get_object(SVC, "document", doc.sid) is None
    assert await storage.events_since(SVC, doc.sid, 0, 10) is None
    with pytest.raises(DocumentNotFoundError):
        await storage.remove_object(SVC, "document", doc.sid, origin=None)
    with pytest.raises(StreamNotFoundError) as err:
        await storage.remove_object(SVC, "stream", "TO" + "a" * 32, origin=None)
    assert err.value.code == 54250

    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    await storage.list_push(SVC, lst.sid, data={"i": 0}, ttl=None, origin=None, created_by="s")
    ev_list = await storage.remove_object(SVC, "list", lst.sid, origin=None)
    assert ev_list.event_id == 2 and frame(ev_list)["previous_data"] is None
    # The list and its items are gone.
    with pytest.raises(ListNotFoundError):
        await storage.get_item(SVC, "list", lst.sid, 0)


# ---- lists ---------------------------------------------------------------------------


async def test_list_push_indexes_never_reused(storage: Storage) -> None:
    lst = await storage.create_object(
        SVC, "list", unique_name="l", data=None, ttl=None, created_by="s"
    )
    pushed = []
    for i in range(3):
        item, ev = await storage.list_push(
            SVC, lst.sid, data={"n": i}, ttl=None, origin="o", created_by="bob"
        )
        pushed.append(item)
        f = frame(ev)
        assert f["name"] == "item_added" and f["event_id"] == i + 1 and f["item"]["index"] == i
        assert f["previous_data"] is None
    assert [p.index for p in pushed] == [0, 1, 2]
    assert [p.last_event_id for p in pushed] == [1, 2, 3]
    assert pushed[0].created_by == "bob" and pushed[0].key is None

    ev = await storage.remove_item(SVC, "list", lst.sid, 2, if_match=None, origin=None)
    f = frame(ev)
    assert f["name"] == "item_removed" and f["index"] == 2 and f["event_id"] == 4
    assert f["previous_data"] == {"n": 2}
    item, _ = await storage.list_push(
        SVC, lst.sid, data={"n": 3}, ttl=None, origin=None, created_by="s"
    )
    assert item.index == 3 and item.last_event_id == 5
    obj = await storage.get_object(SVC, "list", lst.sid)
    assert obj is not None and obj.last_event_id == 5

    with pytest.raises(ListItemNotFoundError) as err:
        await storage.set_item(
            SVC,
            "list",
            lst.sid,
            2,
            data={},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        )
    assert err.value.code == 54151
    with pytest.raises(ListItemNotFoundError):
        await storage.get_item(SVC, "list", lst.sid, 2)
    with pytest.raises(ListItemRevisionMismatchError) as mm:
        await storage.set_item(
            SVC,
            "list",
            lst.sid,
            1,
            data={},
            merge=False,
            if_match="99",
            ttl=None,
            origin=None,
            created_by="s",
        )
    assert mm.value.code == 54155
    updated, ev = await storage.set_item(
        SVC,
        "list",
        lst.sid,
        1,
        data={"x": 1},
        merge=True,
        if_match="2",
        ttl=None,
        origin=None,
        created_by="z",
    )
    assert (
        updated.data == {"n": 1, "x": 1}
        and updated.last_event_id == 6
        and updated.created_by == "bob"
    )
    f = frame(ev)
    assert f["name"] == "item_updated" and f["previous_data"] == {"n": 1} and f["event_id"] == 6
    assert await storage.get_item(SVC, "list", lst.sid, 1) == updated

    with pytest.raises(ListNotFoundError) as lnf:
        await storage.list_push(
            SVC, "ES" + "0" * 32, data={}, ttl=None, origin=None, created_by="s"
        )
    assert lnf.value.code == 54150
    with pytest.raises(InvalidRequestError) as bad:
        await storage.get_item(SVC, "list", lst.sid, "1")
    assert bad.value.code == 51000
    with pytest.raises(InvalidRequestError):
        await storage.get_item(SVC, "map", lst.sid, 1)


# ---- maps ----------------------------------------------------------------------------


async def test_map_upsert_events(storage: Storage) -> None:
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    item, ev = await storage.set_item(
        SVC,
        "map",
        m.sid,
        "k",
        data={"a": 1},
        merge=False,
        if_match=None,
        ttl=None,
        origin="o",
        created_by="u1",
    )
    f = frame(ev)
    assert f["name"] == "item_added" and f["event_id"] == 1 and f["previous_data"] is None
    assert f["item"]["key"] == "k" and item.key == "k" and item.index is None

    item2, ev2 = await storage.set_item(
        SVC,
        "map",
        m.sid,
        "k",
        data={"b": 2},
        merge=True,
        if_match="1",
        ttl=None,
        origin=None,
        created_by="u2",
    )
    f2 = frame(ev2)
    assert f2["name"] == "item_updated" and f2["event_id"] == 2 and f2["previous_data"] == {"a": 1}
    assert item2.data == {"a": 1, "b": 2} and item2.last_event_id == 2 and item2.created_by == "u1"

    merged, ev3 = await storage.set_item(
        SVC,
        "map",
        m.sid,
        "new",
        data={"z": 0},
        merge=True,
        if_match=None,
        ttl=None,
        origin=None,
        created_by="s",
    )
    assert frame(ev3)["name"] == "item_added" and merged.data == {"z": 0}

    with pytest.raises(MapItemRevisionMismatchError) as mm:
        await storage.set_item(
            SVC,
            "map",
            m.sid,
            "k",
            data={},
            merge=False,
            if_match="1",
            ttl=None,
            origin=None,
            created_by="s",
        )
    assert mm.value.code == 54205
    with pytest.raises(MapItemNotFoundError) as nf:
        await storage.set_item(
            SVC,
            "map",
            m.sid,
            "missing",
            data={},
            merge=False,
            if_match="0",
            ttl=None,
            origin=None,
            created_by="s",
        )
    assert nf.value.code == 54201
    with pytest.raises(MapItemNotFoundError):
        await storage.get_item(SVC, "map", m.sid, "missing")
    with pytest.raises(MapItemRevisionMismatchError):
        await storage.remove_item(SVC, "map", m.sid, "k", if_match="1", origin=None)
    ev4 = await storage.remove_item(SVC, "map", m.sid, "k", if_match="2", origin=None)
    f4 = frame(ev4)
    assert (
        f4["name"] == "item_removed"
        and f4["key"] == "k"
        and f4["previous_data"] == {"a": 1, "b": 2}
    )
    assert f4["event_id"] == 4
    with pytest.raises(MapItemNotFoundError):
        await storage.remove_item(SVC, "map", m.sid, "k", if_match=None, origin=None)
    with pytest.raises(MapNotFoundError) as mnf:
        await storage.get_item(SVC, "map", "MP" + "0" * 32, "k")
    assert mnf.value.code == 54200
    with pytest.raises(InvalidRequestError):
        await storage.set_item(
            SVC,
            "map",
            m.sid,
            5,
            data={},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        )

    obj = await storage.get_object(SVC, "map", m.sid)
    assert obj is not None and obj.last_event_id == 4 and obj.date_updated >= obj.date_created

    ttl_item = await storage.set_item_ttl(SVC, "map", m.sid, "new", 30)
    assert ttl_item.date_expires is not None and ttl_item.last_event_id == 3
    # ttl None on a write keeps the item's expiry.
    kept, _ = await storage.set_item(
        SVC,
        "map",
        m.sid,
        "new",
        data={"z": 1},
        merge=False,
        if_match=None,
        ttl=None,
        origin=None,
        created_by="s",
    )
    assert kept.date_expires == ttl_item.date_expires
    cleared = await storage.set_item_ttl(SVC, "map", m.sid, "new", 0)
    assert cleared.date_expires is None


# ---- paging --------------------------------------------------------------------------


async def test_items_page_list(storage: Storage) -> None:
    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    for i in range(8):
        await storage.list_push(SVC, lst.sid, data={"i": i}, ttl=None, origin=None, created_by="s")
    await storage.remove_item(SVC, "list", lst.sid, 4, if_match=None, origin=None)
    # Remaining: 0 1 2 3 5 6 7

    seen: list[int] = []
    flags: list[tuple[bool, bool]] = []
    start: int | None = None
    while True:
        page = await storage.items_page(
            SVC, "list", lst.sid, start=start, inclusive=False, page_size=3, order="asc"
        )
        seen.extend(it.index for it in page.items if it.index is not None)
        flags.append((page.has_next, page.has_prev))
        if not page.has_next:
            break
        start = page.items[-1].index
    assert seen == [0, 1, 2, 3, 5, 6, 7]
    assert flags == [(True, False), (True, True), (False, True)]

    desc = await storage.items_page(
        SVC, "list", lst.sid, start=None, inclusive=True, page_size=4, order="desc"
    )
    assert [it.index for it in desc.items] == [7, 6, 5, 3] and desc.has_next and not desc.has_prev
    desc2 = await storage.items_page(
        SVC, "list", lst.sid, start=3, inclusive=False, page_size=4, order="desc"
    )
    assert [it.index for it in desc2.items] == [2, 1, 0] and not desc2.has_next and desc2.has_prev

    incl = await storage.items_page(
        SVC, "list", lst.sid, start=5, inclusive=True, page_size=2, order="asc"
    )
    assert [it.index for it in incl.items] == [5, 6] and incl.has_next and incl.has_prev
    # Start on a removed index: inclusive/exclusive agree.
    gap = await storage.items_page(
        SVC, "list", lst.sid, start=4, inclusive=True, page_size=10, order="desc"
    )
    assert [it.index for it in gap.items] == [3, 2, 1, 0] and gap.has_prev and not gap.has_next
    first = await storage.items_page(
        SVC, "list", lst.sid, start=0, inclusive=True, page_size=1, order="asc"
    )
    assert not first.has_prev and first.has_next
    empty = await storage.items_page(
        SVC, "list", lst.sid, start=7, inclusive=False, page_size=5, order="asc"
    )
    assert empty.items == [] and not empty.has_next and empty.has_prev
    with pytest.raises(InvalidRequestError):
        await storage.items_page(
            SVC, "list", lst.sid, start="a", inclusive=True, page_size=5, order="asc"
        )


async def test_items_page_map(storage: Storage) -> None:
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    keys = ["b", "a", "B", "c", "ab", "é"]
    for k in keys:
        await storage.set_item(
            SVC,
            "map",
            m.sid,
            k,
            data={"k": k},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        )
    ordered = sorted(keys, key=lambda k: k.encode())  # B a ab b c é
    full = await storage.items_page(
        SVC, "map", m.sid, start=None, inclusive=True, page_size=100, order="asc"
    )
    assert [it.key for it in full.items] == ordered and not full.has_next and not full.has_prev

    page = await storage.items_page(
        SVC, "map", m.sid, start="ab", inclusive=True, page_size=2, order="asc"
    )
    assert [it.key for it in page.items] == ["ab", "b"] and page.has_next and page.has_prev
    page = await storage.items_page(
        SVC, "map", m.sid, start="ab", inclusive=False, page_size=2, order="desc"
    )
    assert [it.key for it in page.items] == ["a", "B"] and not page.has_next and page.has_prev
    page = await storage.items_page(
        SVC, "map", m.sid, start="c", inclusive=True, page_size=3, order="desc"
    )
    assert [it.key for it in page.items] == ["c", "b", "ab"] and page.has_next and page.has_prev


# ---- expiry --------------------------------------------------------------------------


async def test_expire_returns_removal_events(storage: Storage) -> None:
    t0 = time.time()
    doc = await storage.create_object(
        SVC, "document", unique_name="d", data={"v": 1}, ttl=100, created_by="s"
    )
    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    await storage.list_push(
        SVC, lst.sid, data={"keep": True}, ttl=None, origin=None, created_by="s"
    )
    await storage.list_push(SVC, lst.sid, data={"gone": True}, ttl=50, origin=None, created_by="s")
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    await storage.set_item(
        SVC,
        "map",
        m.sid,
        "tmp",
        data={"t": 1},
        merge=False,
        if_match=None,
        ttl=60,
        origin=None,
        created_by="s",
    )

    assert await storage.expire(t0 + 10, 100) == []

    events = await storage.expire(t0 + 70, 100)
    assert [(e.sid, e.event_id) for e in events] == [(lst.sid, 3), (m.sid, 2)]
    f0, f1 = frame(events[0]), frame(events[1])
    assert (
        f0["name"] == "item_removed" and f0["index"] == 1 and f0["previous_data"] == {"gone": True}
    )
    assert f0["origin"] is None
    assert f1["name"] == "item_removed" and f1["key"] == "tmp"
    assert not any(e.final for e in events)  # item removals: the objects live on
    with pytest.raises(ListItemNotFoundError):
        await storage.get_item(SVC, "list", lst.sid, 1)
    assert (await storage.get_item(SVC, "list", lst.sid, 0)).data == {"keep": True}
    lst_now = await storage.get_object(SVC, "list", lst.sid)
    assert lst_now is not None and lst_now.last_event_id == 3
    # The expiry removal is in the event log like any other event.
    logged = await storage.events_since(SVC, lst.sid, 2, 10)
    assert logged is not None and [e.frame for e in logged] == [events[0].frame]

    events = await storage.expire(t0 + 200, 100)
    assert len(events) == 1 and events[0].sid == doc.sid and events[0].event_id == 1
    assert events[0].final
    f = frame(events[0])
    assert f["name"] == "removed" and f["previous_data"] == {"v": 1} and f["kind"] == "document"
    assert await storage.get_object(SVC, "document", doc.sid) is None
    assert await storage.expire(t0 + 300, 100) == []


async def test_expired_items_invisible_before_expire(
    storage: Storage, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    for k, ttl in (("a", None), ("b", 10), ("c", None)):
        await storage.set_item(
            SVC,
            "map",
            m.sid,
            k,
            data={},
            merge=False,
            if_match=None,
            ttl=ttl,
            origin=None,
            created_by="s",
        )
    backend.shift_clock(monkeypatch, 20)
    page = await storage.items_page(
        SVC, "map", m.sid, start=None, inclusive=True, page_size=10, order="asc"
    )
    assert [it.key for it in page.items] == ["a", "c"]
    with pytest.raises(MapItemNotFoundError):
        await storage.get_item(SVC, "map", m.sid, "b")
    # Writing the expired key creates a fresh item.
    _, ev = await storage.set_item(
        SVC,
        "map",
        m.sid,
        "b",
        data={"new": 1},
        merge=True,
        if_match=None,
        ttl=None,
        origin=None,
        created_by="s",
    )
    assert frame(ev)["name"] == "item_added" and frame(ev)["previous_data"] is None


async def put_map_item(
    store: Storage, ref: str, key: str, data: JsonObject, ttl: int | None = None
) -> tuple[ItemRecord, StoredEvent]:
    """Set map item `key` of map `ref` (a sid or a unique name): no merge, no If-Match."""
    return await store.set_item(
        SVC,
        "map",
        ref,
        key,
        data=data,
        merge=False,
        if_match=None,
        ttl=ttl,
        origin=None,
        created_by="s",
    )


async def set_map_item(store: Storage, sid: str, key: str, ttl: int | None) -> StoredEvent:
    _, event = await put_map_item(store, sid, key, {"k": key}, ttl)
    return event


async def test_expire_works_in_bounded_batches(storage: Storage) -> None:
    """Expired objects first, oldest first, then items, at most `limit` of each per call:
    several calls, nothing lost, item removals gap-free and in order per object."""
    t0 = time.time()
    docs: list[str] = []
    for _ in range(11):  # 1,100 documents, created 100 at a time
        created = await asyncio.gather(
            *(
                storage.create_object(
                    SVC, "document", unique_name=None, data={"n": 1}, ttl=10, created_by="s"
                )
                for _ in range(100)
            )
        )
        docs += [d.sid for d in created]
    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    for n in range(400):  # every other list item expires
        await storage.list_push(
            SVC, lst.sid, data={"n": n}, ttl=10 if n % 2 else None, origin=None, created_by="s"
        )
    for n in range(400):  # every map item expires, before the list items
        await set_map_item(storage, m.sid, f"k{n:03}", ttl=5)

    calls: list[list[StoredEvent]] = []
    for _ in range(10):  # bounded: a wrong batch condition must fail, not hang
        events = await storage.expire(t0 + 60, 500)
        calls.append(events)
        if len(events) < 500:
            break
    removed = [[e for e in c if e.final] for c in calls]
    items = [[e for e in c if not e.final] for c in calls]
    assert [len(r) for r in removed] == [500, 500, 100, 0]
    assert [len(i) for i in items] == [0, 0, 500, 100]
    assert await storage.expire(t0 + 60, 500) == []

    assert sorted(e.sid for r in removed for e in r) == sorted(docs)
    assert all(e.event_id == 1 and frame(e)["name"] == "removed" for r in removed for e in r)
    removals = [e for i in items for e in i]
    # Oldest first: every map item (ttl 5) before the list items (ttl 10).
    assert [e.sid for e in removals] == [m.sid] * 400 + [lst.sid] * 200
    assert [frame(e)["key"] for e in removals[:400]] == [f"k{n:03}" for n in range(400)]
    assert [frame(e)["index"] for e in removals[400:]] == list(range(1, 400, 2))
    # Each object's removals take its next event ids, in order, across calls.
    assert [e.event_id for e in removals[:400]] == list(range(401, 801))
    assert [e.event_id for e in removals[400:]] == list(range(401, 601))
    logged = await storage.events_since(SVC, lst.sid, 400, 1000)
    assert logged is not None and [e.frame for e in logged] == [e.frame for e in removals[400:]]
    lst_now = await storage.get_object(SVC, "list", lst.sid)
    assert lst_now is not None and lst_now.last_event_id == 600
    page = await storage.items_page(
        SVC, "list", lst.sid, start=None, inclusive=True, page_size=1000, order="asc"
    )
    assert [it.index for it in page.items] == list(range(0, 400, 2))
    page = await storage.items_page(
        SVC, "map", m.sid, start=None, inclusive=True, page_size=10, order="asc"
    )
    assert page.items == []


async def test_expire_keeps_the_retention_of_objects_whose_items_expired(
    backend: Backend,
) -> None:
    store = backend.make(event_retention=5)
    await store.start()
    try:
        t0 = time.time()
        m = await store.create_object(
            SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
        )
        for n in range(12):
            await set_map_item(store, m.sid, f"k{n:02}", ttl=10)
        await set_map_item(store, m.sid, "kept", ttl=None)  # event 13
        removals: list[StoredEvent] = []
        for _ in range(2):  # more removals in one call than the log keeps, then fewer
            removals += await store.expire(t0 + 60, 8)
            rows = await backend.count(store, "events", "object_sid", [m.sid])
            assert 5 <= rows <= 5 + backend.log_slack
        assert [e.event_id for e in removals] == list(range(14, 26))
        assert await store.events_since(SVC, m.sid, 19, 100) is None
        tail = await store.events_since(SVC, m.sid, 20, 100)
        assert tail is not None and [e.frame for e in tail] == [e.frame for e in removals[-5:]]
    finally:
        await store.close()


async def test_prune_events_in_bounded_chunks(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
    )
    for i in range(7):
        await storage.update_document(
            SVC, doc.sid, data={"i": i}, merge=False, if_match=None, ttl=None, origin=None
        )
    assert await storage.prune_events(time.time(), 3) == 0  # nothing is a day old yet
    later = time.time() + 2 * 86_400
    assert [await storage.prune_events(later, 3) for _ in range(4)] == [3, 3, 1, 0]
    assert await storage.events_since(SVC, doc.sid, 0, 10) is None
    assert await storage.events_since(SVC, doc.sid, 7, 10) == []


# ---- permissions ---------------------------------------------------------------------


async def test_permission_upsert_get_delete(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data=None, ttl=None, created_by="s"
    )
    assert await storage.get_permission(SVC, doc.sid, "alice") is None
    perm = PermissionRecord(SVC, doc.sid, "alice", read=True, write=False, manage=False)
    assert await storage.put_permission(perm) == perm
    assert await storage.get_permission(SVC, doc.sid, "alice") == perm
    # Upsert: same (object, identity) replaces the flags, no second row.
    changed = PermissionRecord(SVC, doc.sid, "alice", read=False, write=True, manage=True)
    assert await storage.put_permission(changed) == changed
    assert await storage.get_permission(SVC, doc.sid, "alice") == changed
    assert await storage.list_permissions(SVC, doc.sid, after_identity=None, limit=10) == [changed]
    # Scoped by service and identity.
    assert await storage.get_permission(OTHER_SVC, doc.sid, "alice") is None
    assert await storage.get_permission(SVC, doc.sid, "bob") is None
    assert await storage.delete_permission(OTHER_SVC, doc.sid, "alice") is False
    assert await storage.delete_permission(SVC, doc.sid, "bob") is False
    assert await storage.get_permission(SVC, doc.sid, "alice") == changed

    assert await storage.delete_permission(SVC, doc.sid, "alice") is True
    assert await storage.get_permission(SVC, doc.sid, "alice") is None
    assert await storage.delete_permission(SVC, doc.sid, "alice") is False
    assert await storage.list_permissions(SVC, doc.sid, after_identity=None, limit=10) == []


async def test_list_permissions_paging(storage: Storage) -> None:
    m = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    other = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    identities = ["erin", "alice", "dave", "bob", "carol"]
    for i, identity in enumerate(identities):
        await storage.put_permission(
            PermissionRecord(SVC, m.sid, identity, read=True, write=i % 2 == 0, manage=False)
        )
    await storage.put_permission(PermissionRecord(SVC, other.sid, "zed", True, True, True))

    pages: list[list[str]] = []
    after: str | None = None
    for _ in range(10):  # bounded: a wrong after_* filter must fail, not hang
        page = await storage.list_permissions(SVC, m.sid, after_identity=after, limit=2)
        if not page:
            break
        assert all(p.object_sid == m.sid and p.service_sid == SVC for p in page)
        pages.append([p.identity for p in page])
        after = page[-1].identity
    assert pages == [["alice", "bob"], ["carol", "dave"], ["erin"]]
    full = await storage.list_permissions(SVC, m.sid, after_identity=None, limit=10)
    assert {p.identity: p.write for p in full} == {
        "erin": True,
        "alice": False,
        "dave": True,
        "bob": False,
        "carol": True,
    }
    assert [
        p.identity for p in await storage.list_permissions(SVC, m.sid, after_identity="b", limit=2)
    ] == ["bob", "carol"]
    assert await storage.list_permissions(SVC, m.sid, after_identity=None, limit=0) == []
    assert await storage.list_permissions(OTHER_SVC, m.sid, after_identity=None, limit=10) == []
    assert [
        p.identity
        for p in await storage.list_permissions(SVC, other.sid, after_identity=None, limit=10)
    ] == ["zed"]


async def test_permissions_removed_with_their_object(
    storage: Storage, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = time.time()
    removed = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    expiring = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=10, created_by="s"
    )
    renamed = await storage.create_object(
        SVC, "document", unique_name="d", data=None, ttl=10, created_by="s"
    )
    kept = await storage.create_object(
        SVC, "document", unique_name=None, data=None, ttl=None, created_by="s"
    )
    for obj in (removed, expiring, renamed, kept):
        for identity in ("alice", "bob"):
            await storage.put_permission(
                PermissionRecord(SVC, obj.sid, identity, True, True, False)
            )

    await storage.remove_object(SVC, "list", removed.sid, origin=None)
    assert await storage.list_permissions(SVC, removed.sid, after_identity=None, limit=10) == []
    assert await backend.count(storage, "permissions", "object_sid", [removed.sid]) == 0

    # Reusing the unique name of an expired (not yet swept) object drops its permissions.
    backend.shift_clock(monkeypatch, 20)
    await storage.create_object(
        SVC, "document", unique_name="d", data=None, ttl=None, created_by="s"
    )
    assert await backend.count(storage, "permissions", "object_sid", [renamed.sid]) == 0

    # expire() sweeps the expired map and its permissions.
    assert await backend.count(storage, "permissions", "object_sid", [expiring.sid]) == 2
    events = await storage.expire(t0 + 60, 100)
    assert [e.sid for e in events] == [expiring.sid]
    assert await backend.count(storage, "permissions", "object_sid", [expiring.sid]) == 0
    assert await storage.get_permission(SVC, expiring.sid, "alice") is None

    kept_perms = await storage.list_permissions(SVC, kept.sid, after_identity=None, limit=10)
    assert [p.identity for p in kept_perms] == ["alice", "bob"]


async def test_permissions_persist(backend: Backend) -> None:
    store = backend.make()
    await store.start()
    await store.put_service(ServiceRecord(sid=SVC, account_sid="AC" + "3" * 32))
    doc = await store.create_object(
        SVC, "document", unique_name="d", data={"a": 1}, ttl=None, created_by="s"
    )
    perm = PermissionRecord(SVC, doc.sid, "alice", read=True, write=False, manage=True)
    await store.put_permission(perm)
    await store.close()

    reopened = backend.make()
    await reopened.start()
    try:
        assert await reopened.get_permission(SVC, doc.sid, "alice") == perm
        assert [s.sid for s in await reopened.list_services(after_sid=None, limit=5)] == [SVC]
        listed = await reopened.list_objects(SVC, "document", after_sid=None, limit=5)
        assert [o.sid for o in listed] == [doc.sid]
    finally:
        await reopened.close()


# ---- events --------------------------------------------------------------------------


async def test_events_since(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
    )
    frames = []
    for i in range(5):
        _, ev = await storage.update_document(
            SVC, doc.sid, data={"i": i}, merge=False, if_match=None, ttl=None, origin=None
        )
        frames.append(ev.frame)
    all_events = await storage.events_since(SVC, doc.sid, 0, 100)
    assert all_events is not None
    assert [e.event_id for e in all_events] == [1, 2, 3, 4, 5]
    assert [e.frame for e in all_events] == frames
    some = await storage.events_since(SVC, doc.sid, 2, 2)
    assert some is not None and [e.event_id for e in some] == [3, 4]
    assert await storage.events_since(SVC, doc.sid, 5, 10) == []
    assert await storage.events_since(SVC, "ET" + "9" * 32, 0, 10) is None
    assert await storage.events_since(OTHER_SVC, doc.sid, 0, 10) is None

    # Age-based pruning: everything is older than the retention window at now + 2 days.
    assert await storage.prune_events(time.time() + 2 * 86_400, 100) == 5
    assert await storage.events_since(SVC, doc.sid, 0, 10) is None
    assert await storage.events_since(SVC, doc.sid, 5, 10) == []


async def test_events_pruned_by_count(backend: Backend) -> None:
    """Each write keeps its object's log to `event_retention` events: no sweep needed."""
    store = backend.make(event_retention=3)
    await store.start()
    try:
        doc = await store.create_object(
            SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
        )
        for i in range(6):
            await store.update_document(
                SVC, doc.sid, data={"i": i}, merge=False, if_match=None, ttl=None, origin=None
            )
        assert await store.events_since(SVC, doc.sid, 0, 10) is None
        assert await store.events_since(SVC, doc.sid, 2, 10) is None
        tail = await store.events_since(SVC, doc.sid, 3, 10)
        assert tail is not None and [e.event_id for e in tail] == [4, 5, 6]
        for i in range(6, 200):  # past a few of SQLite's trims
            await store.update_document(
                SVC, doc.sid, data={"i": i}, merge=False, if_match=None, ttl=None, origin=None
            )
        rows = await backend.count(store, "events", "object_sid", [doc.sid])
        assert 3 <= rows <= 3 + backend.log_slack
        assert await store.events_since(SVC, doc.sid, 196, 10) is None
        tail = await store.events_since(SVC, doc.sid, 197, 10)
        assert tail is not None and [e.event_id for e in tail] == [198, 199, 200]
    finally:
        await store.close()


async def test_object_positions(
    storage: Storage, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
    )
    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    fresh = await storage.create_object(
        OTHER_SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
    )
    expiring = await storage.create_object(
        SVC, "map", unique_name=None, data=None, ttl=10, created_by="s"
    )
    removed = await storage.create_object(
        SVC, "stream", unique_name=None, data=None, ttl=None, created_by="s"
    )
    for i in range(3):
        await storage.update_document(
            SVC, doc.sid, data={"i": i}, merge=False, if_match=None, ttl=None, origin=None
        )
    await storage.list_push(SVC, lst.sid, data={}, ttl=None, origin=None, created_by="s")
    await storage.remove_object(SVC, "stream", removed.sid, origin=None)
    unknown = "ET" + "e" * 32
    wanted = [doc.sid, lst.sid, fresh.sid, expiring.sid, removed.sid, unknown, doc.sid]
    assert await storage.object_positions(wanted) == {
        doc.sid: 3,
        lst.sid: 1,
        fresh.sid: 0,
        expiring.sid: 0,
    }
    assert await storage.object_positions({lst.sid}) == {lst.sid: 1}
    assert await storage.object_positions([]) == {}
    many = [f"ET{n:032x}" for n in range(1200)] + [doc.sid]  # more than one SQL batch
    assert await storage.object_positions(many) == {doc.sid: 3}
    # Expired objects are left out before expire() removes them.
    backend.shift_clock(monkeypatch, 20)
    assert await storage.object_positions(wanted) == {doc.sid: 3, lst.sid: 1, fresh.sid: 0}


# ---- durability & concurrency --------------------------------------------------------


async def test_data_survives_restart(backend: Backend) -> None:
    store = backend.make()
    await store.start()
    await store.put_service(ServiceRecord(sid=SVC, account_sid="AC" + "3" * 32, unique_name="svc"))
    doc = await store.create_object(
        SVC, "document", unique_name="d", data={"a": 1}, ttl=None, created_by="s"
    )
    await store.update_document(
        SVC, doc.sid, data={"b": 2}, merge=True, if_match=None, ttl=None, origin=None
    )
    lst = await store.create_object(
        SVC, "list", unique_name="l", data=None, ttl=None, created_by="s"
    )
    await store.list_push(SVC, lst.sid, data={"x": 1}, ttl=None, origin=None, created_by="s")
    await store.remove_item(SVC, "list", lst.sid, 0, if_match=None, origin=None)
    await store.close()

    reopened = backend.make()
    await reopened.start()
    try:
        svc = await reopened.get_service("svc")
        assert svc is not None and svc.sid == SVC
        got = await reopened.get_object(SVC, "document", "d")
        assert got is not None and got.data == {"a": 1, "b": 2} and got.last_event_id == 1
        events = await reopened.events_since(SVC, doc.sid, 0, 10)
        assert events is not None and len(events) == 1
        # The list counter survived: the next index is 1, not 0.
        item, _ = await reopened.list_push(
            SVC, lst.sid, data={}, ttl=None, origin=None, created_by="s"
        )
        assert item.index == 1 and item.last_event_id == 3
    finally:
        await reopened.close()


async def test_use_after_close_raises(backend: Backend) -> None:
    store = backend.make()
    await store.start()
    await store.close()
    with pytest.raises(RuntimeError):
        await store.get_service(SVC)
    with pytest.raises(RuntimeError):
        await store.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")


async def test_concurrent_merges(storage: Storage) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
    )
    results = await asyncio.gather(
        *(
            storage.update_document(
                SVC, doc.sid, data={f"k{i}": i}, merge=True, if_match=None, ttl=None, origin=None
            )
            for i in range(200)
        )
    )
    assert sorted(ev.event_id for _, ev in results) == list(range(1, 201))
    final = await storage.get_object(SVC, "document", doc.sid)
    assert final is not None and final.last_event_id == 200
    assert final.data == {f"k{i}": i for i in range(200)}
    events = await storage.events_since(SVC, doc.sid, 0, 1000)
    assert events is not None and [e.event_id for e in events] == list(range(1, 201))


# ---- SQLite only ------------------------------------------------------------------------


@pytest.fixture
async def writer_thread_storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(tmp_path / "sync.db", inline=False)
    await store.start()
    yield store
    await store.close()


async def test_sqlite_full_sync_is_wal_and_durable(tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    store = SQLiteStorage(path, synchronous="FULL")
    assert not store.inline  # fsyncing commits run on the writer thread
    await store.start()
    doc = await store.create_object(
        SVC, "document", unique_name="d", data={"a": 1}, ttl=None, created_by="s"
    )
    await store.close()
    reopened = SQLiteStorage(path)
    await reopened.start()
    try:
        assert await reopened.get_object(SVC, "document", "d") == doc
    finally:
        await reopened.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_old_files_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "perms.db"
    store = SQLiteStorage(path)
    await store.start()
    doc = await store.create_object(
        SVC, "document", unique_name="d", data={"a": 1}, ttl=None, created_by="s"
    )
    await store.close()
    perm = PermissionRecord(SVC, doc.sid, "alice", read=True, write=False, manage=True)

    # A data dir from before permissions existed: the table is created on start. And one
    # whose event log had an index on created_at (every write paid for it): it is dropped.
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE permissions")
        conn.execute("CREATE INDEX events_created_at ON events (created_at)")
        conn.commit()
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "permissions" not in tables
    upgraded = SQLiteStorage(path)
    await upgraded.start()
    try:
        got = await upgraded.get_object(SVC, "document", "d")
        assert got is not None and got.data == {"a": 1}
        assert await upgraded.get_permission(SVC, doc.sid, "alice") is None
        await upgraded.put_permission(perm)
        assert await upgraded.get_permission(SVC, doc.sid, "alice") == perm
    finally:
        await upgraded.close()
    with closing(sqlite3.connect(path)) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "events_created_at" not in indexes and "items_by_key" in indexes


def object_row(path: Path, sid: str) -> tuple[int, float]:
    """(last_event_id, date_updated) of the object's own row in a closed SQLite file."""
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute(
            "SELECT last_event_id, date_updated FROM objects WHERE sid = ?", (sid,)
        ).fetchone()
    return int(row[0]), float(row[1])


async def test_sqlite_item_writes_leave_the_revision_in_the_log(tmp_path: Path) -> None:
    """A map or list item write commits its item and its event, not the object's row; the
    object's revision and date_updated still come back right from a cold start."""
    path = tmp_path / "log.db"
    store = SQLiteStorage(path)
    await store.start()
    m = await store.create_object(SVC, "map", unique_name="m", data=None, ttl=None, created_by="s")
    lst = await store.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    for n in range(5):
        await put_map_item(store, "m", f"k{n}", {"n": n})
    await store.remove_item(SVC, "map", m.sid, "k0", if_match=None, origin=None)
    _, last = await put_map_item(store, m.sid, "k1", {"n": 11})
    pushed, _ = await store.list_push(
        SVC, lst.sid, data={"a": 1}, ttl=None, origin=None, created_by="s"
    )
    await store.set_item(
        SVC,
        "list",
        lst.sid,
        pushed.index,
        data={"a": 2},
        merge=False,
        if_match=None,
        ttl=None,
        origin=None,
        created_by="s",
    )
    warm = await store.get_object(SVC, "map", m.sid)
    warm_list = await store.get_object(SVC, "list", lst.sid)
    await store.close()
    assert warm is not None and warm.last_event_id == last.event_id == 7
    assert warm_list is not None and warm_list.last_event_id == 2

    assert object_row(path, m.sid) == (0, m.date_updated)  # the row was never rewritten
    cold = SQLiteStorage(path)
    await cold.start()
    try:
        assert await cold.get_object(SVC, "map", "m") == warm
        assert await cold.get_object(SVC, "list", lst.sid) == warm_list
        assert await cold.object_positions([m.sid, lst.sid]) == {m.sid: 7, lst.sid: 2}
        assert [
            o.last_event_id for o in await cold.list_objects(SVC, "map", after_sid=None, limit=10)
        ] == [7]
        assert await cold.events_since(SVC, m.sid, 7, 10) == []
        _, event = await put_map_item(cold, m.sid, "k2", {"n": 22})
        assert event.event_id == 8
    finally:
        await cold.close()


async def test_sqlite_pruning_an_idle_objects_log_keeps_its_revision(tmp_path: Path) -> None:
    """When pruning by age takes an object's newest event, its row takes the revision and
    date_updated that only the log held."""
    path = tmp_path / "idle.db"
    store = SQLiteStorage(path, event_retention_seconds=100)
    await store.start()
    m = await store.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
    for n in range(3):
        await put_map_item(store, m.sid, "k", {"n": n})
    before = await store.get_object(SVC, "map", m.sid)
    assert before is not None and before.last_event_id == 3
    assert await store.prune_events(before.date_updated + 101, 100) == 3
    assert await store.events_since(SVC, m.sid, 0, 10) is None  # the log is gone
    await store.close()

    assert object_row(path, m.sid) == (3, before.date_updated)
    cold = SQLiteStorage(path)
    await cold.start()
    try:
        assert await cold.get_object(SVC, "map", m.sid) == before
        _, event = await put_map_item(cold, m.sid, "k", {"n": 3})
        assert event.event_id == 4
    finally:
        await cold.close()


async def test_sqlite_storage_keeps_its_file_to_itself(tmp_path: Path) -> None:
    """A second storage (another server on the same data directory) is refused with a clear
    error while the first runs: what one keeps in memory must be what the file holds."""
    path = tmp_path / "owned.db"
    first = SQLiteStorage(path)
    await first.start()
    try:
        await first.create_object(SVC, "map", unique_name="m", data=None, ttl=None, created_by="s")
        with pytest.raises(RuntimeError, match="in use by another process"):
            await SQLiteStorage(path, inline=True).start()
        with pytest.raises(RuntimeError, match="in use by another process"):
            await SQLiteStorage(path, inline=False).start()
        assert await first.get_object(SVC, "map", "m") is not None  # the first goes on
    finally:
        await first.close()
    second = SQLiteStorage(path)
    await second.start()  # once the first has closed
    try:
        assert await second.get_object(SVC, "map", "m") is not None
    finally:
        await second.close()


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "thread"])
async def test_sqlite_records_in_memory_stay_true_past_their_bound(
    tmp_path: Path, inline: bool
) -> None:
    """With room for two objects and two items, writes and reads across five maps (each
    evicting others) read back exactly what was last written; a failed write changes nothing."""
    store = SQLiteStorage(tmp_path / "small.db", inline=inline, cache_size=2)
    await store.start()
    try:
        maps = [
            await store.create_object(
                SVC, "map", unique_name=f"m{i}", data=None, ttl=None, created_by="s"
            )
            for i in range(5)
        ]
        expected: dict[tuple[str, str], tuple[int, int]] = {}  # (map, key) -> (n, revision)
        for n in range(40):
            m = maps[(n * 3) % 5]
            key = f"k{n % 3}"
            item, _ = await put_map_item(
                store, m.sid if n % 2 else f"m{(n * 3) % 5}", key, {"n": n}
            )
            expected[(m.sid, key)] = (n, item.last_event_id)
            probe = maps[(n * 7) % 5]
            for (sid, k), (want, rev) in expected.items():
                if sid == probe.sid:
                    got = await store.get_item(SVC, "map", sid, k)
                    assert (got.data["n"], got.last_event_id) == (want, rev)
        with pytest.raises(SyncError) as failed:
            await store.set_item(
                SVC,
                "map",
                maps[0].sid,
                "k0",
                data={"n": -1},
                merge=False,
                if_match="999",
                ttl=None,
                origin=None,
                created_by="s",
            )
        assert failed.value.code == 54205  # map item revision mismatch
        for m in maps:
            obj = await store.get_object(SVC, "map", m.sid)
            revisions = [rev for (sid, _), (_, rev) in expected.items() if sid == m.sid]
            assert obj is not None and obj.last_event_id == max(revisions)
            for (sid, k), (want, rev) in expected.items():
                if sid == m.sid:
                    got = await store.get_item(SVC, "map", sid, k)
                    assert (got.data["n"], got.last_event_id) == (want, rev)
        assert len(store._recent) <= 4
    finally:
        await store.close()


async def test_sqlite_prunes_by_age_in_the_order_events_were_stored(tmp_path: Path) -> None:
    """Without an index on created_at, pruning walks the log in insertion order: across
    objects, oldest first, and only events older than the window."""
    store = SQLiteStorage(tmp_path / "prune.db", event_retention_seconds=100)
    await store.start()
    try:
        docs = [
            await store.create_object(
                SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
            )
            for _ in range(2)
        ]
        for i in range(3):  # events 1..3 of each, interleaved: a1 b1 a2 b2 a3 b3
            for doc in docs:
                await store.update_document(
                    SVC, doc.sid, data={"i": i}, merge=False, if_match=None, ttl=None, origin=None
                )
        stored = await store._read(
            lambda conn: conn.execute("SELECT created_at FROM events ORDER BY rowid").fetchall()
        )
        window_ends = stored[3][0] + 100 + 1e-6  # past the 4th event's age limit, not the 5th's
        assert await store.prune_events(window_ends, 100) == 4
        a, b = docs
        assert await store.events_since(SVC, a.sid, 1, 10) is None  # its event 2 is gone
        assert [e.event_id for e in await store.events_since(SVC, a.sid, 2, 10) or []] == [3]
        assert [e.event_id for e in await store.events_since(SVC, b.sid, 2, 10) or []] == [3]
        assert await store.prune_events(window_ends, 100) == 0
    finally:
        await store.close()


async def test_failing_op_does_not_roll_back_batch(writer_thread_storage: SQLiteStorage) -> None:
    """Holds the writer thread to build one batch (inline batches are per loop turn)."""
    storage = writer_thread_storage
    doc = await storage.create_object(
        SVC, "document", unique_name=None, data={"v": 0}, ttl=None, created_by="s"
    )
    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )

    gate, started = threading.Event(), threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        started.set()
        gate.wait(10)

    def write_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE objects SET data = ? WHERE sid = ?", ('{"hacked":true}', doc.sid))
        raise SyncError("boom")

    blocked = asyncio.ensure_future(storage._run(blocker))
    assert await asyncio.to_thread(started.wait, 10)
    tasks = [
        asyncio.ensure_future(
            storage.update_document(
                SVC, doc.sid, data={"a": 1}, merge=True, if_match="0", ttl=None, origin=None
            )
        ),
        asyncio.ensure_future(
            storage.update_document(
                SVC, doc.sid, data={"b": 2}, merge=True, if_match="0", ttl=None, origin=None
            )
        ),
        asyncio.ensure_future(storage._run(write_then_fail)),
        asyncio.ensure_future(
            storage.list_push(SVC, lst.sid, data={"n": 1}, ttl=None, origin=None, created_by="s")
        ),
    ]
    await asyncio.sleep(0)  # every task enqueues its job before the writer is released
    batches_before = storage._batch_count
    gate.set()
    await blocked
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # The blocker's batch plus exactly one batch for all four jobs.
    assert storage._batch_count == batches_before + 2

    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], DocumentRevisionMismatchError)
    assert isinstance(results[2], SyncError) and str(results[2]).startswith("boom")
    assert not isinstance(results[3], BaseException)

    final = await storage.get_object(SVC, "document", doc.sid)
    assert final is not None and final.data == {"v": 0, "a": 1} and final.last_event_id == 1
    item = await storage.get_item(SVC, "list", lst.sid, 0)
    assert item.data == {"n": 1}


async def test_inline_mode_commits_the_first_write_of_a_turn_then_one_batch(
    tmp_path: Path,
) -> None:
    """The first write of a turn of the loop commits at once (its caller resumes without
    waiting a turn); the writes after it in the same turn share one transaction."""
    store = SQLiteStorage(tmp_path / "inline.db", inline=True, write_log=False)
    await store.start()
    try:
        doc = await store.create_object(
            SVC, "document", unique_name=None, data={"v": 0}, ttl=None, created_by="s"
        )
        before = store._batch_count
        results = await asyncio.gather(
            store.update_document(
                SVC, doc.sid, data={"a": 1}, merge=True, if_match=None, ttl=None, origin=None
            ),
            store.update_document(
                SVC, doc.sid, data={"b": 2}, merge=True, if_match="999", ttl=None, origin=None
            ),
            store.update_document(
                SVC, doc.sid, data={"c": 3}, merge=True, if_match=None, ttl=None, origin=None
            ),
            return_exceptions=True,
        )
        assert store._batch_count == before + 2  # the first alone, the other two together
        assert isinstance(results[1], DocumentRevisionMismatchError)
        final = await store.get_object(SVC, "document", doc.sid)
        assert final is not None and final.data == {"v": 0, "a": 1, "c": 3}
        assert final.last_event_id == 2
    finally:
        await store.close()


async def test_inline_checkpoints_run_off_the_loop_and_keep_the_wal_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inline, SQLite's own checkpoint (which fsyncs, stalling whoever commits) is off: the
    storage checkpoints on a worker thread. While one runs, the loop goes on, hot reads are
    answered from memory, writes wait and then commit as one batch; checkpoints keep coming,
    so the WAL stays near its threshold, and nothing written is lost."""
    path = tmp_path / "ckpt.db"
    store = SQLiteStorage(path, inline=True, write_log=False)
    await store.start()
    gate, entered = threading.Event(), threading.Event()
    real = SQLiteStorage._checkpoint_wal

    def held_checkpoint(conn: sqlite3.Connection) -> int:
        entered.set()
        assert gate.wait(10)
        return real(conn)

    try:
        m = await store.create_object(
            SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
        )
        monkeypatch.setattr(store, "_checkpoint_wal", held_checkpoint)
        written, last_k0 = 0, -1
        while store._checkpoint is None:
            if written % 50 == 0:
                last_k0 = written
            await put_map_item(store, m.sid, f"k{written % 50}", {"n": written})
            written += 1
            assert written < 2_000, "no checkpoint started"
        assert await asyncio.to_thread(entered.wait, 10)
        # The worker holds the connection, stuck in the checkpoint: the loop is not.
        hot = await asyncio.wait_for(store.get_item(SVC, "map", m.sid, "k0"), 1)
        assert hot.data == {"n": last_k0}
        batches = store._batch_count
        late = [
            asyncio.ensure_future(put_map_item(store, m.sid, "late", {"i": i})) for i in range(3)
        ]
        cold = asyncio.ensure_future(
            store.items_page(
                SVC, "map", m.sid, start=None, inclusive=True, page_size=100, order="asc"
            )
        )
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in late) and not cold.done()
        assert store._batch_count == batches
        gate.set()
        results = await asyncio.wait_for(asyncio.gather(*late), 10)
        assert [item.data for item, _ in results] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert store._batch_count == batches + 1  # the three waited, then one transaction
        assert len((await cold).items) == 51
        assert store._checkpoint_count == 1

        for i in range(1_500):  # about 3 WAL pages a write: 4,500 pages without checkpoints
            await put_map_item(store, m.sid, f"k{i % 50}", {"m": i})
        assert store._checkpoint_count >= 3
        wal_pages = (tmp_path / "ckpt.db-wal").stat().st_size // 4096
        assert wal_pages < 1_600, wal_pages
    finally:
        gate.set()
        await store.close()

    reopened = SQLiteStorage(path, inline=True)
    await reopened.start()
    try:
        item = await reopened.get_item(SVC, "map", m.sid, "late")
        assert item.data == {"i": 2}
        last = await reopened.get_item(SVC, "map", m.sid, "k49")
        assert last.data == {"m": 1_499}
    finally:
        await reopened.close()


async def test_inline_writes_go_on_when_no_checkpoint_thread_can_start(tmp_path: Path) -> None:
    """With the loop's executor shut down (the loop is closing), the write that would start a
    checkpoint is still committed and acknowledged; the checkpoint is left to the close."""
    store = SQLiteStorage(tmp_path / "closing.db", inline=True)
    await store.start()
    try:
        m = await store.create_object(
            SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
        )
        await asyncio.get_running_loop().shutdown_default_executor()
        for n in range(400):  # past the first checkpoint's 300 commits
            put = put_map_item(store, m.sid, f"k{n % 20}", {"n": n})
            item, _ = await asyncio.wait_for(put, 5)
            assert item.data == {"n": n}
        assert store._checkpoint is None and store._checkpoint_count == 0
    finally:
        await store.close()
    reopened = SQLiteStorage(tmp_path / "closing.db", inline=True)
    await reopened.start()
    try:
        assert (await reopened.get_item(SVC, "map", m.sid, "k19")).data == {"n": 399}
    finally:
        await reopened.close()


# ---- SQLite's write log ------------------------------------------------------------------


def crash(store: SQLiteStorage) -> None:
    """The process dies: nothing more is applied, nothing is closed cleanly."""
    if store._apply_timer is not None:
        store._apply_timer.cancel()
    store._accepting = False
    assert store._conn is not None and store._log_fd is not None
    store._conn.close()
    store._conn = None
    os.close(store._log_fd)
    store._log_fd = None


async def logged_writes(store: SQLiteStorage) -> tuple[str, str]:
    """A map with items k0..k4 (k2 removed) and a document written twice; the writes
    acknowledged, none applied to SQLite yet. Returns (map sid, document sid)."""
    m = await store.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
    doc = await store.create_object(
        SVC, "document", unique_name="doc", data={"v": 0}, ttl=None, created_by="s"
    )
    for i in range(5):  # a new key's write first reads SQL (an expired row may hold it)
        await put_map_item(store, m.sid, f"k{i}", {"i": -1})
    assert len(store._pending) == 1
    for i in range(5):
        await put_map_item(store, m.sid, f"k{i}", {"i": i})
    await store.remove_item(SVC, "map", m.sid, "k2", if_match=None, origin=None)
    for v in (1, 2):
        await store.update_document(
            SVC, doc.sid, data={"v": v}, merge=False, if_match=None, ttl=None, origin=None
        )
    assert len(store._pending) == 9  # acknowledged, in the log, not in SQLite
    return m.sid, doc.sid


async def assert_logged_writes(store: SQLiteStorage, map_sid: str, doc_sid: str) -> None:
    page = await store.items_page(
        SVC, "map", map_sid, start=None, inclusive=True, page_size=10, order="asc"
    )
    assert [(i.key, i.data) for i in page.items] == [
        ("k0", {"i": 0}),
        ("k1", {"i": 1}),
        ("k3", {"i": 3}),
        ("k4", {"i": 4}),
    ]
    events = await store.events_since(SVC, map_sid, 0, 100)
    assert events is not None and [e.event_id for e in events] == list(range(1, 12))
    assert events[-1].name == "item_removed"
    doc = await store.get_object(SVC, "document", doc_sid)
    assert doc is not None and doc.data == {"v": 2} and doc.last_event_id == 2


async def test_write_log_acknowledges_before_sqlite_and_reads_see_the_writes(
    tmp_path: Path,
) -> None:
    """Item and document writes return once logged; a read that needs SQL applies them
    first (one transaction for them all), so nothing acknowledged is ever missing from it."""
    store = SQLiteStorage(tmp_path / "log.db", inline=True)
    await store.start()
    try:
        map_sid, doc_sid = await logged_writes(store)
        batches = store._batch_count
        await assert_logged_writes(store, map_sid, doc_sid)
        assert store._pending == [] and store._batch_count == batches + 1
        # Left alone, they are applied a couple of milliseconds later.
        await put_map_item(store, map_sid, "k1", {"i": 5})
        assert len(store._pending) == 1
        await asyncio.sleep(sqlite_module._APPLY_AFTER * 5)
        assert store._pending == []
    finally:
        await store.close()
    assert not (tmp_path / "log.db-log").exists()  # a clean close leaves no log


async def test_write_log_brings_back_acknowledged_writes_after_a_crash(tmp_path: Path) -> None:
    """A crash before the logged writes reach SQLite loses none of them: the next start
    applies them from the log, and empties it."""
    path = tmp_path / "crash.db"
    store = SQLiteStorage(path, inline=True)
    await store.start()
    map_sid, doc_sid = await logged_writes(store)
    crash(store)
    assert (tmp_path / "crash.db-log").stat().st_size > 0

    for inline in (False, True):  # the writer-thread mode reads the log as well
        reopened = SQLiteStorage(path, inline=inline)
        await reopened.start()
        try:
            assert (tmp_path / "crash.db-log").stat().st_size == 0
            await assert_logged_writes(reopened, map_sid, doc_sid)
            if inline:  # new writes go on from there
                item, event = await put_map_item(reopened, map_sid, "k1", {"i": 9})
                assert event.event_id == 12 and item.last_event_id == 12
        finally:
            await reopened.close()


async def test_write_log_skips_applied_records_and_a_torn_tail(tmp_path: Path) -> None:
    """Records the database already holds (applied, the log not yet emptied) are not applied
    twice; bytes after the last whole record (a write cut short) are ignored."""
    path = tmp_path / "torn.db"
    store = SQLiteStorage(path, inline=True)
    await store.start()
    map_sid, doc_sid = await logged_writes(store)
    store._apply_pending()  # in SQLite now, and still in the log (under its size limit)
    await put_map_item(store, map_sid, "k1", {"i": 5})  # only in the log
    crash(store)
    log_path = tmp_path / "torn.db-log"
    whole = log_path.read_bytes()
    with log_path.open("ab") as f:
        f.write(whole[:20])  # the start of a record, cut short
    reopened = SQLiteStorage(path, inline=True)
    await reopened.start()
    try:
        k1 = await reopened.get_item(SVC, "map", map_sid, "k1")
        assert k1.data == {"i": 5} and k1.last_event_id == 12
        events = await reopened.events_since(SVC, map_sid, 0, 100)
        assert events is not None and [e.event_id for e in events] == list(range(1, 13))
        doc = await reopened.get_object(SVC, "document", doc_sid)
        assert doc is not None and doc.last_event_id == 2
    finally:
        await reopened.close()


async def test_write_log_updates_a_hot_row_once_per_batch_and_keeps_every_event(
    tmp_path: Path,
) -> None:
    """Of the updates of one row waiting in the log, only the last is applied; every event
    is stored, and rows between them are untouched."""
    update_key = sqlite_module._UPDATE_ITEM["key"]
    records: list[list[sqlite_module.Statement]] = [
        [(update_key, ({"n": n}, n, 0.0, None, "MP1", "hot")), ("INSERT ev", (n,))] for n in (1, 2)
    ]
    records.insert(1, [(update_key, ({"n": 0}, 9, 0.0, None, "MP1", "cold"))])
    kept = sqlite_module._coalesced(records)
    assert kept == [
        ("INSERT ev", (1,)),
        (update_key, ({"n": 0}, 9, 0.0, None, "MP1", "cold")),
        (update_key, ({"n": 2}, 2, 0.0, None, "MP1", "hot")),
        ("INSERT ev", (2,)),
    ]
    assert sqlite_module._coalesced(records[:1]) == records[0]

    store = SQLiteStorage(tmp_path / "hot.db", inline=True)
    await store.start()
    try:
        m = await store.create_object(
            SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
        )
        await put_map_item(store, m.sid, "hot", {"n": 0})
        await put_map_item(store, m.sid, "other", {"n": 0})
        store._apply_pending()
        for n in range(1, 11):
            await put_map_item(store, m.sid, "hot", {"n": n})
        await put_map_item(store, m.sid, "other", {"n": 1})
        assert len(store._pending) == 11
        page = await store.items_page(
            SVC, "map", m.sid, start=None, inclusive=True, page_size=10, order="asc"
        )
        assert [(i.key, i.data, i.last_event_id) for i in page.items] == [
            ("hot", {"n": 10}, 12),
            ("other", {"n": 1}, 13),
        ]
        events = await store.events_since(SVC, m.sid, 0, 100)
        assert events is not None and [e.event_id for e in events] == list(range(1, 14))
    finally:
        await store.close()


async def test_write_log_that_cannot_be_applied_fails_calls_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """When SQLite refuses the logged writes (here: their table is gone), they stay in the
    log and in memory: calls that need SQL fail with that error until the writes can be
    applied, and then everything acknowledged is there."""
    store = SQLiteStorage(tmp_path / "fail.db", inline=True)
    await store.start()
    try:
        m = await store.create_object(
            SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
        )
        await put_map_item(store, m.sid, "a", {"n": 1})
        assert store._conn is not None
        store._conn.execute("ALTER TABLE events RENAME TO events_away")
        with pytest.raises(sqlite3.OperationalError):
            await store.items_page(
                SVC, "map", m.sid, start=None, inclusive=True, page_size=10, order="asc"
            )
        with pytest.raises(sqlite3.OperationalError):
            await store.create_object(
                SVC, "map", unique_name=None, data=None, ttl=None, created_by="s"
            )
        assert len(store._pending) == 1 and store._apply_failure is not None
        assert (await store.get_item(SVC, "map", m.sid, "a")).data == {"n": 1}  # from memory
        store._conn.execute("ALTER TABLE events_away RENAME TO events")
        page = await store.items_page(
            SVC, "map", m.sid, start=None, inclusive=True, page_size=10, order="asc"
        )
        assert [i.data for i in page.items] == [{"n": 1}]
        assert store._pending == [] and store._apply_failure is None
        events = await store.events_since(SVC, m.sid, 0, 10)
        assert events is not None and [e.event_id for e in events] == [1]

        # Still refused when the storage closes: the log keeps them for its next start.
        await put_map_item(store, m.sid, "a", {"n": 2})
        store._conn.execute("ALTER TABLE events RENAME TO events_away")
        await store.close()
        assert (tmp_path / "fail.db-log").stat().st_size > 0
        with closing(sqlite3.connect(tmp_path / "fail.db")) as conn:
            conn.execute("ALTER TABLE events_away RENAME TO events")
        await store.start()
        assert store._pending == []
        assert (await store.get_item(SVC, "map", m.sid, "a")).data == {"n": 2}
        await put_map_item(store, m.sid, "a", {"n": 3})
        store._apply_pending()
        events = await store.events_since(SVC, m.sid, 0, 10)
        assert events is not None and [e.event_id for e in events] == [1, 2, 3]
    finally:
        await store.close()


# ---- PostgreSQL only: migrations, several server processes on one database --------------


@pytest.fixture
async def pg_pair(pg_url: str) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """Two storages on one (emptied) database, like two server processes."""
    await empty_database(pg_url)
    first, second = PostgresStorage(pg_url, max_pool=8), PostgresStorage(pg_url, max_pool=8)
    await asyncio.gather(first.start(), second.start())
    yield first, second
    await asyncio.gather(first.close(), second.close())


def assert_gap_free(events: list[StoredEvent], first: int = 1) -> None:
    """Per object, the event ids are exactly first, first + 1, ... with no duplicate."""
    by_object: dict[str, list[int]] = {}
    for event in events:
        by_object.setdefault(event.sid, []).append(event.event_id)
    for sid, ids in by_object.items():
        assert sorted(ids) == list(range(first, first + len(ids))), sid


async def test_pg_migrations_concurrent_and_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    url = await asyncio.to_thread(services.create_database)  # its own, never migrated
    try:
        stores = [PostgresStorage(url, min_pool=1) for _ in range(3)]
        await asyncio.gather(*(s.start() for s in stores))
        try:
            # Every node works on the schema, whichever applied it.
            docs = await asyncio.gather(
                *(
                    s.create_object(
                        SVC, "document", unique_name=None, data={"n": n}, ttl=None, created_by="s"
                    )
                    for n, s in enumerate(stores)
                )
            )
            for store in stores:
                listed = await store.list_objects(SVC, "document", after_sid=None, limit=10)
                assert {o.sid for o in listed} == {d.sid for d in docs}
        finally:
            await asyncio.gather(*(s.close() for s in stores))

        # A release with a new migration: applied once by whichever of three nodes gets the
        # lock first (a second run of CREATE TABLE would fail), never again on restart.
        extra = (
            MIGRATIONS[-1][0] + 1,
            "CREATE TABLE sync_test_extra (x INTEGER); INSERT INTO sync_test_extra VALUES (1);",
        )
        monkeypatch.setattr(postgres_module, "MIGRATIONS", (*MIGRATIONS, extra))
        for _ in range(2):
            stores = [PostgresStorage(url, min_pool=1) for _ in range(3)]
            await asyncio.gather(*(s.start() for s in stores))
            await asyncio.gather(*(s.close() for s in stores))

        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT version, count(*) AS n FROM sync_schema_migrations GROUP BY version "
                "ORDER BY version"
            )
            assert [(r["version"], r["n"]) for r in rows] == [
                (version, 1) for version, _ in (*MIGRATIONS, extra)
            ]
            assert await conn.fetchval("SELECT count(*) FROM sync_test_extra") == 1
            applied_at = await conn.fetchval("SELECT min(applied_at) FROM sync_schema_migrations")
            assert applied_at is not None
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(services.drop_database, url)


async def test_pg_two_nodes_write_one_list_and_map(
    pg_pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    a, b = pg_pair
    lst = await a.create_object(SVC, "list", unique_name=None, data=None, ttl=None, created_by="s")
    m = await b.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
    per_node = 40

    async def push(store: PostgresStorage, n: int) -> tuple[int | None, StoredEvent]:
        item, event = await store.list_push(
            SVC, lst.sid, data={"n": n}, ttl=None, origin=None, created_by="s"
        )
        return item.index, event

    async def set_key(store: PostgresStorage, n: int) -> StoredEvent:
        tag = "a" if store is a else "b"
        _, event = await store.set_item(
            SVC,
            "map",
            m.sid,
            f"k{n % 5}",
            data={f"{tag}{n}": n},
            merge=True,  # read-modify-write: a lost update would drop a field
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        )
        return event

    pushed, set_events = await asyncio.gather(
        asyncio.gather(*(push(store, n) for n in range(per_node) for store in (a, b))),
        asyncio.gather(*(set_key(store, n) for n in range(per_node) for store in (a, b))),
    )
    total = 2 * per_node

    indexes = [index for index, _ in pushed]
    assert sorted(i for i in indexes if i is not None) == list(range(total))
    list_events = [event for _, event in pushed]
    assert_gap_free(list_events)
    assert_gap_free(set_events)
    assert {e.sid for e in list_events} == {lst.sid} and {e.sid for e in set_events} == {m.sid}
    # Each push's event carries its own index: the index counter and the event id moved together.
    for index, event in pushed:
        assert frame(event)["item"]["index"] == index

    for store, obj, events in ((b, lst, list_events), (a, m, set_events)):
        logged = await store.events_since(SVC, obj.sid, 0, 1000)
        assert logged is not None
        assert [e.event_id for e in logged] == list(range(1, total + 1))
        by_id = {e.event_id: e.frame for e in events}
        assert [e.frame for e in logged] == [by_id[e.event_id] for e in logged]
        positions = await store.object_positions([obj.sid])
        assert positions == {obj.sid: total}
    # Every merge survived, on every key.
    for key in range(5):
        item = await a.get_item(SVC, "map", m.sid, f"k{key}")
        expected = {f"{tag}{n}": n for n in range(per_node) if n % 5 == key for tag in "ab"}
        assert item.data == expected and len(expected) == total // 5


async def test_pg_two_nodes_merge_one_document(
    pg_pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    a, b = pg_pair
    doc = await a.create_object(
        SVC, "document", unique_name=None, data={}, ttl=None, created_by="s"
    )
    results = await asyncio.gather(
        *(
            store.update_document(
                SVC, doc.sid, data={f"k{n}": n}, merge=True, if_match=None, ttl=None, origin=None
            )
            for n, store in zip(range(60), itertools.cycle((a, b)), strict=False)
        )
    )
    assert_gap_free([event for _, event in results])
    final = await b.get_object(SVC, "document", doc.sid)
    assert final is not None and final.data == {f"k{n}": n for n in range(60)}
    assert final.last_event_id == 60
    # Each event's previous_data is the state the one before it left.
    ordered = sorted((event for _, event in results), key=lambda e: e.event_id)
    for before, after in itertools.pairwise(ordered):
        assert frame(after)["previous_data"] == frame(before)["data"]


async def test_pg_two_nodes_race_for_a_unique_name(
    pg_pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    a, b = pg_pair
    results = await asyncio.gather(
        *(
            store.create_object(
                SVC, "map", unique_name="race", data=None, ttl=None, created_by=str(n)
            )
            for n, store in zip(range(10), itertools.cycle((a, b)), strict=False)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, UniqueNameExistsError) for r in results if r not in winners)
    got = await b.get_object(SVC, "map", "race")
    assert got is not None and got.sid == winners[0].sid


async def test_pg_expire_from_two_nodes_reports_each_removal_once(
    pg_pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    a, b = pg_pair
    t0 = time.time()
    lists = [
        await a.create_object(SVC, "list", unique_name=None, data=None, ttl=None, created_by="s")
        for _ in range(3)
    ]
    for lst in lists:
        for n in range(10):
            await b.list_push(
                SVC, lst.sid, data={"n": n}, ttl=50 if n % 2 else None, origin=None, created_by="s"
            )
    doomed = [
        await b.create_object(
            SVC, "document", unique_name=None, data={"d": n}, ttl=50, created_by="s"
        )
        for n in range(4)
    ]
    # Writers keep pushing (they still see the items as live) while both nodes expire.
    sweeps, pushed = await asyncio.gather(
        asyncio.gather(*(store.expire(t0 + 100, 100) for store in (a, b, a, b, a, b))),
        asyncio.gather(
            *(
                a.list_push(SVC, lst.sid, data={"late": n}, ttl=None, origin=None, created_by="s")
                for lst in lists
                for n in range(5)
            )
        ),
    )
    swept = [event for events in sweeps for event in events]
    late = [event for _, event in pushed]

    keys = Counter((e.sid, e.event_id) for e in swept)
    assert all(n == 1 for n in keys.values()), keys
    removed_items = [e for e in swept if frame(e)["name"] == "item_removed"]
    assert len(removed_items) == 3 * 5
    assert {e.sid for e in swept if frame(e)["name"] == "removed"} == {d.sid for d in doomed}
    assert await a.expire(t0 + 100, 100) == [] and await b.expire(t0 + 100, 100) == []

    for lst in lists:
        # Pushes and expiry removals share one gap-free sequence per list.
        mine = [e for e in removed_items + late if e.sid == lst.sid]
        assert sorted(e.event_id for e in mine) == list(range(11, 11 + 5 + 5))
        logged = await a.events_since(SVC, lst.sid, 10, 100)
        assert logged is not None and [e.event_id for e in logged] == list(range(11, 21))
        page = await b.items_page(
            SVC, "list", lst.sid, start=None, inclusive=True, page_size=100, order="asc"
        )
        assert [it.index for it in page.items] == [0, 2, 4, 6, 8, *range(10, 15)]
    for doc in doomed:
        assert await a.get_object(SVC, "document", doc.sid) is None


async def test_pg_expire_skips_while_another_node_expires(
    pg_pair: tuple[PostgresStorage, PostgresStorage], pg_url: str
) -> None:
    a, _ = pg_pair
    t0 = time.time()
    doc = await a.create_object(SVC, "document", unique_name=None, data={}, ttl=5, created_by="s")
    holder = await asyncpg.connect(pg_url)
    try:
        async with holder.transaction():
            assert await holder.fetchval(
                "SELECT pg_try_advisory_xact_lock($1)", postgres_module.EXPIRE_LOCK
            )
            assert await a.expire(t0 + 60, 100) == []  # "another node" holds the sweep
        events = await a.expire(t0 + 60, 100)
    finally:
        await holder.close()
    assert [(e.sid, e.event_id) for e in events] == [(doc.sid, 1)]


async def test_pg_reads_see_only_committed_writes_in_order(
    pg_pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    """A reader on another node polling object_positions/events_since never sees a hole."""
    a, b = pg_pair
    m = await a.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
    done = asyncio.Event()
    observed: list[list[int]] = []

    async def reader() -> None:
        while not done.is_set():
            position = (await b.object_positions([m.sid]))[m.sid]
            events = await b.events_since(SVC, m.sid, 0, 1000)
            assert events is not None
            ids = [e.event_id for e in events]
            assert ids == list(range(1, len(ids) + 1))
            assert len(ids) >= position
            observed.append(ids)
            await asyncio.sleep(0)

    async def writer(n: int) -> None:
        await a.set_item(
            SVC,
            "map",
            m.sid,
            f"k{n}",
            data={},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        )

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(50)))
    done.set()
    await task
    assert observed  # the reader ran while the writes were under way
    final = await b.events_since(SVC, m.sid, 0, 1000)
    assert final is not None and [e.event_id for e in final] == list(range(1, 51))


# ---- webhook outbox: in the write's transaction ---------------------------------------------


def hook_for(sid: str) -> Any:
    def hook(of: Any) -> WebhookDelivery:
        name = of.name if isinstance(of, StoredEvent) else "created"
        return WebhookDelivery(sid or of.sid, "http://127.0.0.1:9/hook", {"EventType": name})

    return hook


def failing_hook(of: Any) -> WebhookDelivery:
    raise RuntimeError("the transaction fails after the change's statements")


async def outbox_rows(backend: Backend, storage: Storage) -> list[tuple[str, str]]:
    """(object_sid, EventType) of every outbox row, oldest first, read straight from the file
    (through `storage`'s connection) or database."""
    sql = "SELECT object_sid, params FROM webhook_outbox ORDER BY seq"
    if backend.pg_url is not None:
        conn = await asyncpg.connect(backend.pg_url)
        try:
            rows = [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()
    else:
        assert isinstance(storage, SQLiteStorage)
        rows = await storage._read(lambda conn: conn.execute(sql).fetchall())
    return [(sid, orjson.loads(params)["EventType"]) for sid, params in rows]


async def test_a_write_and_its_webhook_commit_together(backend: Backend, storage: Storage) -> None:
    doc = await storage.create_object(
        SVC,
        "document",
        unique_name="d",
        data={"v": 0},
        ttl=None,
        created_by="s",
        webhook=hook_for(""),
    )
    lst = await storage.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    await storage.update_document(
        SVC,
        doc.sid,
        data={"v": 1},
        merge=False,
        if_match=None,
        ttl=None,
        origin=None,
        webhook=hook_for(doc.sid),
    )
    await storage.list_push(
        SVC,
        lst.sid,
        data={"n": 0},
        ttl=None,
        origin=None,
        created_by="s",
        webhook=hook_for(lst.sid),
    )
    await storage.set_item(
        SVC,
        "list",
        lst.sid,
        0,
        data={"n": 1},
        merge=False,
        if_match=None,
        ttl=None,
        origin=None,
        created_by="s",
        webhook=hook_for(lst.sid),
    )
    await storage.remove_item(
        SVC, "list", lst.sid, 0, if_match=None, origin=None, webhook=hook_for(lst.sid)
    )
    await storage.remove_object(SVC, "list", lst.sid, origin=None, webhook=hook_for(lst.sid))
    assert await outbox_rows(backend, storage) == [
        (doc.sid, "created"),
        (doc.sid, "updated"),
        (lst.sid, "item_added"),
        (lst.sid, "item_updated"),
        (lst.sid, "item_removed"),
        (lst.sid, "removed"),  # the object is gone, its deliveries are not
    ]
    assert await storage.webhook_backlog() == 6


async def test_a_failed_write_leaves_no_webhook_and_a_failed_webhook_no_write(
    backend: Backend, storage: Storage
) -> None:
    doc = await storage.create_object(
        SVC, "document", unique_name="d", data={"v": 0}, ttl=None, created_by="s"
    )
    # The change fails its check: no row.
    with pytest.raises(SyncError):
        await storage.update_document(
            SVC,
            doc.sid,
            data={"v": 1},
            merge=False,
            if_match="99",
            ttl=None,
            origin=None,
            webhook=hook_for(doc.sid),
        )
    # The transaction fails after the change's statements ran: neither is kept.
    with pytest.raises(RuntimeError):
        await storage.update_document(
            SVC,
            doc.sid,
            data={"v": 2},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            webhook=failing_hook,
        )
    with pytest.raises(RuntimeError):
        await storage.create_object(
            SVC,
            "map",
            unique_name="m",
            data=None,
            ttl=None,
            created_by="s",
            webhook=failing_hook,
        )
    # The outbox row itself cannot be stored (NOT NULL): the change is rolled back with it.
    broken = WebhookDelivery(None, "http://127.0.0.1:9/hook", {})  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"(?i)null"):
        await storage.update_document(
            SVC,
            doc.sid,
            data={"v": 3},
            merge=False,
            if_match=None,
            ttl=None,
            origin=None,
            webhook=lambda _: broken,
        )
    got = await storage.get_object(SVC, "document", doc.sid)
    assert got is not None and got.data == {"v": 0} and got.last_event_id == 0
    assert await storage.events_since(SVC, doc.sid, 0, 10) == []
    assert await storage.get_object(SVC, "map", "m") is None
    assert await outbox_rows(backend, storage) == []
    # ... and the next write is whole again.
    await storage.update_document(
        SVC,
        doc.sid,
        data={"v": 4},
        merge=False,
        if_match=None,
        ttl=None,
        origin=None,
        webhook=hook_for(doc.sid),
    )
    assert await outbox_rows(backend, storage) == [(doc.sid, "updated")]


# ---- PostgreSQL: a write is one call of sync_write ------------------------------------


@pytest.fixture
async def pg_counted(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[PostgresStorage, list[str]]]:
    """A PostgresStorage whose connections log every query they send (asyncpg's query
    logger: one entry per statement sent, BEGIN and COMMIT included)."""
    await empty_database(pg_url)
    sent: list[str] = []
    create_pool = asyncpg.create_pool

    async def log_queries(conn: asyncpg.Connection[Any]) -> None:
        conn.add_query_logger(lambda record: sent.append(record.query))

    def counted_pool(*args: Any, **kwargs: Any) -> Any:
        return create_pool(*args, init=log_queries, **kwargs)

    monkeypatch.setattr(postgres_module.asyncpg, "create_pool", counted_pool)
    store = PostgresStorage(pg_url, min_pool=1, max_pool=1)
    await store.start()
    yield store, sent
    await store.close()


async def test_postgres_write_is_one_round_trip(
    pg_counted: tuple[PostgresStorage, list[str]],
) -> None:
    """Each write of a document, list or map item, accepted or refused, is one statement
    (asyncpg sends a prepared statement's Bind/Execute/Sync together: one round trip)."""
    store, sent = pg_counted
    doc = await store.create_object(
        SVC, "document", unique_name="d", data={"a": 1}, ttl=None, created_by="s"
    )
    lst = await store.create_object(
        SVC, "list", unique_name=None, data=None, ttl=None, created_by="s"
    )
    mp = await store.create_object(SVC, "map", unique_name="m", data=None, ttl=None, created_by="s")
    writes = {
        "document set": lambda: store.update_document(
            SVC, doc.sid, data={"a": 2}, merge=False, if_match=None, ttl=None, origin="c"
        ),
        "document merge by name": lambda: store.update_document(
            SVC, "d", data={"b": 3}, merge=True, if_match=None, ttl=60, origin=None
        ),
        "list push": lambda: store.list_push(
            SVC, lst.sid, data={"n": 1}, ttl=None, origin=None, created_by="s"
        ),
        "list set": lambda: store.set_item(
            SVC,
            "list",
            lst.sid,
            0,
            data={"n": 2},
            merge=True,
            if_match=None,
            ttl=None,
            origin=None,
            created_by="s",
        ),
        "map set": lambda: store.set_item(
            SVC,
            "map",
            mp.sid,
            "k",
            data={"v": 1},
            merge=False,
            if_match=None,
            ttl=30,
            origin=None,
            created_by="s",
        ),
    }
    for name, write in writes.items():
        await write()  # prepares the statement on the connection
        sent.clear()
        await write()
        assert len(sent) == 1, (name, sent)
        assert "sync_write" in sent[0]
    sent.clear()
    await store.remove_item(SVC, "map", mp.sid, "k", if_match=None, origin=None)
    assert len(sent) == 1, sent
    sent.clear()
    with pytest.raises(DocumentRevisionMismatchError):
        await store.update_document(
            SVC, doc.sid, data={}, merge=False, if_match="0", ttl=None, origin=None
        )
    with pytest.raises(MapItemNotFoundError):
        await store.remove_item(SVC, "map", mp.sid, "k", if_match=None, origin=None)
    assert len(sent) == 2, sent


async def test_postgres_frames_are_the_python_rules(
    pg_counted: tuple[PostgresStorage, list[str]],
) -> None:
    """sync_write assembles each frame in SQL: byte for byte the frame `events` and orjson
    make of the records it returns (escapes, key order, dates, merge order)."""
    store, _ = pg_counted
    odd = 'é\n"\\/\x01\x7f\u2028😀'
    doc = await store.create_object(
        SVC,
        "document",
        unique_name=None,
        data={"z": 1, odd: [1, 2.5e-7, None]},
        ttl=None,
        created_by=odd,
    )
    got, event = await store.update_document(
        SVC,
        doc.sid,
        data={"a": {"b": odd}, "z": 1e300},
        merge=True,
        if_match="0",
        ttl=90,
        origin=odd,
    )
    assert list(got.data or {}) == ["z", odd, "a"]
    assert event.frame == dumps(frames.document_updated(got, doc.data or {}, odd))
    assert await store.get_object(SVC, "document", doc.sid) == got
    for kind in ("list", "map"):
        obj = await store.create_object(
            SVC, kind, unique_name=None, data=None, ttl=None, created_by="s"
        )
        ref: int | str
        if kind == "list":
            first, event = await store.list_push(
                SVC, obj.sid, data={"v": odd}, ttl=5, origin=None, created_by=odd
            )
            ref = 0
        else:
            ref = odd
            first, event = await store.set_item(
                SVC,
                kind,
                obj.sid,
                ref,
                data={"v": odd},
                merge=True,
                if_match=None,
                ttl=5,
                origin=None,
                created_by=odd,
            )
        assert event.frame == dumps(frames.item_added(kind, obj.sid, first, None))
        second, event = await store.set_item(
            SVC,
            kind,
            obj.sid,
            ref,
            data={"w": 2, "v": 0},
            merge=True,
            if_match=first.revision,
            ttl=None,
            origin="o",
            created_by="other",
        )
        assert (second.date_created, second.created_by) == (first.date_created, odd)
        assert second.date_expires == first.date_expires and list(second.data) == ["v", "w"]
        assert event.frame == dumps(frames.item_updated(kind, obj.sid, second, first.data, "o"))
        assert await store.get_item(SVC, kind, obj.sid, ref) == second
        event = await store.remove_item(SVC, kind, obj.sid, ref, if_match="2", origin=odd)
        expected = frames.item_removed(kind, obj.sid, 3, ref, second.data, odd)
        assert event.frame == dumps(expected)
        assert [e.frame for e in await store.events_since(SVC, obj.sid, 0, 10) or []] == [
            dumps(frames.item_added(kind, obj.sid, first, None)),
            dumps(frames.item_updated(kind, obj.sid, second, first.data, "o")),
            event.frame,
        ]


@pytest.mark.parametrize(("cache", "named"), [(100, True), (0, False)])
async def test_statement_cache_size_zero_prepares_no_named_statement(
    pg_url: str, cache: int, named: bool
) -> None:
    """Behind pgbouncer in transaction mode a named prepared statement may be missing on the
    next transaction's connection: with a cache size of 0 none is left in the session."""
    await empty_database(pg_url)
    store = postgres_module.PostgresStorage(
        pg_url, min_pool=1, max_pool=1, statement_cache_size=cache
    )
    await store.start()
    try:
        doc = await store.create_object(
            SVC, "document", unique_name=None, data={"a": 1}, ttl=None, created_by="s"
        )
        for n in range(3):
            await store.update_document(
                SVC, doc.sid, data={"n": n}, merge=True, if_match=None, ttl=None, origin=None
            )
        prepared = await store.pool.fetchval("SELECT count(*) FROM pg_prepared_statements")
        assert (prepared > 0) is named, prepared
    finally:
        await store.close()
    with pytest.raises(ValueError, match="statement_cache_size"):
        postgres_module.PostgresStorage(pg_url, statement_cache_size=-1)


# ---- PostgreSQL: writes that wait are committed together --------------------------------


async def test_postgres_writes_that_wait_go_together_each_with_its_own_answer(
    pg_counted: tuple[PostgresStorage, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """With every sender busy, waiting writes leave in one call of sync_write_set: each
    gets the answer it would get alone (a refusal stays that write's), in the order sent."""
    store, sent = pg_counted
    assert store.pool.writes.senders == 1
    maps = [
        await store.create_object(
            SVC, "map", unique_name=f"m{n}", data=None, ttl=None, created_by="s"
        )
        for n in range(4)
    ]
    await put_map_item(store, maps[0].sid, "taken", {})
    sent.clear()

    async def put(n: int) -> tuple[str, str]:
        target = maps[n % 4]
        ref = target.sid if n % 2 else "m" + str(n % 4)  # by sid and by unique name
        item, event = await put_map_item(store, ref, f"k{n}", {"n": n})
        assert item.data == {"n": n} and item.key == f"k{n}"
        return target.sid, frame(event)["item"]["key"]

    async def refused() -> None:
        await store.set_item(
            SVC,
            "map",
            maps[0].sid,
            "taken",
            data={},
            merge=False,
            if_match="7",
            ttl=None,
            origin=None,
            created_by="s",
        )

    with caplog.at_level("INFO", logger="sync_server.postgres"):
        results = await asyncio.gather(
            *(put(n) for n in range(10)),
            refused(),
            *(put(n) for n in range(10, 20)),
            return_exceptions=True,
        )
    assert isinstance(results[10], MapItemRevisionMismatchError), results[10]
    written = [r for r in results if not isinstance(r, BaseException)]
    assert len(written) == 20
    batches = [q for q in sent if "sync_write_set" in q]
    assert batches and len(sent) < 21, sent  # fewer calls than writes
    assert not [r for r in caplog.records if "failed as a whole" in r.getMessage()]
    for target in maps:  # each write stored once, its object's events gap-free
        events = await store.events_since(SVC, target.sid, 0, 100)
        assert events is not None
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        keys = [frame(e)["item"]["key"] for e in events]
        assert sorted(keys) == sorted(k for sid, k in written if sid == target.sid) + (
            ["taken"] if target is maps[0] else []
        )


async def test_postgres_a_batch_finds_its_objects_by_key_not_by_scanning_them(
    pg_counted: tuple[PostgresStorage, list[str]],
) -> None:
    """A call of sync_write_set reads no more of the objects table as it grows: it locks and
    reads each object it names through the primary key, whatever the plan guesses of the
    batch's size (migration 7; before it, every call scanned the whole table twice)."""
    store, _ = pg_counted
    await store.pool.execute(
        "INSERT INTO objects (sid, service_sid, kind, unique_name, data, last_event_id, "
        "date_created, date_updated, created_by) "
        "SELECT 'MP' || lpad(g::text, 32, '0'), $1, 'map', NULL, NULL, 0, 0, 0, 's' "
        "FROM generate_series(1, 5000) AS g",
        SVC,
    )
    # sync_write's first 15 arguments: set key "k" of the map found by its sid
    rest = [None, "k", '{"n":1}', False, None, False, None, None, "s", time.time()]
    writes = [
        ["set", SVC, "map", True, "MP" + str(n).rjust(32, "0"), *rest] for n in (7, 1234, 4999)
    ]
    # (pg_stat_xact counts what this backend has not reported yet: the call's share is the
    # difference.)
    counts = (
        "SELECT seq_scan, seq_tup_read, idx_scan FROM pg_stat_xact_user_tables "
        "WHERE relname = 'objects'"
    )
    async with store.pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow(counts)
        rows = await conn.fetch(
            postgres_module._WRITE_BATCH, orjson.dumps(writes).decode(), 100, 16384
        )
        after = await conn.fetchrow(counts)
    assert [(r["err"], r["new_event_id"]) for r in rows] == [(None, 1)] * 3
    assert before is not None and after is not None
    scans = {name: after[name] - before[name] for name in after.keys()}
    assert (scans["seq_scan"], scans["seq_tup_read"]) == (0, 0), scans
    assert scans["idx_scan"] >= 3


async def test_postgres_a_batch_answers_and_stores_as_its_writes_one_by_one(
    pg_url: str,
) -> None:
    """sync_write_set does a batch naming different objects as one set (migration 7). Run
    against `sync_write` one write at a time on twin objects, the same random writes (every
    operation, refusal, merge, TTL, a map key held by an expired item, the log's pruning,
    objects that are gone; same times) give the same rows, frames and stored state. One batch
    in five names an object twice (by sid and by name), which runs write after write."""
    await empty_database(pg_url)
    store = PostgresStorage(pg_url, min_pool=1, max_pool=1)
    await store.start()
    rng = random.Random(6)
    keep, max_bytes = 4, 80
    try:
        kinds: tuple[ObjectKind, ...] = ("document", "list", "map")
        twins = {}
        for side in "AB":
            for kind in kinds:
                obj = await store.create_object(
                    SVC,
                    kind,
                    unique_name=f"{side}{kind}",
                    data={} if kind == "document" else None,
                    ttl=None,
                    created_by="s",
                )
                twins[side, kind] = obj.sid
        rename = {twins["A", kind]: twins["B", kind] for kind in kinds}
        at = time.time()
        # Twins in every way, each with an older log to prune (one event a write, and all
        # of it at the 1,024th event).
        await store.pool.execute(
            "UPDATE objects SET date_created = $1, date_updated = $1, last_event_id = 1000", at
        )
        await store.pool.execute(
            "INSERT INTO events (object_sid, event_id, frame, created_at) "
            "SELECT sid, n, 'old'::bytea, $1 FROM objects, generate_series(900, 1000) AS n",
            at,
        )
        revisions: dict[tuple[str, Any], int] = {}  # (kind, item) -> the B side's last revision

        def write(kind: ObjectKind) -> tuple[Any, ...]:
            op = {
                "document": "update",
                "list": rng.choice(["push", "push", "set", "remove"]),
                "map": rng.choice(["set", "set", "remove"]),
            }[kind]
            pushed = sorted(i for k, i in revisions if k == "list")[-3:]
            item: Any = rng.choice([*pushed, 0]) if kind == "list" else rng.choice("abc")
            known = revisions.get((kind, None if kind == "document" else item))
            if_match = rng.choice([None, None, None if known is None else str(known), "1"])
            data = {f"f{rng.randrange(6)}": rng.choice([1, "x" * rng.randrange(40)])}
            return (
                op,
                SVC,
                kind,
                None,
                None,
                item if kind == "list" and op != "push" else None,
                item if kind == "map" else None,
                None if op == "remove" else orjson.dumps(data).decode(),
                rng.random() < 0.5,
                if_match,
                op == "set" and kind == "map" and rng.random() < 0.2,
                rng.choice([None, None, 0, 600] if kind == "document" else [None, None, 0, 5, 40]),
                rng.choice([None, 'o"1']),
                rng.choice(["s", "t"]),
                at,
            )

        def named(args: tuple[Any, ...], side: str, by_sid: bool) -> tuple[Any, ...]:
            ref = twins[side, args[2]] if by_sid else f"{side}{args[2]}"
            return (*args[:3], by_sid, ref, *args[5:])

        def comparable(row: asyncpg.Record) -> dict[str, Any]:
            out = dict(row)
            out.pop("n", None)
            if out["obj_sid"] in rename:
                out["obj_sid"] = rename[out["obj_sid"]]
                out["obj_unique_name"] = "B" + out["obj_unique_name"][1:]
            if out["new_frame"] is not None:
                for a, b in rename.items():
                    out["new_frame"] = out["new_frame"].replace(a.encode(), b.encode())
            return out

        shared_batches = 0
        outcomes: Counter[str] = Counter()
        for _ in range(250):
            at += rng.choice([0.0, 0.0, 1.0, 4.0, 30.0])
            batch = [(write(kind), "twin") for kind in kinds if rng.random() < 0.85]
            if rng.random() < 0.15:
                batch.append((write("map"), "missing"))
            if rng.random() < 0.2 and batch:  # the same object again, named the other way
                batch.append((write(batch[-1][0][2]), "twin again"))
                shared_batches += 1
            if not batch:
                continue
            by_sid = [rng.random() < 0.5 for _ in batch]
            for n, (_, target) in enumerate(batch):
                if target == "twin again":
                    by_sid[n] = not by_sid[n - 1]
            sides = {
                side: [
                    named(args, side, sid)
                    if target != "missing"
                    else (*args[:3], sid, "MP" + "f" * 32 if sid else "nothing", *args[5:])
                    for (args, target), sid in zip(batch, by_sid, strict=True)
                ]
                for side in "AB"
            }
            together = await store.pool.fetch(
                postgres_module._WRITE_BATCH, orjson.dumps(sides["A"]).decode(), keep, max_bytes
            )
            alone = [
                await store.pool.fetchrow(postgres_module._WRITE, *args, keep, max_bytes)
                for args in sides["B"]
            ]
            assert [r["n"] for r in together] == list(range(1, len(batch) + 1))
            for args, one, other in zip(sides["B"], together, alone, strict=True):
                assert comparable(one) == comparable(other), args
                outcomes[
                    other["err"] or orjson.loads(other["new_frame"])["name"] + f" {args[2]}"
                ] += 1
                if other["err"] is None and other["obj_sid"] in rename.values():
                    kind = args[2]
                    key = (
                        None
                        if kind == "document"
                        else (other["item_idx"] if kind == "list" else other["item_key"])
                    )
                    if kind == "list" and args[0] == "remove":
                        key = args[5]
                    revisions[kind, key] = other["new_event_id"]
        assert shared_batches > 20
        assert set(outcomes) == {
            *(
                f"item_{name} {kind}"
                for name in ("added", "updated", "removed")
                for kind in kinds[1:]
            ),
            "updated document",
            *(
                "object_not_found",
                "item_not_found",
                "item_exists",
                "revision_mismatch",
                "too_large",
            ),
        }, outcomes

        async def both(query: str, *sids: str) -> list[list[asyncpg.Record]]:
            return [await store.pool.fetch(query + " ORDER BY 1, 2", sid) for sid in sids]

        for kind in kinds:
            a, b = twins["A", kind], twins["B", kind]
            stored = await both(
                "SELECT last_event_id, next_index, data, date_updated, date_expires "
                "FROM objects WHERE sid = $1",
                a,
                b,
            )
            assert stored[0] == stored[1], kind
            items = await both(
                "SELECT idx, key, data, last_event_id, date_created, date_updated, "
                "date_expires, created_by FROM items WHERE object_sid = $1",
                a,
                b,
            )
            assert items[0] == items[1], kind
            logs = await both(
                "SELECT event_id, frame, created_at FROM events WHERE object_sid = $1", a, b
            )
            assert [(e, f.replace(a.encode(), b.encode()), t) for e, f, t in logs[0]] == [
                tuple(r) for r in logs[1]
            ], kind
            last = stored[1][0]["last_event_id"]
            assert [e for e, _, _ in logs[1]] == list(range(last - keep + 1, last + 1)), kind
    finally:
        await store.close()


async def test_postgres_a_batch_that_fails_as_a_whole_is_sent_one_by_one(
    pg_counted: tuple[PostgresStorage, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """A merge PostgreSQL cannot do (a NUL in a key) fails the batch it is in; nothing of the
    batch was stored, and each write is sent again alone: every one applied exactly once."""
    store, sent = pg_counted
    doc = await store.create_object(
        SVC, "document", unique_name=None, data={"a": 0}, ttl=None, created_by="s"
    )
    maps = [
        await store.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
        for _ in range(4)
    ]

    async def put(n: int) -> None:
        await put_map_item(store, maps[n].sid, "k", {"n": n})

    with caplog.at_level("INFO", logger="sync_server.postgres"):
        await asyncio.gather(
            put(0),
            put(1),
            store.update_document(
                SVC, doc.sid, data={"b\x00": 1}, merge=True, if_match=None, ttl=None, origin=None
            ),
            put(2),
            put(3),
        )
    assert any("failed as a whole" in r.getMessage() for r in caplog.records)
    assert any("sync_write_set" in q for q in sent)
    stored = await store.get_object(SVC, "document", doc.sid)
    assert stored is not None and stored.data == {"a": 0, "b\x00": 1}
    assert stored.last_event_id == 1
    for n, target in enumerate(maps):
        events = await store.events_since(SVC, target.sid, 0, 100)
        assert events is not None and [frame(e)["item"]["data"] for e in events] == [{"n": n}]


async def test_postgres_a_write_that_cannot_be_encoded_fails_alone(
    pg_counted: tuple[PostgresStorage, list[str]],
) -> None:
    """A map key that is not Unicode text (a lone surrogate) cannot be sent: the batch it
    waits in goes one write at a time, so only that write fails."""
    store, _ = pg_counted
    maps = [
        await store.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
        for _ in range(4)
    ]
    results = await asyncio.gather(
        put_map_item(store, maps[0].sid, "k", {"n": 0}),  # out alone: the others wait
        put_map_item(store, maps[1].sid, "k", {"n": 1}),
        put_map_item(store, maps[2].sid, "\ud800", {"n": 2}),
        put_map_item(store, maps[3].sid, "k", {"n": 3}),
        return_exceptions=True,
    )
    assert isinstance(results[2], asyncpg.DataError), results[2]  # as when it goes alone
    assert [r[0].data for n, r in enumerate(results) if n != 2] == [  # type: ignore[index]
        {"n": 0},
        {"n": 1},
        {"n": 3},
    ]
    with pytest.raises(MapItemNotFoundError):
        await store.get_item(SVC, "map", maps[2].sid, "k")
    for n in (0, 1, 3):
        assert (await store.get_item(SVC, "map", maps[n].sid, "k")).data == {"n": n}


async def test_postgres_batches_of_two_nodes_never_deadlock(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes' batches name the same objects in opposite orders, by sid and by name:
    each batch locks its objects in sid order first, so none waits on the other in a cycle
    (a deadlock would fail a batch as a whole, and PostgreSQL finds one only after 1 s)."""
    await empty_database(pg_url)
    nodes = [PostgresStorage(pg_url, min_pool=1, max_pool=1) for _ in range(2)]
    for node in nodes:
        await node.start()
    try:
        maps = [
            await nodes[0].create_object(
                SVC, "map", unique_name=f"d{n}", data=None, ttl=None, created_by="s"
            )
            for n in range(6)
        ]

        async def put(node: int, n: int, round_: int) -> None:
            order = maps if node == 0 else maps[::-1]
            target = order[n % 6]
            ref = target.sid if (n + node) % 2 else target.unique_name
            assert ref is not None
            await put_map_item(nodes[node], ref, f"n{node}-{n}", {"r": round_})

        with caplog.at_level("INFO", logger="sync_server.postgres"):
            for round_ in range(15):
                await asyncio.gather(*(put(node, n, round_) for node in (0, 1) for n in range(12)))
        assert not [r for r in caplog.records if "failed as a whole" in r.getMessage()]
        total = 0
        for target in maps:
            obj = await nodes[1].get_object(SVC, "map", target.sid)
            assert obj is not None
            total += obj.last_event_id
        assert total == 15 * 24
    finally:
        for node in nodes:
            await node.close()


async def test_postgres_a_waiting_write_whose_caller_gave_up_is_not_sent(
    pg_counted: tuple[PostgresStorage, list[str]],
) -> None:
    """A write cancelled while it waits for a sender is dropped, as a lone write cancelled
    before it was sent: not applied, while the writes around it are."""
    store, _ = pg_counted
    maps = [
        await store.create_object(SVC, "map", unique_name=None, data=None, ttl=None, created_by="s")
        for _ in range(3)
    ]
    first = asyncio.create_task(put_map_item(store, maps[0].sid, "k", {"n": 0}))
    await asyncio.sleep(0)  # the one sender is out with it
    waiting = [
        asyncio.create_task(put_map_item(store, target.sid, "k", {"n": n}))
        for n, target in enumerate(maps[1:], start=1)
    ]
    await asyncio.sleep(0)  # both queued behind it
    assert len(store.pool.writes._pending) == 2
    waiting[0].cancel()
    await asyncio.gather(first, waiting[1], return_exceptions=False)
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    with pytest.raises(MapItemNotFoundError):
        await store.get_item(SVC, "map", maps[1].sid, "k")
    assert (await store.get_item(SVC, "map", maps[2].sid, "k")).data == {"n": 2}
    assert (await store.get_item(SVC, "map", maps[0].sid, "k")).data == {"n": 0}
