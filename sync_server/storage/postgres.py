"""PostgreSQL backend (asyncpg): one database shared by several server processes.

Schema. `start()` applies the versioned `MIGRATIONS` in one transaction holding a fixed
advisory lock, recording each version in `sync_schema_migrations`: nodes starting together
queue on the lock, and each later one finds every version applied. JSON is stored as TEXT
(orjson, key order as written), times as DOUBLE PRECISION Unix seconds taken in Python, event
frames as BYTEA. Text keys use the "C" collation, so sids, map keys and identities sort by
bytes as in SQLite, whatever the database's locale.

Per-object order. Every write to an object runs in its own transaction that first locks the
object's row (`SELECT ... FOR UPDATE`) and reads items only after that, so it sees every
earlier write of the object. Writes that append an event compute it in Python (the rules in
`common`) and send one statement that stores the item change, the event and the object's
new `last_event_id`. The next writer of the object gets the lock only after COMMIT: event
ids are gap-free, unique, and committed in order, and a method returns only once committed.
Writes without an event (TTL changes) take the same lock, so they never race with a write
that read the old value.

Within one process, writers of one object also queue on an asyncio lock before taking a
pooled connection: only one of them at a time waits on the row lock (PostgreSQL wakes every
waiter of a row at each commit), and the others hold no connection while they wait.

Deadlocks. A transaction locks one object row, or several in sid order (each step of
`expire`, `delete_service`); `prune_events` skips rows other transactions hold.

Reads run outside transactions on a pooled connection, one statement each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sync_generated.errors import InvalidRequestError, UniqueNameExistsError

from ..credentials import redact_url
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
    OBJECT_COLS,
    PERMISSION_COLS,
    SERVICE_COLS,
    item_column,
    item_from_row,
    items_column,
    json_text,
    object_from_row,
    permission_from_row,
    qualified,
    service_from_row,
)

__all__ = ["MIGRATIONS", "PostgresStorage"]

_Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

log = logging.getLogger("sync_server.postgres")


# pg_advisory locks (64-bit keys, "SYNCMIGR" and "SYNCEXPR" in ASCII).
MIGRATION_LOCK = 0x53594E43_4D494752
EXPIRE_LOCK = 0x53594E43_45585052

_V1 = """
CREATE TABLE services (
    sid TEXT COLLATE "C" PRIMARY KEY,
    account_sid TEXT NOT NULL,
    unique_name TEXT COLLATE "C",
    friendly_name TEXT,
    webhook_url TEXT,
    webhooks_from_rest_enabled BOOLEAN NOT NULL,
    reachability_webhooks_enabled BOOLEAN NOT NULL,
    acl_enabled BOOLEAN NOT NULL,
    reachability_debouncing_enabled BOOLEAN NOT NULL,
    reachability_debouncing_window BIGINT NOT NULL,
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX services_unique_name ON services (unique_name);

CREATE TABLE objects (
    sid TEXT COLLATE "C" PRIMARY KEY,
    service_sid TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    unique_name TEXT COLLATE "C",
    data TEXT,
    last_event_id BIGINT NOT NULL,
    next_index BIGINT NOT NULL DEFAULT 0,
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL,
    date_expires DOUBLE PRECISION,
    created_by TEXT NOT NULL,
    CONSTRAINT objects_unique_name UNIQUE (service_sid, kind, unique_name)
);
CREATE INDEX objects_expires ON objects (date_expires) WHERE date_expires IS NOT NULL;
CREATE INDEX objects_by_kind ON objects (service_sid, kind, sid);

CREATE TABLE items (
    object_sid TEXT COLLATE "C" NOT NULL,
    idx BIGINT,
    key TEXT COLLATE "C",
    data TEXT NOT NULL,
    last_event_id BIGINT NOT NULL,
    date_created DOUBLE PRECISION NOT NULL,
    date_updated DOUBLE PRECISION NOT NULL,
    date_expires DOUBLE PRECISION,
    created_by TEXT NOT NULL,
    CONSTRAINT items_by_index UNIQUE (object_sid, idx),
    CONSTRAINT items_by_key UNIQUE (object_sid, key),
    CONSTRAINT items_index_or_key CHECK ((idx IS NULL) <> (key IS NULL))
);
CREATE INDEX items_expires ON items (date_expires) WHERE date_expires IS NOT NULL;

CREATE TABLE events (
    object_sid TEXT COLLATE "C" NOT NULL,
    event_id BIGINT NOT NULL,
    frame BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (object_sid, event_id)
);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE permissions (
    service_sid TEXT COLLATE "C" NOT NULL,
    object_sid TEXT COLLATE "C" NOT NULL,
    identity TEXT COLLATE "C" NOT NULL,
    read BOOLEAN NOT NULL,
    write BOOLEAN NOT NULL,
    manage BOOLEAN NOT NULL,
    PRIMARY KEY (object_sid, identity)
);
CREATE INDEX permissions_service ON permissions (service_sid);
"""

# Expiry takes the oldest first, in batches: indexes in exactly that order.
_V2 = """
CREATE INDEX objects_expiry ON objects (date_expires, sid) WHERE date_expires IS NOT NULL;
DROP INDEX objects_expires;
CREATE INDEX items_expiry ON items (date_expires, object_sid, idx, key)
    WHERE date_expires IS NOT NULL;
DROP INDEX items_expires;
"""

# The webhook outbox (see `common.outbox_sql`).
_V3 = """
CREATE TABLE webhook_outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_sid TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    params TEXT NOT NULL,
    token TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX webhook_outbox_by_object ON webhook_outbox (object_sid, seq);
"""

# (version, SQL), applied in order, each exactly once per database. Append; never edit.
MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1), (2, _V2), (3, _V3))

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS sync_schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


# Leases and back-off use the database's clock, so the nodes' clocks need not agree.
_DB_NOW = "EXTRACT(EPOCH FROM now())::float8"
_OUTBOX = common.outbox_sql(lambda n: f"${n}", _DB_NOW, " FOR UPDATE SKIP LOCKED")
_RENEW_LEASES = (
    f"UPDATE webhook_outbox SET lease_expires = {_DB_NOW} + $1 "
    "WHERE lease_owner = $2 AND seq = ANY($3::bigint[]) RETURNING seq"
)


def _live(time_param: str, alias: str = "") -> str:
    """Not expired at `time_param`."""
    prefix = f"{alias}." if alias else ""
    return f"({prefix}date_expires IS NULL OR {prefix}date_expires > {time_param})"


# ---- statements ------------------------------------------------------------------------

_DELETE_OBJECTS = """
WITH items_gone AS (DELETE FROM items WHERE object_sid = ANY($1::text[])),
     events_gone AS (DELETE FROM events WHERE object_sid = ANY($1::text[])),
     permissions_gone AS (DELETE FROM permissions WHERE object_sid = ANY($1::text[]))
DELETE FROM objects WHERE sid = ANY($1::text[])
"""

_INSERT_OBJECT = (
    "INSERT INTO objects (sid, service_sid, kind, unique_name, data, last_event_id, next_index, "
    "date_created, date_updated, date_expires, created_by) "
    "VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6, $7, $8)"
)


def _with_event(changes: str = "", object_sets: str = "") -> str:
    """One statement appending an event and moving the object's counter, plus `changes` (a
    data-modifying CTE) and `object_sets`. Parameters: $1 object sid, $2 event id (the new
    last_event_id), $3 frame, $4 time, $5 prune the log up to this event id; then $6...
    for the changes."""
    ctes = (
        "new_event AS (INSERT INTO events (object_sid, event_id, frame, created_at) "
        "VALUES ($1, $2, $3, $4)), "
        "pruned AS (DELETE FROM events WHERE object_sid = $1 AND event_id <= $5)"
    )
    if changes:
        ctes += f", {changes}"
    return (
        f"WITH {ctes} UPDATE objects SET last_event_id = $2, date_updated = $4{object_sets} "
        "WHERE sid = $1"
    )


def _upsert_item(column: str) -> str:
    """Write the whole item row: $6 idx, $7 key, $8 data, $9 date_created, $10 date_expires,
    $11 created_by (last_event_id $2, date_updated $4). A map item replaces an expired row
    holding its key; a list item exists (set) or has a fresh index (push)."""
    return (
        "item AS (INSERT INTO items (object_sid, idx, key, data, last_event_id, date_created, "
        "date_updated, date_expires, created_by) VALUES ($1, $6, $7, $8, $2, $9, $4, $10, $11) "
        f"ON CONFLICT (object_sid, {column}) DO UPDATE SET data = excluded.data, "
        "last_event_id = excluded.last_event_id, date_created = excluded.date_created, "
        "date_updated = excluded.date_updated, date_expires = excluded.date_expires, "
        "created_by = excluded.created_by)"
    )


_UPDATE_DOCUMENT = _with_event(object_sets=", data = $6, date_expires = $7")
_PUSH_ITEM = _with_event(_upsert_item("idx"), ", next_index = $6 + 1")
_WRITE_ITEM = {column: _with_event(_upsert_item(column)) for column in ("idx", "key")}
_REMOVE_ITEM = {
    column: _with_event(f"gone AS (DELETE FROM items WHERE object_sid = $1 AND {column} = $6)")
    for column in ("idx", "key")
}

_EXPIRED_OBJECTS = """
SELECT sid, service_sid, kind, data, last_event_id, date_expires FROM objects
WHERE sid = ANY(ARRAY(
    SELECT sid FROM objects WHERE date_expires IS NOT NULL AND date_expires <= $1
    ORDER BY date_expires, sid LIMIT $2
)) ORDER BY sid FOR UPDATE
"""
_EXPIRED_ITEM_HOLDERS = """
SELECT sid, date_expires FROM objects
WHERE sid = ANY(ARRAY(
    SELECT object_sid FROM items WHERE date_expires IS NOT NULL AND date_expires <= $1
    ORDER BY date_expires, object_sid, idx, key LIMIT $2
)) ORDER BY sid FOR UPDATE
"""
_EXPIRED_ITEMS = """
SELECT i.object_sid, i.idx, i.key, i.data, o.kind, o.service_sid, o.last_event_id, i.ctid
FROM items i JOIN objects o ON o.sid = i.object_sid
WHERE i.object_sid = ANY($2::text[]) AND i.date_expires IS NOT NULL AND i.date_expires <= $1
ORDER BY i.date_expires, i.object_sid, i.idx, i.key LIMIT $3
"""
# Deletes the items ($1: their ctids, read under their objects' locks), logs the removals
# ($6-$8: those the log keeps), moves each object's counter ($3, $4) and prunes its log up
# to $5, as `_with_event` does for one write.
_EXPIRE_ITEMS = """
WITH gone AS (DELETE FROM items WHERE ctid = ANY($1::tid[])),
logged AS (
    INSERT INTO events (object_sid, event_id, frame, created_at)
    SELECT sid, event_id, frame, $2 FROM unnest($6::text[], $7::bigint[], $8::bytea[])
        AS e(sid, event_id, frame)
), pruned AS (
    DELETE FROM events e USING unnest($3::text[], $5::bigint[]) AS c(sid, upto)
    WHERE e.object_sid = c.sid AND e.event_id <= c.upto
)
UPDATE objects o SET last_event_id = c.last_event_id, date_updated = $2
FROM unnest($3::text[], $4::bigint[]) AS c(sid, last_event_id)
WHERE o.sid = c.sid
"""

# Skips rows that writers hold (their own pruning), so it never waits on them.
_PRUNE_BY_AGE = """
DELETE FROM events WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2
    FOR UPDATE SKIP LOCKED
))
"""


def _expired(row: asyncpg.Record, at: float) -> bool:
    return row["date_expires"] is not None and row["date_expires"] <= at


def _item_args(item: ItemRecord) -> tuple[Any, ...]:
    """Parameters $6.. of `_upsert_item`."""
    return (
        item.index,
        item.key,
        json_text(item.data),
        item.date_created,
        item.date_expires,
        item.created_by,
    )


@dataclass(slots=True)
class _Queue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class PostgresStorage(Storage):
    """`Storage` on a PostgreSQL database. Create, `await start()`, use, `await close()`."""

    def __init__(
        self,
        url: str,
        *,
        event_retention: int = 10_000,
        event_retention_seconds: float = 86_400,
        min_pool: int = 2,
        max_pool: int = 10,
        statement_cache_size: int = 100,
    ) -> None:
        if event_retention < 1:
            raise ValueError("event_retention must be >= 1")
        if not 0 <= min_pool <= max_pool or max_pool < 1:
            raise ValueError("need 0 <= min_pool <= max_pool and max_pool >= 1")
        self.url = url
        self.event_retention = event_retention
        self.event_retention_seconds = float(event_retention_seconds)
        self.min_pool = min_pool
        self.max_pool = max_pool
        # Prepared statements kept per connection (asyncpg's cache); 0 behind pgbouncer in
        # transaction mode, where a connection's statements may not be there next time.
        if statement_cache_size < 0:
            raise ValueError("statement_cache_size must be >= 0")
        self.statement_cache_size = statement_cache_size
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._queues: dict[tuple[str, str, str], _Queue] = {}

    # ---- machinery -------------------------------------------------------------------

    async def start(self) -> None:
        if self._pool is not None:
            raise RuntimeError("PostgresStorage already started")
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_pool,
                max_size=self.max_pool,
                statement_cache_size=self.statement_cache_size,
                server_settings={"application_name": "sync-server"},
                reset=_keep_session,
                timeout=10,  # to connect: an unreachable database fails requests, never hangs
                command_timeout=30,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise RuntimeError(f"cannot use PostgreSQL at {redact_url(self.url)}: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                await _migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except TimeoutError:
                log.warning("PostgreSQL connections did not close in 5 s; dropping them")
                pool.terminate()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1", timeout=2)

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise RuntimeError("PostgresStorage is not started or is closed")
        return self._pool

    @asynccontextmanager
    async def _queued(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        """This process's writers of one object, one at a time (an optimisation only: the
        row lock is what orders writers, across processes too)."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        queue.users += 1
        try:
            async with queue.lock:
                yield
        finally:
            queue.users -= 1
            if queue.users == 0:
                del self._queues[key]

    @asynccontextmanager
    async def _locked(
        self, service_sid: str, kind: str, sid_or_name: str
    ) -> AsyncIterator[tuple[_Conn, ObjectRecord, int, float]]:
        """A transaction holding the live object's row lock: (conn, object, next list index,
        now). The time is taken once the lock is held, so it never goes back between two
        events of one object. Commits when the block ends, rolls back if it raises."""
        column = common.object_column(kind, sid_or_name)
        async with (
            self._queued((service_sid, kind, sid_or_name)),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            row = await conn.fetchrow(
                f"SELECT {OBJECT_COLS}, next_index FROM objects "
                f"WHERE service_sid = $1 AND kind = $2 AND {column} = $3 FOR UPDATE",
                service_sid,
                kind,
                sid_or_name,
            )
            at = now()
            if row is None or (row["date_expires"] is not None and row["date_expires"] <= at):
                raise common.object_not_found(kind, sid_or_name)
            yield conn, object_from_row(row), int(row["next_index"]), at

    async def _append(
        self,
        conn: _Conn,
        webhook: OnChange | None,
        sql: str,
        obj: ObjectRecord,
        frame: bytes,
        at: float,
        *args: Any,
    ) -> StoredEvent:
        """Run a `_with_event` statement for event `obj.last_event_id`, then store its webhook."""
        event_id = obj.last_event_id
        await conn.execute(sql, obj.sid, event_id, frame, at, self._pruned_upto(event_id), *args)
        event = StoredEvent(obj.service_sid, obj.sid, event_id, frame)
        await _add_webhook(conn, webhook, event, at)
        return event

    def _pruned_upto(self, last_event_id: int) -> int:
        """The log of an object keeps its `event_retention` newest events: ids above this."""
        return last_event_id - self.event_retention

    # ---- services --------------------------------------------------------------------

    async def put_service(self, service: ServiceRecord) -> ServiceRecord:
        columns = SERVICE_COLS.split(", ")
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        row = await self.pool.fetchrow(
            f"INSERT INTO services ({SERVICE_COLS}) VALUES ({marks}) "
            f"ON CONFLICT (sid) DO UPDATE SET {updates} RETURNING {SERVICE_COLS}",
            service.sid,
            service.account_sid,
            service.unique_name,
            service.friendly_name,
            service.webhook_url,
            service.webhooks_from_rest_enabled,
            service.reachability_webhooks_enabled,
            service.acl_enabled,
            service.reachability_debouncing_enabled,
            service.reachability_debouncing_window,
            service.date_created,
            service.date_updated,
        )
        assert row is not None
        return service_from_row(row)

    async def get_service(self, sid_or_name: str) -> ServiceRecord | None:
        # By sid first; else the oldest service with that unique name.
        row = await self.pool.fetchrow(
            f"SELECT {SERVICE_COLS} FROM services WHERE sid = $1 OR unique_name = $1 "
            "ORDER BY sid = $1 DESC, date_created, sid LIMIT 1",
            sid_or_name,
        )
        return None if row is None else service_from_row(row)

    async def list_services(self, *, after_sid: str | None, limit: int) -> list[ServiceRecord]:
        size = max(limit, 0)
        if after_sid is None:
            rows = await self.pool.fetch(
                f"SELECT {SERVICE_COLS} FROM services ORDER BY sid LIMIT $1", size
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {SERVICE_COLS} FROM services WHERE sid > $1 ORDER BY sid LIMIT $2",
                after_sid,
                size,
            )
        return [service_from_row(r) for r in rows]

    async def delete_service(self, sid: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            owned = await conn.fetch(
                "SELECT sid FROM objects WHERE service_sid = $1 ORDER BY sid FOR UPDATE", sid
            )
            if owned:
                await conn.execute(_DELETE_OBJECTS, [r[0] for r in owned])
            deleted = await conn.fetchval(
                "WITH permissions_gone AS (DELETE FROM permissions WHERE service_sid = $1) "
                "DELETE FROM services WHERE sid = $1 RETURNING true",
                sid,
            )
        return bool(deleted)

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
        at = now()
        obj = common.new_object(
            service_sid,
            kind,
            unique_name=unique_name,
            data=data,
            ttl=ttl,
            created_by=created_by,
            at=at,
        )
        args = (
            obj.sid,
            service_sid,
            kind,
            unique_name,
            json_text(obj.data),
            at,
            obj.date_expires,
            created_by,
        )
        try:
            if webhook is None:
                await self.pool.execute(_INSERT_OBJECT, *args)
            else:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(_INSERT_OBJECT, *args)
                    await _add_webhook(conn, webhook, obj, at)
        except asyncpg.UniqueViolationError as exc:
            if unique_name is None or exc.constraint_name != "objects_unique_name":
                raise
            await self._take_over_name(obj, at, args, webhook)
        return obj

    async def _take_over_name(
        self, obj: ObjectRecord, at: float, args: tuple[Any, ...], webhook: OnCreate | None
    ) -> None:
        """Insert `obj` whose unique name is held: fine if the holder has expired (it is
        deleted, as if swept), UniqueNameExistsError otherwise."""
        taken = UniqueNameExistsError(
            f"A {obj.kind} with unique name {obj.unique_name!r} already exists"
        )
        async with self.pool.acquire() as conn, conn.transaction():
            holder = await conn.fetchrow(
                "SELECT sid, date_expires FROM objects "
                "WHERE service_sid = $1 AND kind = $2 AND unique_name = $3 FOR UPDATE",
                obj.service_sid,
                obj.kind,
                obj.unique_name,
            )
            if holder is not None:
                if holder["date_expires"] is None or holder["date_expires"] > at:
                    raise taken
                await conn.execute(_DELETE_OBJECTS, [holder["sid"]])  # expired = gone
            try:
                await conn.execute(_INSERT_OBJECT, *args)
            except asyncpg.UniqueViolationError as exc:  # another node took it meanwhile
                if exc.constraint_name != "objects_unique_name":
                    raise
                raise taken from None
            await _add_webhook(conn, webhook, obj, at)

    async def get_object(
        self, service_sid: str, kind: ObjectKind, sid_or_name: str
    ) -> ObjectRecord | None:
        column = common.object_column(kind, sid_or_name)
        row = await self.pool.fetchrow(
            f"SELECT {OBJECT_COLS} FROM objects "
            f"WHERE service_sid = $1 AND kind = $2 AND {column} = $3 AND {_live('$4')}",
            service_sid,
            kind,
            sid_or_name,
            now(),
        )
        return None if row is None else object_from_row(row)

    async def list_objects(
        self, service_sid: str, kind: ObjectKind, *, after_sid: str | None, limit: int
    ) -> list[ObjectRecord]:
        common.check_kind(kind)
        where = f"service_sid = $1 AND kind = $2 AND {_live('$3')}"
        params: tuple[Any, ...] = (service_sid, kind, now(), max(limit, 0))
        if after_sid is not None:
            where += " AND sid > $5"
            params += (after_sid,)
        rows = await self.pool.fetch(
            f"SELECT {OBJECT_COLS} FROM objects WHERE {where} ORDER BY sid LIMIT $4", *params
        )
        return [object_from_row(r) for r in rows]

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
        async with self._locked(service_sid, "document", sid) as (conn, doc, _, at):
            frame = common.update_document(
                doc, data=data, merge=merge, if_match=if_match, ttl=ttl, origin=origin, at=at
            )
            event = await self._append(
                conn,
                webhook,
                _UPDATE_DOCUMENT,
                doc,
                frame,
                at,
                json_text(doc.data),
                doc.date_expires,
            )
        return doc, event

    async def set_object_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, ttl: int
    ) -> ObjectRecord:
        async with self._locked(service_sid, kind, sid) as (conn, obj, _, at):
            obj.date_expires = expires_at(ttl, at)
            await conn.execute(
                "UPDATE objects SET date_expires = $2 WHERE sid = $1", obj.sid, obj.date_expires
            )
        return obj

    async def remove_object(
        self,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        *,
        origin: str | None,
        webhook: OnChange | None = None,
    ) -> StoredEvent:
        async with self._locked(service_sid, kind, sid) as (conn, obj, _, at):
            await conn.execute(_DELETE_OBJECTS, [obj.sid])
            event = common.object_removed_event(
                kind, obj.service_sid, obj.sid, obj.last_event_id, obj.data, origin
            )
            await _add_webhook(conn, webhook, event, at)
        return event

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
        async with self._locked(service_sid, "list", sid) as (conn, lst, index, at):
            item, frame = common.push_item(
                lst, index, data=data, ttl=ttl, origin=origin, created_by=created_by, at=at
            )
            event = await self._append(conn, webhook, _PUSH_ITEM, lst, frame, at, *_item_args(item))
        return item, event

    async def get_item(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str
    ) -> ItemRecord:
        column = item_column(kind, item)
        object_col = common.object_column(kind, sid)
        row = await self.pool.fetchrow(
            f"SELECT {qualified(ITEM_COLS, 'i')}, o.sid FROM objects o "
            f"LEFT JOIN items i ON i.object_sid = o.sid AND i.{column} = $4 "
            f"AND {_live('$5', 'i')} "
            f"WHERE o.service_sid = $1 AND o.kind = $2 AND o.{object_col} = $3 "
            f"AND {_live('$5', 'o')}",
            service_sid,
            kind,
            sid,
            item,
            now(),
        )
        if row is None:
            raise common.object_not_found(kind, sid)
        if row["data"] is None:
            raise common.item_not_found(kind, row["sid"], item)
        return item_from_row(row)

    async def _find_item(
        self, conn: _Conn, object_sid: str, column: str, item: int | str, at: float
    ) -> ItemRecord | None:
        row = await conn.fetchrow(
            f"SELECT {ITEM_COLS} FROM items "
            f"WHERE object_sid = $1 AND {column} = $2 AND {_live('$3')}",
            object_sid,
            item,
            at,
        )
        return None if row is None else item_from_row(row)

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
        async with self._locked(service_sid, kind, sid) as (conn, obj, _, at):
            existing = await self._find_item(conn, obj.sid, column, item, at)
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
            event = await self._append(
                conn, webhook, _WRITE_ITEM[column], obj, frame, at, *_item_args(record)
            )
        return record, event

    async def set_item_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str, ttl: int
    ) -> ItemRecord:
        column = item_column(kind, item)
        async with self._locked(service_sid, kind, sid) as (conn, obj, _, at):
            row = await conn.fetchrow(
                f"UPDATE items SET date_expires = $3 "
                f"WHERE object_sid = $1 AND {column} = $2 AND {_live('$4')} "
                f"RETURNING {ITEM_COLS}",
                obj.sid,
                item,
                expires_at(ttl, at),
                at,
            )
            if row is None:
                raise common.item_not_found(kind, obj.sid, item)
        return item_from_row(row)

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
        async with self._locked(service_sid, kind, sid) as (conn, obj, _, at):
            found = await self._find_item(conn, obj.sid, column, item, at)
            frame = common.remove_item(
                kind, obj, found, item, if_match=if_match, origin=origin, at=at
            )
            event = await self._append(conn, webhook, _REMOVE_ITEM[column], obj, frame, at, item)
        return event

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
        object_col = common.object_column(kind, sid)
        size = max(page_size, 0)
        if order == "asc":
            after, before, direction = (">=" if inclusive else ">"), "<", "ASC"
        else:
            after, before, direction = ("<=" if inclusive else "<"), ">", "DESC"
        params: tuple[Any, ...] = (service_sid, kind, sid, now(), size + 1)
        from_start, has_prev = "", "false"
        if start is not None:
            params += (start,)
            from_start = f"AND {column} {after} $6"
            has_prev = (
                f"EXISTS (SELECT 1 FROM items b WHERE b.object_sid = o.sid "
                f"AND {_live('$4', 'b')} AND b.{column} {before} $6)"
            )
        # One row per item of the page, or one row of NULL item columns for an empty page;
        # no row if the object does not exist.
        rows = await self.pool.fetch(
            f"SELECT {qualified(ITEM_COLS, 'i')}, p.has_prev FROM objects o "
            f"CROSS JOIN LATERAL (SELECT {has_prev}) AS p(has_prev) "
            f"LEFT JOIN LATERAL (SELECT {ITEM_COLS} FROM items "
            f"WHERE object_sid = o.sid AND {_live('$4')} {from_start} "
            f"ORDER BY {column} {direction} LIMIT $5) AS i ON true "
            f"WHERE o.service_sid = $1 AND o.kind = $2 AND o.{object_col} = $3 "
            f"AND {_live('$4', 'o')} "
            f"ORDER BY i.{column} {direction}",
            *params,
        )
        if not rows:
            raise common.object_not_found(kind, sid)
        items = [item_from_row(r) for r in rows if r["data"] is not None]
        return PageResult(
            items=items[:size], has_next=len(items) > size, has_prev=bool(rows[0]["has_prev"])
        )

    # ---- permissions -----------------------------------------------------------------

    async def put_permission(self, permission: PermissionRecord) -> PermissionRecord:
        await self.pool.execute(
            f"INSERT INTO permissions ({PERMISSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (object_sid, identity) DO UPDATE SET "
            "service_sid = excluded.service_sid, read = excluded.read, "
            "write = excluded.write, manage = excluded.manage",
            permission.service_sid,
            permission.object_sid,
            permission.identity,
            permission.read,
            permission.write,
            permission.manage,
        )
        return PermissionRecord(
            permission.service_sid,
            permission.object_sid,
            permission.identity,
            bool(permission.read),
            bool(permission.write),
            bool(permission.manage),
        )

    async def get_permission(
        self, service_sid: str, object_sid: str, identity: str
    ) -> PermissionRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {PERMISSION_COLS} FROM permissions "
            "WHERE service_sid = $1 AND object_sid = $2 AND identity = $3",
            service_sid,
            object_sid,
            identity,
        )
        return None if row is None else permission_from_row(row)

    async def delete_permission(self, service_sid: str, object_sid: str, identity: str) -> bool:
        deleted = await self.pool.fetchval(
            "DELETE FROM permissions WHERE service_sid = $1 AND object_sid = $2 AND identity = $3 "
            "RETURNING true",
            service_sid,
            object_sid,
            identity,
        )
        return bool(deleted)

    async def list_permissions(
        self, service_sid: str, object_sid: str, *, after_identity: str | None, limit: int
    ) -> list[PermissionRecord]:
        where = "service_sid = $1 AND object_sid = $2"
        params: tuple[Any, ...] = (service_sid, object_sid, max(limit, 0))
        if after_identity is not None:
            where += " AND identity > $4"
            params += (after_identity,)
        rows = await self.pool.fetch(
            f"SELECT {PERMISSION_COLS} FROM permissions WHERE {where} ORDER BY identity LIMIT $3",
            *params,
        )
        return [permission_from_row(r) for r in rows]

    # ---- events ----------------------------------------------------------------------

    async def events_since(
        self, service_sid: str, sid: str, since: int, limit: int
    ) -> list[StoredEvent] | None:
        # One row per event after `since` (or one with NULL event columns); none if the
        # object does not exist.
        rows = await self.pool.fetch(
            "SELECT o.last_event_id, e.event_id, e.frame FROM objects o "
            "LEFT JOIN LATERAL (SELECT event_id, frame FROM events "
            "WHERE object_sid = o.sid AND event_id > $3 ORDER BY event_id LIMIT $4) AS e ON true "
            f"WHERE o.service_sid = $1 AND o.sid = $2 AND {_live('$5', 'o')} "
            "ORDER BY e.event_id",
            service_sid,
            sid,
            since,
            max(limit, 1),
            now(),
        )
        if not rows:
            return None
        if since >= rows[0]["last_event_id"]:
            return []
        stored = [r for r in rows if r["event_id"] is not None]
        if not stored or stored[0]["event_id"] != since + 1:
            return None
        return [
            StoredEvent(service_sid, sid, int(r["event_id"]), bytes(r["frame"]))
            for r in stored[: max(limit, 0)]
        ]

    async def object_positions(self, sids: Collection[str]) -> dict[str, int]:
        if not sids:
            return {}
        rows = await self.pool.fetch(
            f"SELECT sid, last_event_id FROM objects WHERE sid = ANY($1::text[]) AND {_live('$2')}",
            list(sids),
            now(),
        )
        return {r["sid"]: int(r["last_event_id"]) for r in rows}

    async def expire(self, now: float, limit: int) -> list[StoredEvent]:
        at, size = now, max(limit, 0)
        async with self.pool.acquire() as conn:
            # Two steps, each its own transaction locking in sid order (no deadlock).
            objects = await self._sweep_step(conn, self._expire_objects, at, size)
            if objects is None or len(objects) == size:
                return objects or []  # another node sweeps / items wait for the objects
            # The removals are committed: their events must reach the caller whatever
            # happens to the items, which the next sweep expires anyway.
            try:
                items = await self._sweep_step(conn, self._expire_items, at, size)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                if not objects:
                    raise
                log.warning("expiring items failed (retried at the next sweep): %r", exc)
                items = None
        return objects + (items or [])

    async def _sweep_step(
        self,
        conn: _Conn,
        step: Callable[[_Conn, float, int], Awaitable[list[StoredEvent]]],
        at: float,
        limit: int,
    ) -> list[StoredEvent] | None:
        """`step` in a transaction holding EXPIRE_LOCK; None if another node holds it."""
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", EXPIRE_LOCK):
                return None
            return await step(conn, at, limit)

    async def _expire_objects(self, conn: _Conn, at: float, limit: int) -> list[StoredEvent]:
        locked = await conn.fetch(_EXPIRED_OBJECTS, at, limit)
        # Locked rows are current: a TTL set meanwhile may have saved some.
        expired = sorted(
            (r for r in locked if _expired(r, at)), key=lambda r: (r["date_expires"], r["sid"])
        )
        if expired:
            await conn.execute(_DELETE_OBJECTS, [r["sid"] for r in expired])
        return [common.expired_object_event(r) for r in expired]

    async def _expire_items(self, conn: _Conn, at: float, limit: int) -> list[StoredEvent]:
        holders = await conn.fetch(_EXPIRED_ITEM_HOLDERS, at, limit)
        live = [r["sid"] for r in holders if not _expired(r, at)]
        if not live:
            return []
        # Read after locking: no other writer can touch these objects' items until COMMIT.
        rows = await conn.fetch(_EXPIRED_ITEMS, at, live, limit)
        removals, counters = common.expired_item_events(rows)
        if not removals:
            return []
        upto = {sid: self._pruned_upto(last) for sid, last in counters.items()}
        logged = [e for e in removals if e.event_id > upto[e.sid]]
        await conn.execute(
            _EXPIRE_ITEMS,
            [r["ctid"] for r in rows],
            at,
            list(counters),
            list(counters.values()),
            list(upto.values()),
            [e.sid for e in logged],
            [e.event_id for e in logged],
            [e.frame for e in logged],
        )
        return removals

    async def prune_events(self, now: float, limit: int) -> int:
        status = await self.pool.execute(
            _PRUNE_BY_AGE, now - self.event_retention_seconds, max(limit, 0)
        )
        return int(status.split()[-1])

    # ---- webhook outbox --------------------------------------------------------------

    async def add_webhook(self, delivery: WebhookDelivery) -> None:
        await self.pool.execute(_OUTBOX.insert, *common.outbox_args(delivery, now()))

    async def claim_webhooks(self, owner: str, lease: float, limit: int) -> list[OutboxRow]:
        rows = await self.pool.fetch(_OUTBOX.claim, owner, lease, max(limit, 0))
        return sorted((common.outbox_from_row(r) for r in rows), key=lambda r: r.seq)

    async def renew_webhook_leases(
        self, owner: str, seqs: Collection[int], lease: float
    ) -> set[int]:
        if not seqs:
            return set()
        rows = await self.pool.fetch(_RENEW_LEASES, lease, owner, list(seqs))
        return {int(r[0]) for r in rows}

    async def retry_webhook(
        self, seq: int, owner: str, *, attempts: int, delay: float, lease: float
    ) -> bool:
        held = await self.pool.fetchval(_OUTBOX.retry, seq, owner, attempts, delay, lease)
        return held is not None

    async def finish_webhook(self, seq: int, owner: str) -> bool:
        return await self.pool.fetchval(_OUTBOX.finish, seq, owner) is not None

    async def release_webhooks(self, owner: str) -> None:
        await self.pool.execute(_OUTBOX.release, owner)

    async def webhook_backlog(self) -> int:
        return int(await self.pool.fetchval(_OUTBOX.backlog))

    async def trim_webhooks(self, per_object: int) -> int:
        status = await self.pool.execute(_OUTBOX.trim, per_object)
        return int(status.split()[-1])


async def _add_webhook(
    conn: _Conn, webhook: Callable[[Any], WebhookDelivery | None] | None, of: Any, at: float
) -> None:
    """Store the webhook of a write (if any) in its transaction: a statement of its own (one
    more round trip; it could be folded into the write's statement as a CTE)."""
    delivery = None if webhook is None else webhook(of)
    if delivery is not None:
        await conn.execute(_OUTBOX.insert, *common.outbox_args(delivery, at))


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Released connections skip asyncpg's reset query (one more round trip per use): the
    storage leaves no session state behind (no SET, LISTEN, cursors or session-level
    advisory locks). asyncpg still rolls back a transaction left open."""


async def _migrate(conn: _Conn) -> None:
    """Apply every migration not applied yet, in one transaction under MIGRATION_LOCK."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_MIGRATIONS_TABLE)
        applied = {r[0] for r in await conn.fetch("SELECT version FROM sync_schema_migrations")}
        for version, sql in MIGRATIONS:
            if version in applied:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO sync_schema_migrations (version, applied_at) VALUES ($1, now())",
                version,
            )
