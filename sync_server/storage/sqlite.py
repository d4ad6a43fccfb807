"""SQLite backend: one writer thread, group commit, WAL.

A single dedicated thread owns the sqlite3 connection. Every public method submits a
callable to a queue and awaits an asyncio future. The thread drains every queued operation,
runs each one inside its own SAVEPOINT (a failing operation rolls back only itself), COMMITs
once for the whole batch and only then resolves the futures: when a write's coroutine
returns, its data is committed. Operations run in submission order, so the events of one
object are committed in event_id order.

When commits do not fsync (synchronous OFF or NORMAL, the default) the connection is used
inline, on the event loop's thread, instead: the first write of a turn of the loop, with
none waiting, commits at once (its caller goes on without a turn of the loop before and
after: about 45 µs less per acknowledged write on the wire), and the writes after it in the
same turn wait and commit together at its end. Under load that is two commits per turn
instead of one (about 8% fewer writes/s at 16 writers); a write never overtakes one waiting.
Inline, the WAL is checkpointed on a worker thread, not by the commit that crosses SQLite's
threshold: a checkpoint fsyncs (10-30 ms here), and the loop serves every other connection
meanwhile. Writes and SQL reads issued during it wait for it and then commit as one batch.

Inline, a write of an item or a document is logged, not committed, before it is
acknowledged: its statements go to the write log (`<file>-log`, one `write` of one record:
length, CRC-32, the pickled statements) and are applied to SQLite, many writes in one
transaction, a couple of milliseconds later, or at once before anything reads SQL or writes
otherwise. A write acknowledged is in the operating system's hands either way (SQLite's
NORMAL commit is a `write` to the WAL without fsync too), so a crash of the process loses
nothing: the next start applies the records the database has not (their sequence numbers
above the one stored with the last applied transaction) and empties the log. The write's
acknowledgement no longer waits for SQLite (about half of an `item_set`'s CPU here), and
writes coming in quick succession share a transaction and its WAL pages. Writes that store a
webhook in the outbox commit as before (that row is a statement SQLite might refuse). A record that
cannot be applied (a full disk) stays in the log and fails every later call until it can.

The objects and items last read or written stay in memory (`recent.RecentRecords`): a write
to a hot item runs its UPDATEs and INSERT without first SELECTing what it changes, and a read
of one runs no SQL. This process owns the file, so what it committed is what the file holds.

JSON is stored as TEXT (orjson), times as REAL Unix seconds, event frames as BLOB. The rules
of each write (errors, new records, event frames) are shared with the other backends in
`common`; this module holds only the SQL and the writer machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import queue
import sqlite3
import struct
import threading
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from sync_generated.errors import InvalidRequestError, UniqueNameExistsError

from ..wire import expires_at, now
from . import common
from .base import (
    ItemRecord,
    JsonObject,
    ObjectKind,
    ObjectRecord,
    OnChange,
    OnCreate,
    OutboxRow,
    PageResult,
    PermissionRecord,
    ServiceRecord,
    Storage,
    StoredEvent,
    WebhookDelivery,
)
from .common import (
    ITEM_COLS,
    PERMISSION_COLS,
    SERVICE_COLS,
    item_column,
    item_from_row,
    items_column,
    json_text,
    object_from_row,
    permission_from_row,
    service_from_row,
)
from .recent import RecentRecords

__all__ = ["FileInUseError", "SQLiteStorage", "check_file_free"]

log = logging.getLogger("sync_server.sqlite")

T = TypeVar("T")
S = TypeVar("S")
Op = Callable[[sqlite3.Connection], Any]

_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_MAX_BATCH = 1024
# An object's log is trimmed to `event_retention` rows at every 64th of its events, in one
# range DELETE, not by one DELETE per write (a point delete dirties two more pages: a third
# of a hot write's SQL). `events_since` answers as if every write trimmed it.
_PRUNE_STRIDE = 64
# Inline: checkpoint once the WAL holds about this many pages (SQLite's own default
# threshold); the first after `_FIRST_CHECKPOINT_AFTER` commits, and never sooner than
# `_MIN_CHECKPOINT_AFTER` commits after the last.
_CHECKPOINT_PAGES = 1000
# The write log: a record is its payload's length and CRC-32, then the payload (pickled
# `(seq, statements)`). Logged writes wait up to `_APPLY_AFTER` seconds, or until
# `_APPLY_MAX` of them wait, to be applied; the log is emptied once applied past `_LOG_BYTES`.
_RECORD_HEAD = struct.Struct("<II")
_APPLY_AFTER = 0.002
_APPLY_MAX = 256
_LOG_BYTES = 1 << 20
_FIRST_CHECKPOINT_AFTER = 300
_MIN_CHECKPOINT_AFTER = 16

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
DROP INDEX IF EXISTS objects_expires;
CREATE INDEX IF NOT EXISTS objects_expiry ON objects (date_expires, sid)
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
DROP INDEX IF EXISTS items_expires;
CREATE INDEX IF NOT EXISTS items_expiry ON items (date_expires, object_sid, idx, key)
    WHERE date_expires IS NOT NULL;

CREATE TABLE IF NOT EXISTS events (
    object_sid TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    frame BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (object_sid, event_id)
);
-- No index on created_at: one b-tree less to write per event (a sixth of a write's cost).
-- Pruning by age walks the rowid, which is the order of insertion (see prune_events).
DROP INDEX IF EXISTS events_created_at;

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

CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    object_sid TEXT NOT NULL,
    url TEXT NOT NULL,
    params TEXT NOT NULL,
    token TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_outbox_by_object ON webhook_outbox (object_sid, seq);

-- The write log's last record applied here (see the module docstring).
CREATE TABLE IF NOT EXISTS write_log (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    applied_seq INTEGER NOT NULL
);
INSERT OR IGNORE INTO write_log (id, applied_seq) VALUES (0, 0);
"""

# SQLite's clock in Unix seconds (constant within a statement).
_DB_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_OUTBOX = common.outbox_sql(lambda n: f"?{n}", _DB_NOW)

_LIVE = "(date_expires IS NULL OR date_expires > ?)"

# Writes that set the same columns of one row to values they carry: of several in one batch
# of logged writes, the last one of each row is enough (`_coalesced`). The value: how many of
# the statement's last parameters name the row.
_UPDATE_DOCUMENT = (
    "UPDATE objects SET data = ?, last_event_id = ?, date_updated = ?, date_expires = ? "
    "WHERE sid = ?"
)
_UPDATE_ITEM = {
    column: "UPDATE items SET data = ?, last_event_id = ?, date_updated = ?, date_expires = ? "
    f"WHERE object_sid = ? AND {column} = ?"
    for column in ("idx", "key")
}
_ROW_KEY_PARAMS = {_UPDATE_DOCUMENT: 1} | {sql: 2 for sql in _UPDATE_ITEM.values()}


def _revision(objects: str) -> str:
    """The revision (last_event_id) of the object in row `objects` (a table name or alias).
    A map or list item write stores its event and leaves the object's row alone (one page
    less per commit): the newest event, when newer than the row says, is the object's."""
    return (
        f"MAX({objects}.last_event_id, "
        f"IFNULL((SELECT MAX(event_id) FROM events WHERE object_sid = {objects}.sid), 0))"
    )


def _date_updated(objects: str) -> str:
    """The date_updated of the object in row `objects`: that of its newest event when it is
    newer than the row (see `_revision`)."""
    return (
        f"IFNULL((SELECT created_at FROM events WHERE object_sid = {objects}.sid "
        f"AND event_id > {objects}.last_event_id ORDER BY event_id DESC LIMIT 1), "
        f"{objects}.date_updated)"
    )


# `common.OBJECT_COLS`, with the revision and date_updated an item write leaves in the log.
_OBJECT_SELECT = (
    "SELECT kind, sid, service_sid, unique_name, data, "
    f"{_revision('objects')}, date_created, {_date_updated('objects')}, date_expires, "
    "created_by FROM objects"
)


class _NeedsConnection(Exception):
    """A read tried SQL on `_NO_CONNECTION`."""


class _NoConnection:
    """Stands in for the connection while a checkpoint has it: reads that `_recent` answers
    never reach it."""

    def execute(self, *_: object) -> sqlite3.Cursor:
        raise _NeedsConnection

    def __getattr__(self, _: str) -> object:
        raise _NeedsConnection


_NO_CONNECTION = cast(sqlite3.Connection, _NoConnection())

Statement = tuple[str, tuple[Any, ...]]


class _Recorder:
    """The connection as a logged write sees it: its reads run on the database (once the
    logged writes before it are applied), its writes are recorded for the log."""

    __slots__ = ("_storage", "statements")

    def __init__(self, storage: SQLiteStorage) -> None:
        self._storage = storage
        self.statements: list[Statement] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql.startswith("SELECT"):
            if self.statements:  # what it read would not include what it wrote
                raise RuntimeError("a logged write must read before it writes")
            return self._storage._applied_connection().execute(sql, params)
        self.statements.append((sql, tuple(params)))
        return None


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


def _add_webhook(
    conn: sqlite3.Connection,
    webhook: Callable[[S], WebhookDelivery | None] | None,
    of: S,
    at: float,
) -> None:
    """Store the webhook of a write (if any) in its transaction: a statement of its own."""
    delivery = None if webhook is None else webhook(of)
    if delivery is not None:
        conn.execute(_OUTBOX.insert, common.outbox_args(delivery, at))


def _delete_object_rows(conn: sqlite3.Connection, sid: str) -> None:
    conn.execute("DELETE FROM items WHERE object_sid = ?", (sid,))
    conn.execute("DELETE FROM events WHERE object_sid = ?", (sid,))
    conn.execute("DELETE FROM permissions WHERE object_sid = ?", (sid,))
    conn.execute("DELETE FROM objects WHERE sid = ?", (sid,))


class SQLiteStorage(Storage):
    """`Storage` on one SQLite file (WAL). Create, `await start()`, use, `await close()`."""

    _loop: asyncio.AbstractEventLoop  # inline: the loop it runs on (from `start`)

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        event_retention: int = 10_000,
        event_retention_seconds: float = 86_400,
        inline: bool | None = None,
        cache_size: int = 4096,
        write_log: bool | None = None,
    ) -> None:
        """`inline`: run the SQL on the event loop's thread: the first write of a loop
        iteration at once, the writes after it in one transaction at its end (group commit
        without a thread hop). The default is inline when commits do not fsync
        (synchronous OFF or NORMAL) and on the writer thread otherwise (FULL, EXTRA), so an
        fsync never stalls the event loop. `cache_size`: how many objects, and how many items,
        to keep in memory as last committed (`RecentRecords`), so that requests on them skip
        the SELECTs. `write_log`: acknowledge item and document writes once logged, and
        apply them to SQLite in batches (the module docstring); the default is on when
        inline."""
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
        self._wrote_this_turn = False  # inline: a write was committed at once in this turn
        self._recent = RecentRecords(cache_size)
        self._commits_since_checkpoint = 0
        self._checkpoint_after = _FIRST_CHECKPOINT_AFTER  # inline: commits between checkpoints
        # Inline: the checkpoint running on a worker thread (None when there is none); while
        # it runs, the connection is the worker's.
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpoint_count = 0  # completed off-loop checkpoints; read by tests
        # The write log (inline only): its file, the last sequence number given, the
        # logged writes not yet applied, the timer that applies them, and a failure to.
        self.write_log = self.inline and (write_log is None or write_log)
        self._log_path = self.path.with_name(self.path.name + "-log")
        self._log_fd: int | None = None
        self._log_size = 0
        self._seq = 0
        self._pending: list[list[Statement]] = []
        self._apply_timer: asyncio.TimerHandle | None = None
        self._apply_failure: Exception | None = None

    # ---- machinery -------------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None or self._conn is not None:
            raise RuntimeError("SQLiteStorage already started")
        self._recent.clear()  # the file may have changed while this storage was closed
        self._pending, self._apply_failure = [], None  # what the log holds, `_connect` applies
        if self.inline:
            self._loop = asyncio.get_running_loop()
            self._conn = self._connect()
            if self.write_log:
                try:
                    self._log_fd = os.open(  # not inherited by child processes (PEP 446)
                        self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
                    )
                except BaseException:
                    self._conn.close()
                    self._conn = None
                    raise
                self._log_size = os.fstat(self._log_fd).st_size
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
            if self._checkpoint is not None:
                await asyncio.shield(self._checkpoint)  # its end flushes the waiting jobs
            if self._jobs:
                self._flush()
            try:
                self._apply_pending()
            except Exception:
                pass  # logged; the records stay in the write log for the next start
            self._conn.close()
            self._conn = None
            if self._log_fd is not None:
                os.close(self._log_fd)
                self._log_fd = None
                if not self._pending:
                    self._log_path.unlink(missing_ok=True)
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
            conn = self._conn
            if (
                not self._jobs
                and not self._wrote_this_turn
                and conn is not None
                and self._checkpoint is None
            ):
                # The first write of a turn of the loop, with none waiting: committed now,
                # without the turn it would wait for its batch and the turn its caller would
                # wait to resume. The writes after it in the same turn wait, and share one
                # transaction at its end (group commit under load).
                self._wrote_this_turn = True
                loop.call_soon(self._next_turn)
                self._run_batch_or_fail(conn, [job])
                return future.result()
            self._jobs.append(job)
            if not self._flush_scheduled and self._checkpoint is None:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        else:
            self._queue.put(job)
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read. Inline, it runs at once outside any transaction (WAL gives it a consistent
        snapshot of what is committed; writes still queued are not acknowledged yet)."""
        if self.inline:
            if self._checkpoint is not None:
                # The connection is the checkpoint's: what `_recent` holds is answered now,
                # anything else once it is done.
                try:
                    return fn(_NO_CONNECTION)
                except _NeedsConnection:
                    pass
                while self._checkpoint is not None:
                    await asyncio.shield(self._checkpoint)
            if not self._accepting or self._conn is None:
                raise RuntimeError("SQLiteStorage is not started or is closed")
            if self._pending:
                # Logged writes wait to be applied: what `_recent` holds is answered now,
                # anything else once they are.
                try:
                    return fn(_NO_CONNECTION)
                except _NeedsConnection:
                    pass
                self._apply_pending()
            return fn(self._conn)
        return await self._run(fn)

    async def _run_logged(
        self, fn: Callable[[sqlite3.Connection], T], webhook: OnChange | None
    ) -> T:
        """`_run` for a write of an item or a document: with the write log, its statements
        are logged, and it returns at once; SQLite gets them shortly after (`_apply_pending`).
        Behind writes waiting to commit, or during a checkpoint, it waits its turn as `_run`.
        Only for statements SQLite cannot refuse but for I/O errors: a write that stores a
        `webhook` commits as `_run` (its outbox row is a statement SQLite might refuse)."""
        if webhook or self._log_fd is None or self._jobs or self._checkpoint is not None:
            return await self._run(fn)
        if not self._accepting:
            raise RuntimeError("SQLiteStorage is not started or is closed")
        recorder = _Recorder(self)
        try:
            value = fn(cast(sqlite3.Connection, recorder))
            if recorder.statements:
                self._log(recorder.statements)
        except BaseException:
            if recorder.statements:
                self._recent.clear()  # what the write stored there is not written
            raise
        return value

    def _log(self, statements: list[Statement]) -> None:
        """Append one record to the write log; apply the pending writes soon."""
        fd = self._log_fd
        assert fd is not None
        seq = self._seq + 1
        payload = pickle.dumps((seq, statements), protocol=pickle.HIGHEST_PROTOCOL)
        record = _RECORD_HEAD.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(fd, record)
        if written != len(record):
            # A record cut short would hide the ones after it from the next start.
            os.ftruncate(fd, self._log_size)
            raise OSError(f"the write log {self._log_path} is full")
        self._log_size += written
        self._seq = seq
        self._pending.append(statements)
        if len(self._pending) >= _APPLY_MAX:
            self._apply_due()
        elif self._apply_timer is None:
            self._apply_timer = self._loop.call_later(_APPLY_AFTER, self._apply_due)

    def _apply_due(self) -> None:
        self._apply_timer = None
        if self._conn is None or not self._pending:
            return
        if self._checkpoint is not None:  # the connection is the checkpoint's: later
            self._apply_timer = self._loop.call_later(_APPLY_AFTER, self._apply_due)
            return
        try:
            self._apply_pending(checkpoint=True)
        except Exception:
            pass  # logged; retried

    def _applied_connection(self) -> sqlite3.Connection:
        """The connection, once every logged write is applied (for a logged write's reads)."""
        self._apply_pending()
        assert self._conn is not None
        return self._conn

    def _apply_pending(self, *, checkpoint: bool = False) -> None:
        """Apply the logged writes not yet applied, in one transaction with the sequence
        number of the last. If that fails they stay pending (and in the log): this raises
        now, and at every call until they are applied (retried every second meanwhile).
        `checkpoint`: the commit may hand the connection to a checkpoint."""
        if self._apply_timer is not None:
            self._apply_timer.cancel()
            self._apply_timer = None
        pending = self._pending
        conn = self._conn
        if not pending or conn is None:
            return
        try:
            _apply_records(conn, pending, self._seq)
        except Exception as exc:
            if self._apply_failure is None:
                log.error(
                    "cannot apply %d logged writes to %s (they stay in %s): %s",
                    len(pending),
                    self.path,
                    self._log_path,
                    exc,
                )
            self._apply_failure = exc
            if self._accepting:
                self._apply_timer = self._loop.call_later(1.0, self._apply_due)
            raise
        if self._apply_failure is not None:
            log.warning("the %d logged writes are applied to %s", len(pending), self.path)
            self._apply_failure = None
        self._pending = []
        if self._log_size >= _LOG_BYTES and self._log_fd is not None:
            os.ftruncate(self._log_fd, 0)
            self._log_size = 0
        self._committed(conn, checkpoint=checkpoint)

    def _recover_log(self, conn: sqlite3.Connection) -> None:
        """At start: apply what the write log holds beyond the database's last applied
        record (a crash came first), then empty it."""
        (applied,) = conn.execute("SELECT applied_seq FROM write_log").fetchone()
        self._seq = int(applied)
        try:
            data = self._log_path.read_bytes()
        except FileNotFoundError:
            return
        records: list[tuple[int, list[Statement]]] = []
        offset, head = 0, _RECORD_HEAD.size
        while offset + head <= len(data):
            length, crc = _RECORD_HEAD.unpack_from(data, offset)
            payload = data[offset + head : offset + head + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            seq, statements = pickle.loads(payload)
            if seq > self._seq:
                records.append((seq, statements))
            offset += head + length
        if offset < len(data):
            log.warning(
                "%s ends in %d bytes that are not a whole record (a write cut short by a "
                "power loss; never acknowledged): ignored",
                self._log_path,
                len(data) - offset,
            )
        if records:
            _apply_records(conn, [statements for _, statements in records], records[-1][0])
            self._seq = records[-1][0]
            log.info("applied %d writes from %s", len(records), self._log_path)
        os.truncate(self._log_path, 0)

    def _next_turn(self) -> None:
        self._wrote_this_turn = False

    def _flush(self) -> None:
        """Inline mode: run every job queued during this loop iteration in one transaction."""
        self._flush_scheduled = False
        if self._checkpoint is not None:
            return  # the checkpoint's end flushes
        batch, self._jobs = self._jobs, []
        conn = self._conn
        if conn is None:
            self._resolve([(job, False, RuntimeError("SQLiteStorage is closed")) for job in batch])
            return
        self._run_batch_or_fail(conn, batch)

    def _run_batch_or_fail(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """`_run_batch`, failing every job still pending if something unexpected breaks."""
        try:
            self._apply_pending()  # the logged writes before these
        except Exception as exc:
            self._resolve([(job, False, exc) for job in batch])
            return
        try:
            self._run_batch(conn, batch)
        except Exception as exc:
            self._recent.clear()  # what the failed transaction stored there is not committed
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except Exception:
                    pass
            self._resolve([(job, False, exc) for job in batch])

    def _connect(self) -> sqlite3.Connection:
        # Inline, a checkpoint worker thread uses the connection while the loop leaves it alone.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=not self.inline)
        try:
            # This process owns the file for as long as it runs: what `_recent` holds is what
            # the file holds only if no other process writes it. The lock is taken once
            # (no lock calls per transaction) and the WAL index lives in this process's heap.
            _take_file(conn, self.path)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            if self.inline:
                conn.execute("PRAGMA wal_autocheckpoint=0")  # see `_committed`
            conn.executescript(_SCHEMA)
            self._recover_log(conn)
            # One process owns the file: leases of an earlier process are void.
            conn.execute(
                "UPDATE webhook_outbox SET lease_owner = NULL, lease_expires = NULL "
                "WHERE lease_owner IS NOT NULL"
            )
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
        if len(batch) == 1:
            self._run_alone(conn, batch[0])
            return
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
                self._recent.clear()  # what the rolled-back jobs stored there
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except Exception:
                        pass
                done = [(job, False, exc if not ok else broken) for job, ok, exc in done]
            else:
                self._committed(conn)
            self._resolve(done)
            pending = pending[len(done) :]

    def _run_alone(self, conn: sqlite3.Connection, job: _Job) -> None:
        """One job in its own transaction, without the savepoint a batch needs to undo one
        job and keep the others (two statements fewer per write). If it raises, or the commit
        does, `_run_batch_or_fail` rolls back and fails the job with that error."""
        conn.execute("BEGIN")
        value = job.fn(conn)
        conn.execute("COMMIT")
        self._committed(conn)
        self._resolve([(job, True, value)])

    def _committed(self, conn: sqlite3.Connection, *, checkpoint: bool = True) -> None:
        """After each commit: inline, hand the connection to a checkpoint on a worker thread
        once the WAL holds about `_CHECKPOINT_PAGES` pages (SQLite's own is off, see
        `_connect`). The WAL's size on disk does not say (SQLite reuses the file from its
        start after a checkpoint), so the commits to wait are estimated from the pages per
        commit the last checkpoint found. `checkpoint`: False when the connection is needed
        right after (the next one then starts with a later commit)."""
        self._batch_count += 1
        if not self.inline:
            return
        self._commits_since_checkpoint += 1
        if (
            not checkpoint
            or self._commits_since_checkpoint < self._checkpoint_after
            or self._checkpoint is not None
        ):
            return
        loop = asyncio.get_running_loop()
        try:
            running = loop.run_in_executor(None, self._checkpoint_wal, conn)
        except RuntimeError:  # the loop's executor is shut down: closing checkpoints anyway
            return
        commits, self._commits_since_checkpoint = self._commits_since_checkpoint, 0
        self._checkpoint = started = loop.create_future()
        running.add_done_callback(lambda done: self._checkpoint_done(done, commits, started))

    @staticmethod
    def _checkpoint_wal(conn: sqlite3.Connection) -> int:
        """On a worker thread: copy the WAL into the database file and fsync it (PASSIVE: this
        process holds the only connection, so it copies everything); the WAL's pages."""
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1])

    def _checkpoint_done(
        self, done: asyncio.Future[int], commits: int, checkpoint: asyncio.Future[None]
    ) -> None:
        self._checkpoint = None
        if done.cancelled():
            pass
        elif (failure := done.exception()) is not None:
            # It changes nothing committed; the next one retries it (the WAL meanwhile grows).
            log.warning("SQLite WAL checkpoint failed: %s", failure)
        else:
            self._checkpoint_count += 1
            pages = done.result()
            if pages > 0:
                self._checkpoint_after = max(
                    _MIN_CHECKPOINT_AFTER, min(100_000, _CHECKPOINT_PAGES * commits // pages)
                )
        checkpoint.set_result(None)
        if self._jobs and self._conn is not None:
            self._flush()

    def _resolve(self, results: list[tuple[_Job, bool, Any]]) -> None:
        if self.inline:  # already on the loop's thread
            _resolve_group([(job.future, ok, value) for job, ok, value in results])
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, ok, value in results:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, group in by_loop.items():
            _post(loop, _resolve_group, group)

    # ---- reading objects and items (on the connection's thread) ------------------------

    def _find_object(
        self, conn: sqlite3.Connection, service_sid: str, kind: str, sid_or_name: str, at: float
    ) -> ObjectRecord | None:
        """The live object, as a copy the caller may change (`_recent` first, then SQL)."""
        column = common.object_column(kind, sid_or_name)
        obj = self._recent.object(service_sid, kind, sid_or_name, by_sid=column == "sid")
        if obj is None:
            row = conn.execute(
                f"{_OBJECT_SELECT} WHERE service_sid = ? AND kind = ? AND {column} = ? AND {_LIVE}",
                (service_sid, kind, sid_or_name, at),
            ).fetchone()
            if row is None:
                return None
            obj = object_from_row(row)
            self._recent.put_object(obj)
        elif obj.date_expires is not None and obj.date_expires <= at:
            return None
        return obj.copy()

    def _require_object(
        self, conn: sqlite3.Connection, service_sid: str, kind: str, sid_or_name: str, at: float
    ) -> ObjectRecord:
        obj = self._find_object(conn, service_sid, kind, sid_or_name, at)
        if obj is None:
            raise common.object_not_found(kind, sid_or_name)
        return obj

    def _find_item(
        self, conn: sqlite3.Connection, object_sid: str, column: str, item: int | str, at: float
    ) -> ItemRecord | None:
        """The live item, as a copy the caller may change (`_recent` first, then SQL)."""
        found = self._recent.item(object_sid, item)
        if found is None:
            row = conn.execute(
                f"SELECT {ITEM_COLS} FROM items WHERE object_sid = ? AND {column} = ? AND {_LIVE}",
                (object_sid, item, at),
            ).fetchone()
            if row is None:
                return None
            found = item_from_row(row)
            self._recent.put_item(object_sid, item, found)
        elif found.date_expires is not None and found.date_expires <= at:
            return None
        return found.copy()

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
        updates = ", ".join(f"{c} = excluded.{c}" for c in SERVICE_COLS.split(", ")[1:])

        def op(conn: sqlite3.Connection) -> ServiceRecord:
            conn.execute(
                f"INSERT INTO services ({SERVICE_COLS}) VALUES ({', '.join('?' * 12)}) "
                f"ON CONFLICT (sid) DO UPDATE SET {updates}",
                values,
            )
            row = conn.execute(
                f"SELECT {SERVICE_COLS} FROM services WHERE sid = ?", (service.sid,)
            ).fetchone()
            return service_from_row(row)

        return await self._run(op)

    async def get_service(self, sid_or_name: str) -> ServiceRecord | None:
        def op(conn: sqlite3.Connection) -> ServiceRecord | None:
            row = conn.execute(
                f"SELECT {SERVICE_COLS} FROM services WHERE sid = ?", (sid_or_name,)
            ).fetchone()
            if row is None:
                row = conn.execute(
                    f"SELECT {SERVICE_COLS} FROM services WHERE unique_name = ? "
                    "ORDER BY date_created, sid LIMIT 1",
                    (sid_or_name,),
                ).fetchone()
            return None if row is None else service_from_row(row)

        return await self._read(op)

    async def list_services(self, *, after_sid: str | None, limit: int) -> list[ServiceRecord]:
        size = max(limit, 0)

        def op(conn: sqlite3.Connection) -> list[ServiceRecord]:
            if after_sid is None:
                rows = conn.execute(
                    f"SELECT {SERVICE_COLS} FROM services ORDER BY sid LIMIT ?", (size,)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {SERVICE_COLS} FROM services WHERE sid > ? ORDER BY sid LIMIT ?",
                    (after_sid, size),
                ).fetchall()
            return [service_from_row(r) for r in rows]

        return await self._read(op)

    async def delete_service(self, sid: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            owned = "SELECT sid FROM objects WHERE service_sid = ?"
            conn.execute(f"DELETE FROM items WHERE object_sid IN ({owned})", (sid,))
            conn.execute(f"DELETE FROM events WHERE object_sid IN ({owned})", (sid,))
            conn.execute(f"DELETE FROM permissions WHERE object_sid IN ({owned})", (sid,))
            conn.execute("DELETE FROM permissions WHERE service_sid = ?", (sid,))
            conn.execute("DELETE FROM objects WHERE service_sid = ?", (sid,))
            deleted = conn.execute("DELETE FROM services WHERE sid = ?", (sid,)).rowcount > 0
            self._recent.clear()
            return deleted

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
        webhook: OnCreate | None = None,
    ) -> ObjectRecord:
        common.check_kind(kind)

        def op(conn: sqlite3.Connection) -> ObjectRecord:
            at = now()
            gone: str | None = None
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
                    gone = row[0]
            obj = common.new_object(
                service_sid,
                kind,
                unique_name=unique_name,
                data=data,
                ttl=ttl,
                created_by=created_by,
                at=at,
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
                    json_text(obj.data),
                    at,
                    at,
                    obj.date_expires,
                    created_by,
                ),
            )
            _add_webhook(conn, webhook, obj, at)
            if gone is not None:
                self._recent.drop_objects((gone,))
            self._recent.put_object(obj)
            return obj

        return await self._run(op)

    async def get_object(
        self, service_sid: str, kind: ObjectKind, sid_or_name: str
    ) -> ObjectRecord | None:
        common.check_kind(kind)
        return await self._read(
            lambda conn: self._find_object(conn, service_sid, kind, sid_or_name, now())
        )

    async def list_objects(
        self, service_sid: str, kind: ObjectKind, *, after_sid: str | None, limit: int
    ) -> list[ObjectRecord]:
        common.check_kind(kind)
        size = max(limit, 0)

        def op(conn: sqlite3.Connection) -> list[ObjectRecord]:
            where = f"service_sid = ? AND kind = ? AND {_LIVE}"
            params: tuple[Any, ...] = (service_sid, kind, now())
            if after_sid is not None:
                where += " AND sid > ?"
                params += (after_sid,)
            rows = conn.execute(
                f"{_OBJECT_SELECT} WHERE {where} ORDER BY sid LIMIT ?",
                (*params, size),
            ).fetchall()
            return [object_from_row(r) for r in rows]

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
        webhook: OnChange | None = None,
    ) -> tuple[ObjectRecord, StoredEvent]:
        def op(conn: sqlite3.Connection) -> tuple[ObjectRecord, StoredEvent]:
            at = now()
            doc = self._require_object(conn, service_sid, "document", sid, at)
            frame = common.update_document(
                doc, data=data, merge=merge, if_match=if_match, ttl=ttl, origin=origin, at=at
            )
            conn.execute(
                _UPDATE_DOCUMENT,
                (json_text(doc.data), doc.last_event_id, at, doc.date_expires, doc.sid),
            )
            event = self._append_event(conn, doc, frame, at)
            _add_webhook(conn, webhook, event, at)
            self._recent.put_object(doc)
            return doc, event

        return await self._run_logged(op, webhook)

    async def set_object_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, ttl: int
    ) -> ObjectRecord:
        common.check_kind(kind)

        def op(conn: sqlite3.Connection) -> ObjectRecord:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            obj.date_expires = expires_at(ttl, at)
            conn.execute(
                "UPDATE objects SET date_expires = ? WHERE sid = ?", (obj.date_expires, obj.sid)
            )
            self._recent.put_object(obj)
            return obj

        return await self._run(op)

    async def remove_object(
        self,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        *,
        origin: str | None,
        webhook: OnChange | None = None,
    ) -> StoredEvent:
        common.check_kind(kind)

        def op(conn: sqlite3.Connection) -> StoredEvent:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            _delete_object_rows(conn, obj.sid)
            event = common.object_removed_event(
                kind, obj.service_sid, obj.sid, obj.last_event_id, obj.data, origin
            )
            _add_webhook(conn, webhook, event, at)
            self._recent.drop_objects((obj.sid,))
            return event

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
        webhook: OnChange | None = None,
    ) -> tuple[ItemRecord, StoredEvent]:
        def op(conn: sqlite3.Connection) -> tuple[ItemRecord, StoredEvent]:
            at = now()
            lst = self._require_object(conn, service_sid, "list", sid, at)
            (index,) = conn.execute(
                "SELECT next_index FROM objects WHERE sid = ?", (lst.sid,)
            ).fetchone()
            index = int(index)
            item, frame = common.push_item(
                lst, index, data=data, ttl=ttl, origin=origin, created_by=created_by, at=at
            )
            self._insert_item(conn, lst.sid, item)
            conn.execute(
                "UPDATE objects SET next_index = ?, last_event_id = ?, date_updated = ? "
                "WHERE sid = ?",
                (index + 1, lst.last_event_id, at, lst.sid),
            )
            event = self._append_event(conn, lst, frame, at)
            _add_webhook(conn, webhook, event, at)
            self._recent.put_object(lst)
            self._recent.put_item(lst.sid, index, item)
            return item, event

        return await self._run(op)

    async def get_item(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str
    ) -> ItemRecord:
        column = item_column(kind, item)

        def op(conn: sqlite3.Connection) -> ItemRecord:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            found = self._find_item(conn, obj.sid, column, item, at)
            if found is None:
                raise common.item_not_found(kind, obj.sid, item)
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
        webhook: OnChange | None = None,
    ) -> tuple[ItemRecord, StoredEvent]:
        column = item_column(kind, item)

        def op(conn: sqlite3.Connection) -> tuple[ItemRecord, StoredEvent]:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            existing = self._find_item(conn, obj.sid, column, item, at)
            record, frame = common.write_item(
                kind,
                obj,
                existing,
                item,
                data=data,
                merge=merge,
                if_match=if_match,
                ttl=ttl,
                origin=origin,
                created_by=created_by,
                if_absent=if_absent,
                at=at,
            )
            if existing is None:
                # A new map item; drop an expired row holding the key, if any.
                conn.execute("DELETE FROM items WHERE object_sid = ? AND key = ?", (obj.sid, item))
                self._insert_item(conn, obj.sid, record)
            else:
                conn.execute(
                    _UPDATE_ITEM[column],
                    (
                        json_text(record.data),
                        record.last_event_id,
                        at,
                        record.date_expires,
                        obj.sid,
                        item,
                    ),
                )
            event = self._append_event(conn, obj, frame, at)
            _add_webhook(conn, webhook, event, at)
            self._recent.put_object(obj)
            self._recent.put_item(obj.sid, item, record)
            return record, event

        return await self._run_logged(op, webhook)

    async def set_item_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str, ttl: int
    ) -> ItemRecord:
        column = item_column(kind, item)

        def op(conn: sqlite3.Connection) -> ItemRecord:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            found = self._find_item(conn, obj.sid, column, item, at)
            if found is None:
                raise common.item_not_found(kind, obj.sid, item)
            found.date_expires = expires_at(ttl, at)
            conn.execute(
                f"UPDATE items SET date_expires = ? WHERE object_sid = ? AND {column} = ?",
                (found.date_expires, obj.sid, item),
            )
            self._recent.put_item(obj.sid, item, found)
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
        webhook: OnChange | None = None,
    ) -> StoredEvent:
        column = item_column(kind, item)

        def op(conn: sqlite3.Connection) -> StoredEvent:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            found = self._find_item(conn, obj.sid, column, item, at)
            frame = common.remove_item(
                kind, obj, found, item, if_match=if_match, origin=origin, at=at
            )
            conn.execute(
                f"DELETE FROM items WHERE object_sid = ? AND {column} = ?", (obj.sid, item)
            )
            event = self._append_event(conn, obj, frame, at)
            _add_webhook(conn, webhook, event, at)
            self._recent.put_object(obj)
            self._recent.drop_item(obj.sid, item)
            return event

        return await self._run_logged(op, webhook)

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
        column = item_column(kind, start) if start is not None else items_column(kind)
        if order not in ("asc", "desc"):
            raise InvalidRequestError(f"order must be 'asc' or 'desc', got {order!r}")
        size = max(page_size, 0)
        if order == "asc":
            after, before, direction = (">=" if inclusive else ">"), "<", "ASC"
        else:
            after, before, direction = ("<=" if inclusive else "<"), ">", "DESC"

        def op(conn: sqlite3.Connection) -> PageResult:
            at = now()
            obj = self._require_object(conn, service_sid, kind, sid, at)
            where = f"object_sid = ? AND {_LIVE}"
            params: tuple[Any, ...] = (obj.sid, at)
            if start is not None:
                where += f" AND {column} {after} ?"
                params += (start,)
            rows = conn.execute(
                f"SELECT {ITEM_COLS} FROM items WHERE {where} "
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
                items=[item_from_row(r) for r in rows[:size]],
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
                f"INSERT INTO permissions ({PERMISSION_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (object_sid, identity) DO UPDATE SET "
                "service_sid = excluded.service_sid, read = excluded.read, "
                "write = excluded.write, manage = excluded.manage",
                values,
            )
            return permission_from_row(values)

        return await self._run(op)

    async def get_permission(
        self, service_sid: str, object_sid: str, identity: str
    ) -> PermissionRecord | None:
        def op(conn: sqlite3.Connection) -> PermissionRecord | None:
            row = conn.execute(
                f"SELECT {PERMISSION_COLS} FROM permissions "
                "WHERE service_sid = ? AND object_sid = ? AND identity = ?",
                (service_sid, object_sid, identity),
            ).fetchone()
            return None if row is None else permission_from_row(row)

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
                f"SELECT {PERMISSION_COLS} FROM permissions WHERE {where} "
                "ORDER BY identity LIMIT ?",
                (*params, size),
            ).fetchall()
            return [permission_from_row(r) for r in rows]

        return await self._read(op)

    # ---- events ----------------------------------------------------------------------

    async def events_since(
        self, service_sid: str, sid: str, since: int, limit: int
    ) -> list[StoredEvent] | None:
        def op(conn: sqlite3.Connection) -> list[StoredEvent] | None:
            row = conn.execute(
                f"SELECT {_revision('objects')} FROM objects "
                f"WHERE service_sid = ? AND sid = ? AND {_LIVE}",
                (service_sid, sid, now()),
            ).fetchone()
            if row is None:
                return None
            if since >= row[0]:
                return []
            if since < row[0] - self.event_retention:
                return None  # out of the log, trimmed or not yet (see `_PRUNE_STRIDE`)
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

    async def object_positions(self, sids: Collection[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(sids))

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            at = now()
            positions: dict[str, int] = {}
            for start in range(0, len(wanted), 500):  # bound the number of SQL variables
                chunk = wanted[start : start + 500]
                rows = conn.execute(
                    f"SELECT sid, {_revision('objects')} FROM objects "
                    f"WHERE sid IN ({', '.join('?' * len(chunk))}) AND {_LIVE}",
                    (*chunk, at),
                ).fetchall()
                positions.update((sid, int(last_event_id)) for sid, last_event_id in rows)
            return positions

        if not wanted:
            return {}
        return await self._read(op)

    async def expire(self, now: float, limit: int) -> list[StoredEvent]:
        at, size = now, max(limit, 0)

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            expired_objects = conn.execute(
                f"SELECT sid, service_sid, kind, data, {_revision('objects')} FROM objects "
                "WHERE date_expires IS NOT NULL AND date_expires <= ? "
                "ORDER BY date_expires, sid LIMIT ?",
                (at, size),
            ).fetchall()
            events = [common.expired_object_event(row) for row in expired_objects]
            for row in expired_objects:
                _delete_object_rows(conn, row[0])
            self._recent.drop_objects([row[0] for row in expired_objects])
            if len(events) == size:
                return events  # items wait until no expired object is left

            # Every expired object is gone: each of these items' objects is live.
            expired_items = conn.execute(
                "SELECT i.object_sid, i.idx, i.key, i.data, o.kind, o.service_sid, "
                f"{_revision('o')} FROM items i JOIN objects o ON o.sid = i.object_sid "
                "WHERE i.date_expires IS NOT NULL AND i.date_expires <= ? "
                "ORDER BY i.date_expires, i.object_sid, i.idx, i.key LIMIT ?",
                (at, size),
            ).fetchall()
            item_events, counters = common.expired_item_events(expired_items)
            for row, event in zip(expired_items, item_events, strict=True):
                sid, idx, key, kind = row[0], row[1], row[2], row[4]
                column, ref = ("idx", idx) if kind == "list" else ("key", key)
                conn.execute(f"DELETE FROM items WHERE object_sid = ? AND {column} = ?", (sid, ref))
                self._store_event(conn, sid, event.event_id, event.frame, at)
            for sid, event_id in counters.items():
                conn.execute(
                    "UPDATE objects SET last_event_id = ?, date_updated = ? WHERE sid = ?",
                    (event_id, at, sid),
                )
            self._recent.drop_objects(counters)
            return events + item_events

        return await self._run(op)

    async def prune_events(self, now: float, limit: int) -> int:
        cutoff, size = now - self.event_retention_seconds, max(limit, 0)

        def op(conn: sqlite3.Connection) -> int:
            # Of the `size` oldest events by rowid (a new row's is above every other's), those
            # older than the window: a bounded walk however long the log. Events stored while
            # the clock ran ahead hold back the ones behind them until they are old enough
            # themselves: pruning can be late, never early.
            gone = conn.execute(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM "
                "(SELECT rowid, created_at FROM events ORDER BY rowid LIMIT ?) "
                "WHERE created_at < ?) RETURNING object_sid, event_id, created_at",
                (size, cutoff),
            ).fetchall()
            # An object's newest event may be among them: its row takes the revision and
            # date_updated that only the log held (see `_revision`).
            newest: dict[str, tuple[int, float]] = {}
            for sid, event_id, created_at in gone:
                if sid not in newest or event_id > newest[sid][0]:
                    newest[sid] = (event_id, created_at)
            conn.executemany(
                "UPDATE objects SET last_event_id = ?, date_updated = ? "
                "WHERE sid = ? AND last_event_id < ?",
                [(event_id, at, sid, event_id) for sid, (event_id, at) in newest.items()],
            )
            return len(gone)

        return await self._run(op)

    # ---- webhook outbox --------------------------------------------------------------

    async def add_webhook(self, delivery: WebhookDelivery) -> None:
        at = now()
        await self._run(lambda conn: _add_webhook(conn, lambda _: delivery, None, at))

    async def claim_webhooks(self, owner: str, lease: float, limit: int) -> list[OutboxRow]:
        def op(conn: sqlite3.Connection) -> list[OutboxRow]:
            rows = conn.execute(_OUTBOX.claim, (owner, lease, max(limit, 0))).fetchall()
            return sorted((common.outbox_from_row(r) for r in rows), key=lambda r: r.seq)

        return await self._run(op)

    async def renew_webhook_leases(
        self, owner: str, seqs: Collection[int], lease: float
    ) -> set[int]:
        wanted = json.dumps(sorted(seqs))

        def op(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                f"UPDATE webhook_outbox SET lease_expires = {_DB_NOW} + ?1 "
                "WHERE lease_owner = ?2 AND seq IN (SELECT value FROM json_each(?3)) "
                "RETURNING seq",
                (lease, owner, wanted),
            ).fetchall()
            return {int(r[0]) for r in rows}

        return await self._run(op) if seqs else set()

    async def retry_webhook(
        self, seq: int, owner: str, *, attempts: int, delay: float, lease: float
    ) -> bool:
        args = (seq, owner, attempts, delay, lease)
        return await self._run(lambda conn: bool(conn.execute(_OUTBOX.retry, args).fetchall()))

    async def finish_webhook(self, seq: int, owner: str) -> bool:
        return await self._run(
            lambda conn: bool(conn.execute(_OUTBOX.finish, (seq, owner)).fetchall())
        )

    async def release_webhooks(self, owner: str) -> None:
        await self._run(lambda conn: conn.execute(_OUTBOX.release, (owner,)))

    async def webhook_backlog(self) -> int:
        return await self._read(lambda conn: int(conn.execute(_OUTBOX.backlog).fetchone()[0]))

    async def trim_webhooks(self, per_object: int) -> int:
        return await self._run(lambda conn: conn.execute(_OUTBOX.trim, (per_object,)).rowcount)

    # ---- write helpers (writer thread) -----------------------------------------------

    def _append_event(
        self, conn: sqlite3.Connection, obj: ObjectRecord, frame: bytes, at: float
    ) -> StoredEvent:
        """Store the event `obj.last_event_id` of `obj`."""
        self._store_event(conn, obj.sid, obj.last_event_id, frame, at)
        return StoredEvent(obj.service_sid, obj.sid, obj.last_event_id, frame)

    def _store_event(
        self, conn: sqlite3.Connection, sid: str, event_id: int, frame: bytes, at: float
    ) -> None:
        """Store the newest event of object `sid`; its log keeps the `event_retention` newest
        (trimmed every `_PRUNE_STRIDE` events)."""
        conn.execute(
            "INSERT INTO events (object_sid, event_id, frame, created_at) VALUES (?, ?, ?, ?)",
            (sid, event_id, frame, at),
        )
        if event_id % _PRUNE_STRIDE == 0 and event_id > self.event_retention:
            conn.execute(
                "DELETE FROM events WHERE object_sid = ? AND event_id <= ?",
                (sid, event_id - self.event_retention),
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
                json_text(item.data),
                item.last_event_id,
                item.date_created,
                item.date_updated,
                item.date_expires,
                item.created_by,
            ),
        )


def _apply_records(conn: sqlite3.Connection, records: list[list[Statement]], seq: int) -> None:
    """Run the statements of logged writes (`_coalesced`) and store `seq` as the last record
    applied, in one transaction: all of it, or (rolled back) none."""
    conn.execute("BEGIN")
    try:
        for sql, params in _coalesced(records):
            conn.execute(sql, params)
        conn.execute("UPDATE write_log SET applied_seq = ?", (seq,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
        raise


def _coalesced(records: list[list[Statement]]) -> list[Statement]:
    """The statements of `records` in order, without an update of a row that a later one
    in them overwrites (`_ROW_KEY_PARAMS`): a hot item written ten times in a batch is
    updated once (its ten events are all stored)."""
    statements = [statement for record in records for statement in record]
    if len(records) < 2:
        return statements
    last: dict[tuple[str, tuple[Any, ...]], int] = {}
    for i, (sql, params) in enumerate(statements):
        n = _ROW_KEY_PARAMS.get(sql)
        if n:
            last[sql, params[-n:]] = i
    return [
        (sql, params)
        for i, (sql, params) in enumerate(statements)
        if not (n := _ROW_KEY_PARAMS.get(sql)) or last[sql, params[-n:]] == i
    ]


# ---- owning the file ---------------------------------------------------------------------


class FileInUseError(RuntimeError):
    """Another process (another server on the same data directory?) holds the SQLite file."""


def _take_file(conn: sqlite3.Connection, path: Path) -> None:
    """Hold the file exclusively on `conn` from now on (waiting up to 5 s for another holder
    to let go), in WAL mode; FileInUseError if another process keeps it."""
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("PRAGMA busy_timeout=5000")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")  # the exclusive lock, now
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        raise FileInUseError(
            f"{path} is in use by another process (another sync-server on the same data "
            "directory?): SQLite storage needs the file to itself"
        ) from exc


def check_file_free(path: str | Path) -> None:
    """FileInUseError if another process holds the SQLite file at `path` (the CLI asks before
    it starts serving, to fail with one line instead of a failed startup)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _take_file(conn, Path(path))
    finally:
        conn.close()


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
