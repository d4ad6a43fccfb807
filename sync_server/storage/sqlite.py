"""SQLite backend: one writer thread, group commit, WAL.

A single dedicated thread owns the sqlite3 connection. Every public method submits a
callable to a queue and awaits an asyncio future. The thread drains every queued operation,
runs each one inside its own SAVEPOINT (a failing operation rolls back only itself), COMMITs
once for the whole batch and only then resolves the futures: when a write's coroutine
returns, its data is committed. Operations run in submission order, so the events of one
object are committed in event_id order.

JSON is stored as TEXT (orjson), times as REAL Unix seconds, event frames as BLOB.
"""

from __future__ import annotations

import asyncio
import queue
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from sync_generated.client import MAX_DATA_BYTES
from sync_generated.errors import (
    DataTooLargeError,
    DocumentNotFoundError,
    DocumentRevisionMismatchError,
    InvalidRequestError,
    ListItemNotFoundError,
    ListItemRevisionMismatchError,
    ListNotFoundError,
    MapItemAlreadyExistsError,
    MapItemNotFoundError,
    MapItemRevisionMismatchError,
    MapNotFoundError,
    StreamNotFoundError,
    SyncError,
    UniqueNameExistsError,
)

from ..wire import (
    document_updated_frame,
    dumps,
    expires_at,
    item_changed_frame,
    item_removed_frame,
    loads,
    new_sid,
    now,
    object_removed_frame,
)
from .base import (
    ItemRecord,
    JsonObject,
    ObjectKind,
    ObjectRecord,
    PageResult,
    PermissionRecord,
    ServiceRecord,
    Storage,
    StoredEvent,
)

__all__ = ["SQLiteStorage"]

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

_PREFIXES: dict[str, str] = {"document": "ET", "list": "ES", "map": "MP", "stream": "TO"}
_SID_RES: dict[str, re.Pattern[str]] = {
    kind: re.compile(prefix + "[0-9a-f]{32}") for kind, prefix in _PREFIXES.items()
}
_NOT_FOUND: dict[str, type[SyncError]] = {
    "document": DocumentNotFoundError,
    "list": ListNotFoundError,
    "map": MapNotFoundError,
    "stream": StreamNotFoundError,
}
_LABELS: dict[str, str] = {"document": "Document", "list": "List", "map": "Map", "stream": "Stream"}
_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_MAX_BATCH = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS services (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    unique_name TEXT,
    friendly_name TEXT,
    webhook_url TEXT,
    webhooks_from_rest_enabled INTEGER NOT NULL,
    reachability_webhooks_enabled INTEGER NOT NULL,
    acl_enabled INTEGER NOT NULL,
    reachability_debouncing_enabled INTEGER NOT NULL,
    reachability_debouncing_window INTEGER NOT NULL,
    date_created REAL NOT NULL,
    date_updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS services_unique_name ON services (unique_name);

CREATE TABLE IF NOT EXISTS objects (
    sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    unique_name TEXT,
    data TEXT,
    last_event_id INTEGER NOT NULL,
    next_index INTEGER NOT NULL DEFAULT 0,
    date_created REAL NOT NULL,
    date_updated REAL NOT NULL,
    date_expires REAL,
    created_by TEXT NOT NULL,
    UNIQUE (service_sid, kind, unique_name)
);
CREATE INDEX IF NOT EXISTS objects_expires ON objects (date_expires)
    WHERE date_expires IS NOT NULL;
CREATE INDEX IF NOT EXISTS objects_by_kind ON objects (service_sid, kind, sid);

CREATE TABLE IF NOT EXISTS items (
    object_sid TEXT NOT NULL,
    idx INTEGER,
    key TEXT,
    data TEXT NOT NULL,
    last_event_id INTEGER NOT NULL,
    date_created REAL NOT NULL,
    date_updated REAL NOT NULL,
    date_expires REAL,
    created_by TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS items_by_index ON items (object_sid, idx);
CREATE UNIQUE INDEX IF NOT EXISTS items_by_key ON items (object_sid, key);
CREATE INDEX IF NOT EXISTS items_expires ON items (date_expires)
    WHERE date_expires IS NOT NULL;

CREATE TABLE IF NOT EXISTS events (
    object_sid TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    frame BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (object_sid, event_id)
);
CREATE INDEX IF NOT EXISTS events_created_at ON events (created_at);

CREATE TABLE IF NOT EXISTS permissions (
    service_sid TEXT NOT NULL,
    object_sid TEXT NOT NULL,
    identity TEXT NOT NULL,
    read INTEGER NOT NULL,
    write INTEGER NOT NULL,
    manage INTEGER NOT NULL,
    PRIMARY KEY (object_sid, identity)
);
CREATE INDEX IF NOT EXISTS permissions_service ON permissions (service_sid);
"""

_SERVICE_COLS = (
    "sid, account_sid, unique_name, friendly_name, webhook_url, webhooks_from_rest_enabled, "
    "reachability_webhooks_enabled, acl_enabled, reachability_debouncing_enabled, "
    "reachability_debouncing_window, date_created, date_updated"
)
_OBJECT_COLS = (
    "kind, sid, service_sid, unique_name, data, last_event_id, date_created, date_updated, "
    "date_expires, created_by"
)
_PERMISSION_COLS = "service_sid, object_sid, identity, read, write, manage"
_ITEM_COLS = "idx, key, data, last_event_id, date_created, date_updated, date_expires, created_by"
_LIVE = "(date_expires IS NULL OR date_expires > ?)"


@dataclass(slots=True)
class _Job:
    fn: Op
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class _Stop:
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


# ---- row helpers (run on the writer thread) -------------------------------------------


def _json_text(data: JsonObject | None) -> str | None:
    return None if data is None else dumps(data).decode()


def _service_from_row(row: tuple[Any, ...]) -> ServiceRecord:
    return ServiceRecord(
        sid=row[0],
        account_sid=row[1],
        unique_name=row[2],
        friendly_name=row[3],
        webhook_url=row[4],
        webhooks_from_rest_enabled=bool(row[5]),
        reachability_webhooks_enabled=bool(row[6]),
        acl_enabled=bool(row[7]),
        reachability_debouncing_enabled=bool(row[8]),
        reachability_debouncing_window=int(row[9]),
        date_created=float(row[10]),
        date_updated=float(row[11]),
    )


def _object_from_row(row: tuple[Any, ...]) -> ObjectRecord:
    return ObjectRecord(
        kind=row[0],
        sid=row[1],
        service_sid=row[2],
        unique_name=row[3],
        data=None if row[4] is None else loads(row[4]),
        last_event_id=int(row[5]),
        date_created=float(row[6]),
        date_updated=float(row[7]),
        date_expires=None if row[8] is None else float(row[8]),
        created_by=row[9],
    )


def _item_from_row(row: tuple[Any, ...]) -> ItemRecord:
    return ItemRecord(
        index=row[0],
        key=row[1],
        data=loads(row[2]),
        last_event_id=int(row[3]),
        date_created=float(row[4]),
        date_updated=float(row[5]),
        date_expires=None if row[6] is None else float(row[6]),
        created_by=row[7],
    )


def _permission_from_row(row: tuple[Any, ...]) -> PermissionRecord:
    return PermissionRecord(
        service_sid=row[0],
        object_sid=row[1],
        identity=row[2],
        read=bool(row[3]),
        write=bool(row[4]),
        manage=bool(row[5]),
    )


def _check_kind(kind: str) -> None:
    if kind not in _PREFIXES:
        raise InvalidRequestError(f"Unknown object kind {kind!r}")


def _item_column(kind: str, item: object) -> str:
    """The items column addressing `item` for `kind`; InvalidRequestError on a wrong type."""
    if kind == "list":
        if not isinstance(item, int) or isinstance(item, bool):
            raise InvalidRequestError(f"A list item is addressed by an integer index, got {item!r}")
        return "idx"
    if kind == "map":
        if not isinstance(item, str):
            raise InvalidRequestError(f"A map item is addressed by a string key, got {item!r}")
        return "key"
    _check_kind(kind)
    raise InvalidRequestError(f"A {kind} has no items")


def _items_column(kind: str) -> str:
    return _item_column(kind, 0 if kind == "list" else "")


def _find_object(
    conn: sqlite3.Connection, service_sid: str, kind: str, sid_or_name: str, at: float
) -> ObjectRecord | None:
    _check_kind(kind)
    column = "sid" if _SID_RES[kind].fullmatch(sid_or_name) else "unique_name"
    row = conn.execute(
        f"SELECT {_OBJECT_COLS} FROM objects "
        f"WHERE service_sid = ? AND kind = ? AND {column} = ? AND {_LIVE}",
        (service_sid, kind, sid_or_name, at),
    ).fetchone()
    return None if row is None else _object_from_row(row)


def _require_object(
    conn: sqlite3.Connection, service_sid: str, kind: str, sid_or_name: str, at: float
) -> ObjectRecord:
    obj = _find_object(conn, service_sid, kind, sid_or_name, at)
    if obj is None:
        raise _NOT_FOUND[kind](f"{_LABELS[kind]} {sid_or_name} not found")
    return obj


def _find_item(
    conn: sqlite3.Connection, object_sid: str, column: str, item: int | str, at: float
) -> ItemRecord | None:
    row = conn.execute(
        f"SELECT {_ITEM_COLS} FROM items WHERE object_sid = ? AND {column} = ? AND {_LIVE}",
        (object_sid, item, at),
    ).fetchone()
    return None if row is None else _item_from_row(row)


def _item_not_found(kind: str, sid: str, item: int | str) -> SyncError:
    if kind == "list":
        return ListItemNotFoundError(f"List item {item} not found in {sid}")
    return MapItemNotFoundError(f"Map item {item!r} not found in {sid}")


def _item_mismatch(kind: str, item: ItemRecord, if_match: str) -> SyncError:
    cls = ListItemRevisionMismatchError if kind == "list" else MapItemRevisionMismatchError
    return cls(f"Item revision is {item.revision}, If-Match was {if_match!r}")


def _merged(old: JsonObject, patch: JsonObject) -> JsonObject:
    """Shallow merge; the result must still fit the data limit (54006), like any write."""
    merged = {**old, **patch}
    size = len(dumps(merged))
    if size > MAX_DATA_BYTES:
        raise DataTooLargeError(
            f"merged data would be {size} bytes of JSON; the limit is {MAX_DATA_BYTES}"
        )
    return merged


def _delete_object_rows(conn: sqlite3.Connection, sid: str) -> None:
    conn.execute("DELETE FROM items WHERE object_sid = ?", (sid,))
    conn.execute("DELETE FROM events WHERE object_sid = ?", (sid,))
    conn.execute("DELETE FROM permissions WHERE object_sid = ?", (sid,))
    conn.execute("DELETE FROM objects WHERE sid = ?", (sid,))


class SQLiteStorage(Storage):
    """`Storage` on one SQLite file (WAL). Create, `await start()`, use, `await close()`."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        event_retention: int = 10_000,
        event_retention_seconds: float = 86_400,
        inline: bool | None = None,
    ) -> None:
        """`inline`: run the SQL on the event loop's thread, one transaction per loop iteration
        (group commit without a thread hop). The default is inline when commits do not fsync
        (synchronous OFF or NORMAL) and on the writer thread otherwise (FULL, EXTRA), so an
        fsync never stalls the event loop."""
        sync_mode = synchronous.upper()
        if sync_mode not in _SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        if event_retention < 1:
            raise ValueError("event_retention must be >= 1")
        self.path = Path(path)
        self.synchronous = sync_mode
        self.event_retention = event_retention
        self.event_retention_seconds = float(event_retention_seconds)
        self._queue: queue.SimpleQueue[_Job | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._batch_count = 0  # committed batches; read by tests
        self.inline = sync_mode in ("OFF", "NORMAL") if inline is None else inline
        self._conn: sqlite3.Connection | None = None
        self._jobs: list[_Job] = []
        self._flush_scheduled = False

    # ---- machinery -------------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None or self._conn is not None:
            raise RuntimeError("SQLiteStorage already started")
        if self.inline:
            self._conn = self._connect()
            self._accepting = True
            return
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._queue = queue.SimpleQueue()
        thread = threading.Thread(
            target=self._thread_main, args=(loop, ready), name="sqlite-writer", daemon=True
        )
        self._thread = thread
        thread.start()
        try:
            await ready
        except BaseException:
            thread.join()
            self._thread = None
            raise
        self._accepting = True

    async def close(self) -> None:
        if self._conn is not None:
            self._accepting = False
            if self._jobs:
                self._flush()
            self._conn.close()
            self._conn = None
            return
        thread = self._thread
        if thread is None:
            return
        self._accepting = False
        loop = asyncio.get_running_loop()
        stopped: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Stop(stopped, loop))
        await stopped
        thread.join()
        self._thread = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the writer thread inside its own savepoint; return once committed."""
        if not self._accepting:
            raise RuntimeError("SQLiteStorage is not started or is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(fn, future, loop)
        if self.inline:
            self._jobs.append(job)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        else:
            self._queue.put(job)
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read. Inline, it runs at once outside any transaction (WAL gives it a consistent
        snapshot of what is committed; writes still queued are not acknowledged yet)."""
        if self.inline:
            if not self._accepting or self._conn is None:
                raise RuntimeError("SQLiteStorage is not started or is closed")
            return fn(self._conn)
        return await self._run(fn)

    def _flush(self) -> None:
        """Inline mode: run every job queued during this loop iteration in one transaction."""
        self._flush_scheduled = False
        batch, self._jobs = self._jobs, []
        conn = self._conn
        if conn is None:
            self._resolve([(job, False, RuntimeError("SQLiteStorage is closed")) for job in batch])
            return
        self._run_batch_or_fail(conn, batch)

    def _run_batch_or_fail(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """`_run_batch`, failing every job still pending if something unexpected breaks."""
        try:
            self._run_batch(conn, batch)
        except Exception as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    pass
            self._resolve([(job, False, exc) for job in batch])

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _thread_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
        except Exception as exc:
            _post(loop, _fail_one, ready, exc)
            return
        _post(loop, _succeed_one, ready, None)
        stop: _Stop | None = None
        try:
            while stop is None:
                batch: list[_Job] = []
                msg = self._queue.get()
                while True:
                    if isinstance(msg, _Stop):
                        stop = msg
                        break
                    batch.append(msg)
                    if len(batch) >= _MAX_BATCH:
                        break
                    try:
                        msg = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._run_batch_or_fail(conn, batch)
        finally:
            # Jobs submitted concurrently with close(): refuse them rather than leave them hanging.
            while True:
                try:
                    msg = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(msg, _Job):
                    _post(msg.loop, _fail_one, msg.future, RuntimeError("SQLiteStorage is closed"))
            conn.close()
            if stop is not None:
                _post(stop.loop, _succeed_one, stop.future, None)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """Run jobs in one transaction (one savepoint each), commit, then resolve futures."""
        pending = batch
        while pending:
            done: list[tuple[_Job, bool, Any]] = []
            broken: Exception | None = None
            try:
                conn.execute("BEGIN")
            except Exception as exc:
                self._resolve([(job, False, exc) for job in pending])
                return
            for job in pending:
                conn.execute("SAVEPOINT op")
                try:
                    value = job.fn(conn)
                except Exception as exc:
                    try:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    except Exception as rollback_exc:
                        # The transaction itself is gone (e.g. disk full): fail this job and
                        # every job before it, and rerun the rest in a new transaction.
                        done.append((job, False, exc))
                        broken = rollback_exc
                        break
                    done.append((job, False, exc))
                else:
                    conn.execute("RELEASE op")
                    done.append((job, True, value))
            if broken is None:
                try:
                    conn.execute("COMMIT")
                except Exception as exc:
                    broken = exc
            if broken is not None:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except Exception:
                        pass
                done = [(job, False, exc if not ok else broken) for job, ok, exc in done]
            else:
                self._batch_count += 1
            self._resolve(done)
            pending = pending[len(done) :]

    def _resolve(self, results: list[tuple[_Job, bool, Any]]) -> None:
        if self.inline:  # already on the loop's thread
            _resolve_group([(job.future, ok, value) for job, ok, value in results])
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, ok, value in results:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, group in by_loop.items():
            _post(loop, _resolve_group, group)

    # ---- services --------------------------------------------------------------------

    async def put_service(self, service: ServiceRecord) -> ServiceRecord:
        values = (
            service.sid,
            service.account_sid,
            service.unique_name,
            service.friendly_name,
            service.webhook_url,
            int(service.webhooks_from_rest_enabled),
            int(service.reachability_webhooks_enabled),
            int(service.acl_enabled),
            int(service.reachability_debouncing_enabled),
            service.reachability_debouncing_window,
            service.date_created,
            service.date_updated,
        )
        updates = ", ".join(f"{c} = excluded.{c}" for c in _SERVICE_COLS.split(", ")[1:])

        def op(conn: sqlite3.Connection) -> ServiceRecord:
            conn.execute(
                f"INSERT INTO services ({_SERVICE_COLS}) VALUES ({', '.join('?' * 12)}) "
                f"ON CONFLICT (sid) DO UPDATE SET {updates}",
                values,
            )
            row = conn.execute(
                f"SELECT {_SERVICE_COLS} FROM services WHERE sid = ?", (service.sid,)
            ).fetchone()
            return _service_from_row(row)

        return await self._run(op)

    async def get_service(self, sid_or_name: str) -> ServiceRecord | None:
        def op(conn: sqlite3.Connection) -> ServiceRecord | None:
            row = conn.execute(
                f"SELECT {_SERVICE_COLS} FROM services WHERE sid = ?", (sid_or_name,)
            ).fetchone()
            if row is None:
                row = conn.execute(
                    f"SELECT {_SERVICE_COLS} FROM services WHERE unique_name = ? "
                    "ORDER BY date_created, sid LIMIT 1",
                    (sid_or_name,),
                ).fetchone()
            return None if row is None else _service_from_row(row)

        return await self._read(op)

    async def list_services(self, *, after_sid: str | None, limit: int) -> list[ServiceRecord]:
        size = max(limit, 0)

        def op(conn: sqlite3.Connection) -> list[ServiceRecord]:
            if after_sid is None:
                rows = conn.execute(
                    f"SELECT {_SERVICE_COLS} FROM services ORDER BY sid LIMIT ?", (size,)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_SERVICE_COLS} FROM services WHERE sid > ? ORDER BY sid LIMIT ?",
                    (after_sid, size),
                ).fetchall()
            return [_service_from_row(r) for r in rows]

        return await self._read(op)

    async def delete_service(self, sid: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            owned = "SELECT sid FROM objects WHERE service_sid = ?"
            conn.execute(f"DELETE FROM items WHERE object_sid IN ({owned})", (sid,))
            conn.execute(f"DELETE FROM events WHERE object_sid IN ({owned})", (sid,))
            conn.execute(f"DELETE FROM permissions WHERE object_sid IN ({owned})", (sid,))
            conn.execute("DELETE FROM permissions WHERE service_sid = ?", (sid,))
            conn.execute("DELETE FROM objects WHERE service_sid = ?", (sid,))
            return conn.execute("DELETE FROM services WHERE sid = ?", (sid,)).rowcount > 0

        return await self._run(op)

    # ---- objects ---------------------------------------------------------------------

    async def create_object(
        self,
        service_sid: str,
        kind: ObjectKind,
        *,
        unique_name: str | None,
        data: JsonObject | None,
        ttl: int | None,
        created_by: str,
    ) -> ObjectRecord:
        _check_kind(kind)

        def op(conn: sqlite3.Connection) -> ObjectRecord:
            at = now()
            if unique_name is not None:
                row = conn.execute(
                    "SELECT sid, date_expires FROM objects "
                    "WHERE service_sid = ? AND kind = ? AND unique_name = ?",
                    (service_sid, kind, unique_name),
                ).fetchone()
                if row is not None:
                    if row[1] is None or row[1] > at:
                        raise UniqueNameExistsError(
                            f"A {kind} with unique name {unique_name!r} already exists"
                        )
                    _delete_object_rows(conn, row[0])  # expired = gone
            obj = ObjectRecord(
                kind=kind,
                sid=new_sid(_PREFIXES[kind]),
                service_sid=service_sid,
                unique_name=unique_name,
                data=(data or {}) if kind == "document" else None,
                last_event_id=0,
                date_created=at,
                date_updated=at,
                date_expires=expires_at(ttl, at),
                created_by=created_by,
            )
            conn.execute(
                "INSERT INTO objects (sid, service_sid, kind, unique_name, data, last_event_id, "
                "next_index, date_created, date_updated, date_expires, created_by) "
                "VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
                (
                    obj.sid,
                    service_sid,
                    kind,
                    unique_name,
                    _json_text(obj.data),
                    at,
                    at,
                    obj.date_expires,
                    created_by,
                ),
            )
            return obj

        return await self._run(op)

    async def get_object(
        self, service_sid: str, kind: ObjectKind, sid_or_name: str
    ) -> ObjectRecord | None:
        _check_kind(kind)
        return await self._read(
            lambda conn: _find_object(conn, service_sid, kind, sid_or_name, now())
        )

    async def list_objects(
        self, service_sid: str, kind: ObjectKind, *, after_sid: str | None, limit: int
    ) -> list[ObjectRecord]:
        _check_kind(kind)
        size = max(limit, 0)

        def op(conn: sqlite3.Connection) -> list[ObjectRecord]:
            where = f"service_sid = ? AND kind = ? AND {_LIVE}"
            params: tuple[Any, ...] = (service_sid, kind, now())
            if after_sid is not None:
                where += " AND sid > ?"
                params += (after_sid,)
            rows = conn.execute(
                f"SELECT {_OBJECT_COLS} FROM objects WHERE {where} ORDER BY sid LIMIT ?",
                (*params, size),
            ).fetchall()
            return [_object_from_row(r) for r in rows]

        return await self._read(op)

    async def update_document(
        self,
        service_sid: str,
        sid: str,
        *,
        data: JsonObject,
        merge: bool,
        if_match: str | None,
        ttl: int | None,
        origin: str | None,
    ) -> tuple[ObjectRecord, StoredEvent]:
        def op(conn: sqlite3.Connection) -> tuple[ObjectRecord, StoredEvent]:
            at = now()
            doc = _require_object(conn, service_sid, "document", sid, at)
            if if_match is not None and if_match != doc.revision:
                raise DocumentRevisionMismatchError(
                    f"Document revision is {doc.revision}, If-Match was {if_match!r}"
                )
            old = doc.data or {}
            doc.data = _merged(old, data) if merge else data
            doc.last_event_id += 1
            doc.date_updated = at
            if ttl is not None:
                doc.date_expires = expires_at(ttl, at)
            conn.execute(
                "UPDATE objects SET data = ?, last_event_id = ?, date_updated = ?, "
                "date_expires = ? WHERE sid = ?",
                (_json_text(doc.data), doc.last_event_id, at, doc.date_expires, doc.sid),
            )
            frame = document_updated_frame(doc, previous_data=old, origin=origin)
            event = self._append_event(conn, doc, frame, at)
            return doc, event

        return await self._run(op)

    async def set_object_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, ttl: int
    ) -> ObjectRecord:
        _check_kind(kind)

        def op(conn: sqlite3.Connection) -> ObjectRecord:
            at = now()
            obj = _require_object(conn, service_sid, kind, sid, at)
            obj.date_expires = expires_at(ttl, at)
            conn.execute(
                "UPDATE objects SET date_expires = ? WHERE sid = ?", (obj.date_expires, obj.sid)
            )
            return obj

        return await self._run(op)

    async def remove_object(
        self, service_sid: str, kind: ObjectKind, sid: str, *, origin: str | None
    ) -> StoredEvent:
        _check_kind(kind)

        def op(conn: sqlite3.Connection) -> StoredEvent:
            obj = _require_object(conn, service_sid, kind, sid, now())
            _delete_object_rows(conn, obj.sid)
            event_id = obj.last_event_id + 1
            previous = obj.data if kind == "document" else None
            frame = object_removed_frame(kind, obj.sid, event_id, previous, origin)
            return StoredEvent(obj.service_sid, obj.sid, event_id, frame)

        return await self._run(op)

    # ---- items -----------------------------------------------------------------------

    async def list_push(
        self,
        service_sid: str,
        sid: str,
        *,
        data: JsonObject,
        ttl: int | None,
        origin: str | None,
        created_by: str,
    ) -> tuple[ItemRecord, StoredEvent]:
        def op(conn: sqlite3.Connection) -> tuple[ItemRecord, StoredEvent]:
            at = now()
            lst = _require_object(conn, service_sid, "list", sid, at)
            (index,) = conn.execute(
                "SELECT next_index FROM objects WHERE sid = ?", (lst.sid,)
            ).fetchone()
            index = int(index)
            lst.last_event_id += 1
            item = ItemRecord(
                index=index,
                key=None,
                data=data,
                last_event_id=lst.last_event_id,
                date_created=at,
                date_updated=at,
                date_expires=expires_at(ttl, at),
                created_by=created_by,
            )
            self._insert_item(conn, lst.sid, item)
            conn.execute(
                "UPDATE objects SET next_index = ?, last_event_id = ?, date_updated = ? "
                "WHERE sid = ?",
                (index + 1, lst.last_event_id, at, lst.sid),
            )
            frame = item_changed_frame("list", lst.sid, "item_added", item, None, origin)
            return item, self._append_event(conn, lst, frame, at)

        return await self._run(op)

    async def get_item(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str
    ) -> ItemRecord:
        column = _item_column(kind, item)

        def op(conn: sqlite3.Connection) -> ItemRecord:
            at = now()
            obj = _require_object(conn, service_sid, kind, sid, at)
            found = _find_item(conn, obj.sid, column, item, at)
            if found is None:
                raise _item_not_found(kind, obj.sid, item)
            return found

        return await self._read(op)

    async def set_item(
        self,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        item: int | str,
        *,
        data: JsonObject,
        merge: bool,
        if_match: str | None,
        ttl: int | None,
        origin: str | None,
        created_by: str,
        if_absent: bool = False,
    ) -> tuple[ItemRecord, StoredEvent]:
        column = _item_column(kind, item)

        def op(conn: sqlite3.Connection) -> tuple[ItemRecord, StoredEvent]:
            at = now()
            obj = _require_object(conn, service_sid, kind, sid, at)
            existing = _find_item(conn, obj.sid, column, item, at)
            obj.last_event_id += 1
            if existing is None:
                if kind == "list" or if_match is not None:
                    raise _item_not_found(kind, obj.sid, item)
                # A new map item; drop an expired row holding the key, if any.
                conn.execute("DELETE FROM items WHERE object_sid = ? AND key = ?", (obj.sid, item))
                record = ItemRecord(
                    index=None,
                    key=str(item),
                    data=data,
                    last_event_id=obj.last_event_id,
                    date_created=at,
                    date_updated=at,
                    date_expires=expires_at(ttl, at),
                    created_by=created_by,
                )
                self._insert_item(conn, obj.sid, record)
                name, previous = "item_added", None
            else:
                if if_absent:
                    raise MapItemAlreadyExistsError(f"{kind} item {item!r} already exists")
                if if_match is not None and if_match != existing.revision:
                    raise _item_mismatch(kind, existing, if_match)
                previous = existing.data
                record = ItemRecord(
                    index=existing.index,
                    key=existing.key,
                    data=_merged(previous, data) if merge else data,
                    last_event_id=obj.last_event_id,
                    date_created=existing.date_created,
                    date_updated=at,
                    date_expires=existing.date_expires if ttl is None else expires_at(ttl, at),
                    created_by=existing.created_by,
                )
                conn.execute(
                    f"UPDATE items SET data = ?, last_event_id = ?, date_updated = ?, "
                    f"date_expires = ? WHERE object_sid = ? AND {column} = ?",
                    (
                        _json_text(record.data),
                        record.last_event_id,
                        at,
                        record.date_expires,
                        obj.sid,
                        item,
                    ),
                )
                name = "item_updated"
            self._touch_object(conn, obj, at)
            frame = item_changed_frame(kind, obj.sid, name, record, previous, origin)
            return record, self._append_event(conn, obj, frame, at)

        return await self._run(op)

    async def set_item_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str, ttl: int
    ) -> ItemRecord:
        column = _item_column(kind, item)

        def op(conn: sqlite3.Connection) -> ItemRecord:
            at = now()
            obj = _require_object(conn, service_sid, kind, sid, at)
            found = _find_item(conn, obj.sid, column, item, at)
            if found is None:
                raise _item_not_found(kind, obj.sid, item)
            found.date_expires = expires_at(ttl, at)
            conn.execute(
                f"UPDATE items SET date_expires = ? WHERE object_sid = ? AND {column} = ?",
                (found.date_expires, obj.sid, item),
            )
            return found

        return await self._run(op)

    async def remove_item(
        self,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        item: int | str,
        *,
        if_match: str | None,
        origin: str | None,
    ) -> StoredEvent:
        column = _item_column(kind, item)

        def op(conn: sqlite3.Connection) -> StoredEvent:
            at = now()
            obj = _require_object(conn, service_sid, kind, sid, at)
            found = _find_item(conn, obj.sid, column, item, at)
            if found is None:
                raise _item_not_found(kind, obj.sid, item)
            if if_match is not None and if_match != found.revision:
                raise _item_mismatch(kind, found, if_match)
            conn.execute(
                f"DELETE FROM items WHERE object_sid = ? AND {column} = ?", (obj.sid, item)
            )
            obj.last_event_id += 1
            self._touch_object(conn, obj, at)
            frame = item_removed_frame(kind, obj.sid, obj.last_event_id, item, found.data, origin)
            return self._append_event(conn, obj, frame, at)

        return await self._run(op)

    async def items_page(
        self,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        *,
        start: int | str | None,
        inclusive: bool,
        page_size: int,
        order: Literal["asc", "desc"],
    ) -> PageResult:
        column = _item_column(kind, start) if start is not None else _items_column(kind)
        if order not in ("asc", "desc"):
            raise InvalidRequestError(f"order must be 'asc' or 'desc', got {order!r}")
        size = max(page_size, 0)
        if order == "asc":
            after, before, direction = (">=" if inclusive else ">"), "<", "ASC"
        else:
            after, before, direction = ("<=" if inclusive else "<"), ">", "DESC"

        def op(conn: sqlite3.Connection) -> PageResult:
            at = now()
            obj = _require_object(conn, service_sid, kind, sid, at)
            where = f"object_sid = ? AND {_LIVE}"
            params: tuple[Any, ...] = (obj.sid, at)
            if start is not None:
                where += f" AND {column} {after} ?"
                params += (start,)
            rows = conn.execute(
                f"SELECT {_ITEM_COLS} FROM items WHERE {where} "
                f"ORDER BY {column} {direction} LIMIT ?",
                (*params, size + 1),
            ).fetchall()
            has_prev = False
            if start is not None:
                has_prev = (
                    conn.execute(
                        f"SELECT 1 FROM items WHERE object_sid = ? AND {_LIVE} "
                        f"AND {column} {before} ? LIMIT 1",
                        (obj.sid, at, start),
                    ).fetchone()
                    is not None
                )
            return PageResult(
                items=[_item_from_row(r) for r in rows[:size]],
                has_next=len(rows) > size,
                has_prev=has_prev,
            )

        return await self._read(op)

    # ---- permissions -----------------------------------------------------------------

    async def put_permission(self, permission: PermissionRecord) -> PermissionRecord:
        values = (
            permission.service_sid,
            permission.object_sid,
            permission.identity,
            int(permission.read),
            int(permission.write),
            int(permission.manage),
        )

        def op(conn: sqlite3.Connection) -> PermissionRecord:
            conn.execute(
                f"INSERT INTO permissions ({_PERMISSION_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (object_sid, identity) DO UPDATE SET "
                "service_sid = excluded.service_sid, read = excluded.read, "
                "write = excluded.write, manage = excluded.manage",
                values,
            )
            return _permission_from_row(values)

        return await self._run(op)

    async def get_permission(
        self, service_sid: str, object_sid: str, identity: str
    ) -> PermissionRecord | None:
        def op(conn: sqlite3.Connection) -> PermissionRecord | None:
            row = conn.execute(
                f"SELECT {_PERMISSION_COLS} FROM permissions "
                "WHERE service_sid = ? AND object_sid = ? AND identity = ?",
                (service_sid, object_sid, identity),
            ).fetchone()
            return None if row is None else _permission_from_row(row)

        return await self._read(op)

    async def delete_permission(self, service_sid: str, object_sid: str, identity: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM permissions WHERE service_sid = ? AND object_sid = ? AND identity = ?",
                (service_sid, object_sid, identity),
            )
            return cursor.rowcount > 0

        return await self._run(op)

    async def list_permissions(
        self, service_sid: str, object_sid: str, *, after_identity: str | None, limit: int
    ) -> list[PermissionRecord]:
        size = max(limit, 0)

        def op(conn: sqlite3.Connection) -> list[PermissionRecord]:
            where = "service_sid = ? AND object_sid = ?"
            params: tuple[Any, ...] = (service_sid, object_sid)
            if after_identity is not None:
                where += " AND identity > ?"
                params += (after_identity,)
            rows = conn.execute(
                f"SELECT {_PERMISSION_COLS} FROM permissions WHERE {where} "
                "ORDER BY identity LIMIT ?",
                (*params, size),
            ).fetchall()
            return [_permission_from_row(r) for r in rows]

        return await self._read(op)

    # ---- events ----------------------------------------------------------------------

    async def events_since(
        self, service_sid: str, sid: str, since: int, limit: int
    ) -> list[StoredEvent] | None:
        def op(conn: sqlite3.Connection) -> list[StoredEvent] | None:
            row = conn.execute(
                f"SELECT last_event_id FROM objects WHERE service_sid = ? AND sid = ? AND {_LIVE}",
                (service_sid, sid, now()),
            ).fetchone()
            if row is None:
                return None
            if since >= row[0]:
                return []
            rows = conn.execute(
                "SELECT event_id, frame FROM events WHERE object_sid = ? AND event_id > ? "
                "ORDER BY event_id LIMIT ?",
                (sid, since, max(limit, 1)),
            ).fetchall()
            if not rows or rows[0][0] != since + 1:
                return None
            return [
                StoredEvent(service_sid, sid, int(r[0]), bytes(r[1])) for r in rows[: max(limit, 0)]
            ]

        return await self._read(op)

    async def expire(self, now: float) -> list[StoredEvent]:
        at = now

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            events: list[StoredEvent] = []
            expired_objects = conn.execute(
                "SELECT sid, service_sid, kind, data, last_event_id FROM objects "
                "WHERE date_expires IS NOT NULL AND date_expires <= ? ORDER BY date_expires, sid",
                (at,),
            ).fetchall()
            for sid, service_sid, kind, data, last_event_id in expired_objects:
                previous = loads(data) if kind == "document" and data is not None else None
                frame = object_removed_frame(kind, sid, last_event_id + 1, previous, None)
                _delete_object_rows(conn, sid)
                events.append(StoredEvent(service_sid, sid, last_event_id + 1, frame))

            expired_items = conn.execute(
                "SELECT i.object_sid, i.idx, i.key, i.data, o.kind, o.service_sid, o.last_event_id "
                "FROM items i JOIN objects o ON o.sid = i.object_sid "
                "WHERE i.date_expires IS NOT NULL AND i.date_expires <= ? "
                "ORDER BY i.date_expires, i.object_sid, i.idx, i.key",
                (at,),
            ).fetchall()
            counters: dict[str, int] = {}
            for sid, idx, key, data, kind, service_sid, last_event_id in expired_items:
                event_id = counters.get(sid, last_event_id) + 1
                counters[sid] = event_id
                ref: int | str = idx if kind == "list" else key
                column = "idx" if kind == "list" else "key"
                conn.execute(f"DELETE FROM items WHERE object_sid = ? AND {column} = ?", (sid, ref))
                frame = item_removed_frame(kind, sid, event_id, ref, loads(data), None)
                conn.execute(
                    "INSERT INTO events (object_sid, event_id, frame, created_at) VALUES (?, ?, ?, ?)",
                    (sid, event_id, frame, at),
                )
                events.append(StoredEvent(service_sid, sid, event_id, frame))
            for sid, event_id in counters.items():
                conn.execute(
                    "UPDATE objects SET last_event_id = ?, date_updated = ? WHERE sid = ?",
                    (event_id, at, sid),
                )

            # Prune the event log: by age, then by count per object.
            conn.execute(
                "DELETE FROM events WHERE created_at < ?", (at - self.event_retention_seconds,)
            )
            long_logs = conn.execute(
                "SELECT sid, last_event_id FROM objects WHERE last_event_id > ?",
                (self.event_retention,),
            ).fetchall()
            for sid, last_event_id in long_logs:
                conn.execute(
                    "DELETE FROM events WHERE object_sid = ? AND event_id <= ?",
                    (sid, last_event_id - self.event_retention),
                )
            return events

        return await self._run(op)

    # ---- write helpers (writer thread) -----------------------------------------------

    def _append_event(
        self, conn: sqlite3.Connection, obj: ObjectRecord, frame: bytes, at: float
    ) -> StoredEvent:
        """Store the event `obj.last_event_id` and keep at most `event_retention` per object."""
        event_id = obj.last_event_id
        conn.execute(
            "INSERT INTO events (object_sid, event_id, frame, created_at) VALUES (?, ?, ?, ?)",
            (obj.sid, event_id, frame, at),
        )
        if event_id > self.event_retention:
            conn.execute(
                "DELETE FROM events WHERE object_sid = ? AND event_id <= ?",
                (obj.sid, event_id - self.event_retention),
            )
        return StoredEvent(obj.service_sid, obj.sid, event_id, frame)

    @staticmethod
    def _touch_object(conn: sqlite3.Connection, obj: ObjectRecord, at: float) -> None:
        obj.date_updated = at
        conn.execute(
            "UPDATE objects SET last_event_id = ?, date_updated = ? WHERE sid = ?",
            (obj.last_event_id, at, obj.sid),
        )

    @staticmethod
    def _insert_item(conn: sqlite3.Connection, object_sid: str, item: ItemRecord) -> None:
        conn.execute(
            "INSERT INTO items (object_sid, idx, key, data, last_event_id, date_created, "
            "date_updated, date_expires, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                object_sid,
                item.index,
                item.key,
                _json_text(item.data),
                item.last_event_id,
                item.date_created,
                item.date_updated,
                item.date_expires,
                item.created_by,
            ),
        )


# ---- resolving futures on their event loop ----------------------------------------------


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass  # the loop is closed: nobody is waiting any more


def _succeed_one(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail_one(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _resolve_group(group: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in group:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
