"""PostgreSQL backend (asyncpg): one database shared by several server processes.

Schema. `start()` applies the versioned `MIGRATIONS` in one transaction holding a fixed
advisory lock, recording each version in `sync_schema_migrations`: nodes starting together
queue on the lock, and each later one finds every version applied. JSON is stored as TEXT
(orjson, key order as written), times as DOUBLE PRECISION Unix seconds taken in Python, event
frames as BYTEA. Text keys use the "C" collation, so sids, map keys and identities sort by
bytes as in SQLite, whatever the database's locale.

Per-object order. Every write to an object runs in its own transaction that first locks the
object's row (`SELECT ... FOR UPDATE`) and reads items only after that, so it sees every
earlier write of the object. The next writer of the object gets the lock only after COMMIT:
event ids are gap-free, unique, and committed in order, and a method returns only once
committed. A document update, list push, item set or item removal is one call of the
plpgsql function `sync_write` (migrations 4, 5), one statement and one round trip in its own
transaction: it locks, reads, checks (the refusals `common` names, returned as `err`), stores
the change, builds the event frame (the same bytes as `common` + `events` would; tested),
appends it, prunes the log and moves the counter. Writes that arrive while the database is
busy with earlier ones share one call of `sync_write_set` and one transaction (group commit,
`_WriteBatches`), which does them as one set (migrations 6, 7): each still answered as alone
(tested against `sync_write`), none acknowledged before the commit.
With a webhook, the call and the outbox row (computed in Python from the event) share an
explicit transaction. Other writes (TTL
changes, object removal) take the same lock in a transaction of several statements, so they
never race with a write that read the old value.

Within one process, writers of one object also queue on an asyncio lock before taking a
pooled connection: only one of them at a time waits on the row lock (PostgreSQL wakes every
waiter of a row at each commit), and the others hold no connection while they wait.

Deadlocks. A transaction locks one object row, or several in sid order (each step of
`expire`, `delete_service`, a batch of writes); `prune_events` skips rows other transactions
hold.

Reads run outside transactions on a pooled connection, one statement each.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from sync_generated.client import MAX_DATA_BYTES
from sync_generated.errors import InvalidRequestError, UniqueNameExistsError

from ..credentials import redact_url
from ..wire import expires_at, loads, now
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

# A write of a document, list or map in one call: `sync_write` (below, in Python's words:
# `PostgresStorage._write`). JSON text is assembled by concatenation, byte for byte what
# orjson writes for the same values (to_json(text) escapes strings as orjson does; json_each
# on the json type gives values verbatim), so the frames equal those of `common` + `events`
# (tests/test_storage.py checks it).
_V4 = r"""
CREATE FUNCTION sync_json(s text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(to_json(s)::text, 'null') $$;

-- wire.iso as a JSON value: "%Y-%m-%dT%H:%M:%SZ" of the whole second, or null.
CREATE FUNCTION sync_iso(t float8) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT coalesce('"' || to_char(to_timestamp(floor(t)) AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"', 'null') $$;

-- common.merged: {**old, **patch}, old keys first in their order.
CREATE FUNCTION sync_merge(old text, patch text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT '{' || coalesce(string_agg(to_json(k)::text || ':' || v, ',' ORDER BY part, n), '') || '}'
FROM (
    SELECT 0, o.n, o.key, coalesce(p.value, o.value)::text
    FROM json_each(old::json) WITH ORDINALITY AS o(key, value, n)
    LEFT JOIN json_each(patch::json) AS p ON p.key = o.key
    UNION ALL
    SELECT 1, p.n, p.key, p.value::text
    FROM json_each(patch::json) WITH ORDINALITY AS p(key, value, n)
    WHERE NOT EXISTS (SELECT 1 FROM json_each(old::json) AS o WHERE o.key = p.key)
) AS m(part, n, k, v)
$$;

-- wire.item_snapshot
CREATE FUNCTION sync_item_json(
    event_id bigint, data text, created float8, updated float8, expires float8,
    created_by text, idx bigint, key text
) RETURNS text LANGUAGE sql STABLE AS $$
SELECT '{"revision":"' || event_id || '","data":' || data
    || ',"date_created":' || sync_iso(created) || ',"date_updated":' || sync_iso(updated)
    || ',"date_expires":' || sync_iso(expires) || ',"created_by":' || sync_json(created_by)
    || ',"last_event_id":' || event_id
    || CASE WHEN idx IS NOT NULL THEN ',"index":' || idx ELSE ',"key":' || sync_json(key) END
    || '}'
$$;

-- One write of a document ('update'), a list ('push') or a list or map item ('set',
-- 'remove'): lock the live object's row, read what the write depends on, check it, store
-- the change, append its event (pruning the log to p_keep events) and move the object's
-- counter. A refused write changes nothing and returns `err` (+ `err_detail`).
CREATE FUNCTION sync_write(
    p_op text, p_service text, p_kind text, p_by_sid boolean, p_ref text,
    p_idx bigint, p_key text, p_data text, p_merge boolean, p_if_match text,
    p_if_absent boolean, p_ttl bigint, p_origin text, p_created_by text,
    p_at float8, p_keep bigint, p_max_bytes integer,
    OUT err text, OUT err_detail text, OUT obj_sid text, OUT obj_unique_name text,
    OUT new_event_id bigint, OUT new_frame bytea, OUT item_idx bigint, OUT item_key text,
    OUT new_data text, OUT row_created float8, OUT row_updated float8,
    OUT row_expires float8, OUT row_created_by text
) LANGUAGE plpgsql AS $$
DECLARE
    obj objects%ROWTYPE;
    cur record;  -- the live item (set, remove) and its ctid
    have boolean := false;
    old_data text;  -- the live item's data (set, remove), else the document's
    at float8;
    eid bigint;
    expires float8;
    name text;
    tail text;
BEGIN
    IF p_by_sid THEN
        SELECT * INTO obj FROM objects o
        WHERE o.sid = p_ref AND o.service_sid = p_service AND o.kind = p_kind FOR UPDATE;
    ELSE
        SELECT * INTO obj FROM objects o
        WHERE o.service_sid = p_service AND o.kind = p_kind AND o.unique_name = p_ref
        FOR UPDATE;
    END IF;
    -- Never earlier than the object's last change, whichever node's clock wrote it.
    at := greatest(p_at, obj.date_updated);
    IF obj.sid IS NULL OR obj.date_expires <= at THEN
        err := 'object_not_found';
        RETURN;
    END IF;
    obj_sid := obj.sid;
    obj_unique_name := obj.unique_name;
    eid := obj.last_event_id + 1;
    expires := CASE WHEN p_ttl IS NULL OR p_ttl = 0 THEN NULL ELSE at + p_ttl END;
    -- Read under the lock: every earlier write of the object is visible.
    IF p_op IN ('set', 'remove') THEN
        IF p_kind = 'list' THEN
            SELECT i.ctid AS tid, i.* INTO cur FROM items i
            WHERE i.object_sid = obj.sid AND i.idx = p_idx
              AND (i.date_expires IS NULL OR i.date_expires > at);
        ELSE
            SELECT i.ctid AS tid, i.* INTO cur FROM items i
            WHERE i.object_sid = obj.sid AND i.key = p_key
              AND (i.date_expires IS NULL OR i.date_expires > at);
        END IF;
        have := FOUND;
        IF have THEN
            old_data := cur.data;
        END IF;
        IF NOT have AND (p_op = 'remove' OR p_kind = 'list' OR p_if_match IS NOT NULL) THEN
            err := 'item_not_found';
            RETURN;
        END IF;
        IF have AND p_if_absent THEN
            err := 'item_exists';
            RETURN;
        END IF;
        IF have AND p_if_match <> cur.last_event_id::text THEN
            err := 'revision_mismatch';
            err_detail := cur.last_event_id::text;
            RETURN;
        END IF;
    ELSIF p_op = 'update' THEN
        IF p_if_match <> obj.last_event_id::text THEN
            err := 'revision_mismatch';
            err_detail := obj.last_event_id::text;
            RETURN;
        END IF;
        old_data := coalesce(obj.data, '{}');
    END IF;
    new_data := p_data;
    IF p_merge AND (p_op = 'update' OR have) THEN  -- a new item takes the data as given
        new_data := sync_merge(old_data, p_data);
        IF octet_length(new_data) > p_max_bytes THEN
            err := 'too_large';
            err_detail := octet_length(new_data)::text;
            RETURN;
        END IF;
    END IF;
    row_updated := at;
    new_event_id := eid;
    IF p_op = 'update' THEN
        row_created := obj.date_created;
        row_created_by := obj.created_by;
        row_expires := CASE WHEN p_ttl IS NULL THEN obj.date_expires ELSE expires END;
        UPDATE objects SET data = new_data, date_expires = row_expires WHERE sid = obj.sid;
        name := 'updated';
        tail := ',"data":' || new_data || ',"previous_data":' || old_data
            || ',"revision":"' || eid || '","date_updated":' || sync_iso(at)
            || ',"date_expires":' || sync_iso(row_expires);
    ELSIF p_op = 'remove' THEN
        DELETE FROM items WHERE ctid = cur.tid;
        name := 'item_removed';
        tail := ',"previous_data":' || old_data || CASE WHEN p_kind = 'list'
            THEN ',"index":' || cur.idx ELSE ',"key":' || sync_json(cur.key) END;
    ELSIF have THEN
        name := 'item_updated';
        item_idx := cur.idx;
        item_key := cur.key;
        row_created := cur.date_created;
        row_created_by := cur.created_by;
        row_expires := CASE WHEN p_ttl IS NULL THEN cur.date_expires ELSE expires END;
        UPDATE items SET data = new_data, last_event_id = eid, date_updated = at,
            date_expires = row_expires
        WHERE ctid = cur.tid;
    ELSE  -- a new item: pushed at the list's next index, or a map's new key
        name := 'item_added';
        IF p_op = 'push' THEN
            item_idx := obj.next_index;
        ELSE
            item_key := p_key;
        END IF;
        row_created := at;
        row_created_by := p_created_by;
        row_expires := expires;
        -- A map's new key replaces an expired row holding it.
        INSERT INTO items (object_sid, idx, key, data, last_event_id, date_created,
                           date_updated, date_expires, created_by)
        VALUES (obj.sid, item_idx, item_key, new_data, eid, at, at, row_expires, p_created_by)
        ON CONFLICT (object_sid, key) DO UPDATE SET data = excluded.data,
            last_event_id = excluded.last_event_id, date_created = excluded.date_created,
            date_updated = excluded.date_updated, date_expires = excluded.date_expires,
            created_by = excluded.created_by;
    END IF;
    IF p_op IN ('push', 'set') THEN
        tail := ',"item":' || sync_item_json(eid, new_data, row_created, at, row_expires,
                                             row_created_by, item_idx, item_key)
            || ',"previous_data":' || coalesce(old_data, 'null');
    END IF;
    new_frame := convert_to('{"type":"event","sid":' || sync_json(obj.sid) || ',"kind":"'
        || p_kind || '","name":"' || name || '","event_id":' || eid || ',"origin":'
        || sync_json(p_origin) || tail || '}', 'UTF8');
    INSERT INTO events (object_sid, event_id, frame, created_at)
    VALUES (obj.sid, eid, new_frame, at);
    DELETE FROM events WHERE object_sid = obj.sid AND event_id <= eid - p_keep;
    UPDATE objects SET last_event_id = eid, date_updated = at,
        next_index = next_index + (p_op = 'push')::int
    WHERE sid = obj.sid;
END
$$;
"""

# Cheaper writes (measured in one transaction of 2,000 `sync_write`s: 135 -> 105 µs each).
# - sync_json becomes STABLE, as to_json is: an IMMUTABLE SQL function calling a STABLE one is
#   never inlined, and a call that is not inlined is planned anew in every transaction (about
#   14 µs each, four per write).
# - A write prunes the one event that leaves its object's log (`event_id = eid - p_keep`)
#   instead of every event up to it. The range was planned anew at each call (its generic
#   plan guesses a third of the log) and walked every index entry the earlier prunes left dead
#   until a vacuum; the log stays as long. Every 1,024th event still prunes the whole range:
#   what a smaller `p_keep` (a new retention) leaves behind.
# Writes sent together: `sync_write_batch` (`_WriteBatches` sends it). It locks every object
# the writes name first, in sid order (as `expire` and `delete_service` lock several), so
# batches never deadlock with one another or with those, then runs each write in the order
# given, as `sync_write` would alone. One transaction and one commit for them all: in plpgsql,
# a transaction's first call of a function pays for setting up its expressions (about half of
# a lone `sync_write`), and a commit costs as much again.
_PRUNE_ALL = "DELETE FROM events WHERE object_sid = obj.sid AND event_id <= eid - p_keep;"
_PRUNE_ONE = """IF eid % 1024 = 0 THEN
        DELETE FROM events WHERE object_sid = obj.sid AND event_id <= eid - p_keep;
    ELSIF eid > p_keep THEN
        DELETE FROM events WHERE object_sid = obj.sid AND event_id = eid - p_keep;
    END IF;"""
assert _V4.count(_PRUNE_ALL) == 1
_V5 = (
    _V4[_V4.index("CREATE FUNCTION sync_write(") :]
    .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    .replace(_PRUNE_ALL, _PRUNE_ONE)
    + r"""
CREATE OR REPLACE FUNCTION sync_json(s text) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT coalesce(to_json(s)::text, 'null') $$;

CREATE FUNCTION sync_write_batch(
    p_op text[], p_service text[], p_kind text[], p_by_sid boolean[], p_ref text[],
    p_idx bigint[], p_key text[], p_data text[], p_merge boolean[], p_if_match text[],
    p_if_absent boolean[], p_ttl bigint[], p_origin text[], p_created_by text[],
    p_at float8[], p_keep bigint, p_max_bytes integer
) RETURNS TABLE (
    n integer, err text, err_detail text, obj_sid text, obj_unique_name text,
    new_event_id bigint, new_frame bytea, item_idx bigint, item_key text, new_data text,
    row_created float8, row_updated float8, row_expires float8, row_created_by text
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM objects o WHERE o.sid = ANY(ARRAY(
        SELECT x.sid FROM unnest(p_service, p_kind, p_by_sid, p_ref) AS r(svc, kind, by_sid, ref)
        JOIN objects x ON x.sid = r.ref AND x.service_sid = r.svc AND x.kind = r.kind
        WHERE r.by_sid
        UNION
        SELECT x.sid FROM unnest(p_service, p_kind, p_by_sid, p_ref) AS r(svc, kind, by_sid, ref)
        JOIN objects x
            ON x.service_sid = r.svc AND x.kind = r.kind AND x.unique_name = r.ref
        WHERE NOT r.by_sid
    )) ORDER BY o.sid FOR UPDATE;
    FOR i IN 1 .. cardinality(p_op) LOOP
        RETURN QUERY SELECT i, w.* FROM sync_write(
            p_op[i], p_service[i], p_kind[i], p_by_sid[i], p_ref[i], p_idx[i], p_key[i],
            p_data[i], p_merge[i], p_if_match[i], p_if_absent[i], p_ttl[i], p_origin[i],
            p_created_by[i], p_at[i], p_keep, p_max_bytes
        ) AS w;
    END LOOP;
END
$$;
"""
)

# Batches as sets: `sync_write_set`, which `_WriteBatches` sends instead of `sync_write_batch`
# (kept for the nodes of earlier versions while a cluster is upgraded). `sync_write_batch` runs
# `sync_write` once per write, and each of its six statements pays the executor's start and
# end: most of a write's cost. `sync_write_set` is two statements whatever the batch's size:
# one finds the object each write names and locks them in sid order; the next reads what the
# writes depend on (a new snapshot: every earlier write of a locked object is visible), checks
# each write as `sync_write` does, and stores every change, event and counter with one
# data-modifying part per table. PostgreSQL CPU per write, 8 writes per call: 267 -> 143 µs
# (64 per call: 189 -> 82). The parts of one statement cannot see each other's changes, so
# this needs every write to name a different object; a batch naming one object twice (by sid
# and by name: one process sends one write per name at a time) runs write after write, as
# `sync_write_batch` does. A refused write changes nothing, as alone. The writes come as one
# jsonb array of `sync_write`'s first 15 arguments per write: cheaper for the node to send than
# an array per argument (its CPU per write in-process -9 %), and as cheap to read here (json
# would parse each element again at every `->>`). plan_cache_mode: the batch's size would
# otherwise have PostgreSQL plan the statements anew at each call.
_V6 = r"""
CREATE FUNCTION sync_write_set(p_writes jsonb, p_keep bigint, p_max_bytes integer)
RETURNS TABLE (
    n integer, err text, err_detail text, obj_sid text, obj_unique_name text,
    new_event_id bigint, new_frame bytea, item_idx bigint, item_key text, new_data text,
    row_created float8, row_updated float8, row_expires float8, row_created_by text
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    sids text[];  -- sids[i]: the object write i names (null: none)
    shared boolean;  -- two writes name one object
    held bigint;
    a jsonb;
BEGIN
    WITH named AS (
        SELECT r.n, x.sid
        FROM jsonb_array_elements(p_writes) WITH ORDINALITY AS r(a, n)
        LEFT JOIN LATERAL (
            SELECT o.sid FROM objects o
            WHERE (r.a->>3)::boolean AND o.sid = r.a->>4 AND o.service_sid = r.a->>1
              AND o.kind = r.a->>2
            UNION ALL
            SELECT o.sid FROM objects o
            WHERE NOT (r.a->>3)::boolean AND o.service_sid = r.a->>1 AND o.kind = r.a->>2
              AND o.unique_name = r.a->>4
        ) x ON true
    ), locked AS (
        SELECT o.sid FROM objects o WHERE o.sid IN (SELECT sid FROM named)
        ORDER BY o.sid FOR UPDATE
    )
    SELECT array_agg(sid ORDER BY n), count(DISTINCT sid) <> count(sid),
        (SELECT count(*) FROM locked)  -- (reading it takes the locks)
    INTO sids, shared, held
    FROM named;
    IF shared THEN
        FOR i IN 0 .. jsonb_array_length(p_writes) - 1 LOOP
            a := p_writes->i;
            RETURN QUERY SELECT i + 1, w.* FROM sync_write(
                a->>0, a->>1, a->>2, (a->>3)::boolean, a->>4, (a->>5)::bigint, a->>6, a->>7,
                (a->>8)::boolean, a->>9, (a->>10)::boolean, (a->>11)::bigint, a->>12, a->>13,
                (a->>14)::float8, p_keep, p_max_bytes
            ) AS w;
        END LOOP;
        RETURN;
    END IF;
    RETURN QUERY
    WITH w AS (  -- each write and its object (locked above), at its time
        SELECT w.*, o.sid AS osid, o.unique_name AS oname, o.data AS odata,
            o.last_event_id AS orev, o.last_event_id + 1 AS eid, o.next_index AS onext,
            o.date_created AS ocreated, o.created_by AS oby, o.date_expires AS oexpires,
            greatest(w.at, o.date_updated) AS wat,
            o.sid IS NOT NULL AND (o.date_expires IS NULL
                                   OR o.date_expires > greatest(w.at, o.date_updated)) AS live
        FROM (
            SELECT r.n, r.a->>0 AS op, r.a->>2 AS kind, (r.a->>5)::bigint AS idx,
                r.a->>6 AS key, r.a->>7 AS data, (r.a->>8)::boolean AS merge,
                r.a->>9 AS if_match, (r.a->>10)::boolean AS if_absent,
                (r.a->>11)::bigint AS ttl, r.a->>12 AS origin, r.a->>13 AS created_by,
                (r.a->>14)::float8 AS at, sids[r.n] AS sid
            FROM jsonb_array_elements(p_writes) WITH ORDINALITY AS r(a, n)
        ) w
        LEFT JOIN objects o ON o.sid = w.sid
    ), c AS (  -- and the live item a set or remove names
        SELECT w.*, cur.tid IS NOT NULL AS have, cur.*,
            CASE WHEN w.ttl IS NULL OR w.ttl = 0 THEN NULL ELSE w.wat + w.ttl END AS expires,
            CASE WHEN w.op = 'update' THEN coalesce(w.odata, '{}') ELSE cur.cdata END AS old_data
        FROM w LEFT JOIN LATERAL (
            SELECT i.ctid AS tid, i.idx AS cidx, i.key AS ckey, i.data AS cdata,
                i.last_event_id AS crev, i.date_created AS ccreated, i.created_by AS cby,
                i.date_expires AS cexpires
            FROM items i
            WHERE w.op IN ('set', 'remove') AND w.kind = 'list' AND i.object_sid = w.osid
              AND i.idx = w.idx AND (i.date_expires IS NULL OR i.date_expires > w.wat)
            UNION ALL
            SELECT i.ctid, i.idx, i.key, i.data, i.last_event_id, i.date_created,
                i.created_by, i.date_expires
            FROM items i
            WHERE w.op IN ('set', 'remove') AND w.kind <> 'list' AND i.object_sid = w.osid
              AND i.key = w.key AND (i.date_expires IS NULL OR i.date_expires > w.wat)
        ) cur ON true
    ), m AS (  -- the data stored (a new item takes the data as given)
        SELECT c.*, CASE WHEN c.merge AND (c.op = 'update' OR c.have)
            THEN sync_merge(c.old_data, c.data) ELSE c.data END AS ndata
        FROM c
    ), checked AS (  -- sync_write's refusals, in its order
        SELECT m.*, CASE
            WHEN NOT m.live THEN 'object_not_found'
            WHEN m.op IN ('set', 'remove') AND NOT m.have
                AND (m.op = 'remove' OR m.kind = 'list' OR m.if_match IS NOT NULL)
                THEN 'item_not_found'
            WHEN m.have AND m.if_absent THEN 'item_exists'
            WHEN m.have AND m.if_match <> m.crev::text THEN 'revision_mismatch'
            WHEN m.op = 'update' AND m.if_match <> m.orev::text THEN 'revision_mismatch'
            WHEN m.merge AND (m.op = 'update' OR m.have) AND octet_length(m.ndata) > p_max_bytes
                THEN 'too_large'
        END AS refusal
        FROM m
    ), ok AS (  -- the writes done: the row each stores
        SELECT k.*,
            CASE WHEN k.op = 'update' THEN 'updated' WHEN k.op = 'remove' THEN 'item_removed'
                 WHEN k.have THEN 'item_updated' ELSE 'item_added' END AS name,
            CASE WHEN k.op = 'remove' THEN NULL
                 WHEN k.ttl IS NOT NULL OR NOT (k.op = 'update' OR k.have) THEN k.expires
                 WHEN k.op = 'update' THEN k.oexpires ELSE k.cexpires END AS rexpires,
            CASE WHEN k.op = 'update' THEN k.ocreated WHEN k.op = 'remove' THEN NULL
                 WHEN k.have THEN k.ccreated ELSE k.wat END AS rcreated,
            CASE WHEN k.op = 'update' THEN k.oby WHEN k.op = 'remove' THEN NULL
                 WHEN k.have THEN k.cby ELSE k.created_by END AS rby,
            CASE WHEN k.op IN ('update', 'remove') THEN NULL WHEN k.have THEN k.cidx
                 WHEN k.op = 'push' THEN k.onext END AS ridx,
            CASE WHEN k.op IN ('update', 'remove', 'push') THEN NULL WHEN k.have THEN k.ckey
                 ELSE k.key END AS rkey
        FROM checked k WHERE k.refusal IS NULL
    ), framed AS (  -- and its event, as sync_write writes it
        SELECT ok.*, convert_to('{"type":"event","sid":' || sync_json(ok.osid) || ',"kind":"'
            || ok.kind || '","name":"' || ok.name || '","event_id":' || ok.eid || ',"origin":'
            || sync_json(ok.origin) || CASE
                WHEN ok.op = 'update' THEN ',"data":' || ok.ndata || ',"previous_data":'
                    || ok.old_data || ',"revision":"' || ok.eid || '","date_updated":'
                    || sync_iso(ok.wat) || ',"date_expires":' || sync_iso(ok.rexpires)
                WHEN ok.op = 'remove' THEN ',"previous_data":' || ok.old_data
                    || CASE WHEN ok.kind = 'list' THEN ',"index":' || ok.cidx
                            ELSE ',"key":' || sync_json(ok.ckey) END
                ELSE ',"item":' || sync_item_json(ok.eid, ok.ndata, ok.rcreated, ok.wat,
                                                  ok.rexpires, ok.rby, ok.ridx, ok.rkey)
                    || ',"previous_data":' || coalesce(ok.old_data, 'null')
            END || '}', 'UTF8') AS frame
        FROM ok
    ), removed AS (
        DELETE FROM items i USING ok WHERE ok.op = 'remove' AND i.ctid = ok.tid
    ), updated AS (
        UPDATE items i SET data = ok.ndata, last_event_id = ok.eid, date_updated = ok.wat,
            date_expires = ok.rexpires
        FROM ok WHERE ok.op = 'set' AND ok.have AND i.ctid = ok.tid
    ), added AS (  -- a map's new key replaces an expired row holding it
        INSERT INTO items (object_sid, idx, key, data, last_event_id, date_created,
                           date_updated, date_expires, created_by)
        SELECT osid, ridx, rkey, ndata, eid, wat, wat, rexpires, created_by
        FROM ok WHERE op IN ('push', 'set') AND NOT have
        ON CONFLICT (object_sid, key) DO UPDATE SET data = excluded.data,
            last_event_id = excluded.last_event_id, date_created = excluded.date_created,
            date_updated = excluded.date_updated, date_expires = excluded.date_expires,
            created_by = excluded.created_by
    ), logged AS (
        INSERT INTO events (object_sid, event_id, frame, created_at)
        SELECT osid, eid, frame, wat FROM framed
    ), pruned AS (  -- as sync_write (migration 5): the one event leaving the log, or all
        DELETE FROM events ev USING ok
        WHERE ev.object_sid = ok.osid AND ev.event_id <= ok.eid - p_keep
          AND ev.event_id >= CASE WHEN ok.eid % 1024 = 0 THEN 0 ELSE ok.eid - p_keep END
    ), moved AS (
        UPDATE objects o SET last_event_id = ok.eid, date_updated = ok.wat,
            next_index = o.next_index + (ok.op = 'push')::int,
            data = CASE WHEN ok.op = 'update' THEN ok.ndata ELSE o.data END,
            date_expires = CASE WHEN ok.op = 'update' THEN ok.rexpires ELSE o.date_expires END
        FROM ok WHERE o.sid = ok.osid
    )
    SELECT k.n::integer, k.refusal,
        CASE k.refusal
            WHEN 'revision_mismatch' THEN (CASE WHEN k.op = 'update' THEN k.orev ELSE k.crev END)::text
            WHEN 'too_large' THEN octet_length(k.ndata)::text
        END,
        CASE WHEN k.live THEN k.osid END, CASE WHEN k.live THEN k.oname END,
        f.eid, f.frame, f.ridx, f.rkey,
        CASE WHEN k.refusal IS NULL OR k.refusal = 'too_large' THEN k.ndata END,
        f.rcreated, f.wat, f.rexpires, f.rby
    FROM checked k LEFT JOIN framed f ON f.n = k.n
    ORDER BY k.n;
END
$$;
"""

# `sync_write_set` again, cheaper whatever the number of objects. Its generic plan guessed
# 100 writes a call (jsonb_array_elements) and so locked and joined the objects by scanning
# the whole table, twice a call: with 10,000 objects, 4,880 µs of PostgreSQL CPU for a call of
# one write (570 now), and growing with the table. It now finds each object by its key (an
# array lock, a lookup per write). And one part is materialized instead of three (every write
# with its outcome and event, `t`), the parts that change rows read only the columns they need
# (an UPDATE or DELETE joined to a CTE copies the CTE's whole row for its rechecks), and a merge
# is done once a write. Instructions per call (callgrind, 100 maps): 1.86M -> 1.60M for one
# write, 6.06M -> 5.37M for sixteen. Same rows, frames and stored state as before (tested
# against `sync_write`). Written as its changes to `sync_write_set` of migration 6.
_V7_CHANGES = (
    ("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
    (
        "SELECT o.sid FROM objects o WHERE o.sid IN (SELECT sid FROM named)",
        "SELECT o.sid FROM objects o WHERE o.sid = ANY(ARRAY(SELECT sid FROM named))",
    ),
    (
        "        LEFT JOIN objects o ON o.sid = w.sid\n",
        "        LEFT JOIN LATERAL (SELECT * FROM objects o WHERE o.sid = w.sid LIMIT 1) o ON true\n",
    ),
    (
        "        FROM c\n",
        "        FROM c OFFSET 0  -- (merged once, however often used below)\n",
    ),
    ("ok AS (  -- the writes done: the row each stores", "ok AS (  -- the row each write stores"),
    ("        FROM checked k WHERE k.refusal IS NULL\n", "        FROM checked k\n"),
)
_V7 = _V6[: _V6.index("    ), framed AS (")]
for _old, _new in _V7_CHANGES:
    assert _V7.count(_old) == 1, _old
    _V7 = _V7.replace(_old, _new)
_V7 += (
    r"""    ), t AS (  -- every write, done or refused, with its event: the one part materialized
        SELECT ok.n, ok.op, ok.refusal, ok.live, ok.osid, ok.oname, ok.eid, ok.wat, ok.tid,
            ok.have, ok.ndata, ok.rexpires, ok.rcreated, ok.rby, ok.ridx, ok.rkey,
            CASE ok.refusal
                WHEN 'revision_mismatch'
                    THEN (CASE WHEN ok.op = 'update' THEN ok.orev ELSE ok.crev END)::text
                WHEN 'too_large' THEN octet_length(ok.ndata)::text
            END AS detail,
            CASE WHEN ok.refusal IS NULL THEN """
    + _V6[_V6.index("convert_to('{") : _V6.index(" AS frame\n")]  # sync_write's event
    + r""" END AS frame
        FROM ok
    ), removed AS (
        DELETE FROM items i USING (SELECT tid FROM t WHERE refusal IS NULL AND op = 'remove') u
        WHERE i.ctid = u.tid
    ), updated AS (
        UPDATE items i SET data = u.ndata, last_event_id = u.eid, date_updated = u.wat,
            date_expires = u.rexpires
        FROM (SELECT tid, ndata, eid, wat, rexpires FROM t
              WHERE refusal IS NULL AND op = 'set' AND have) u
        WHERE i.ctid = u.tid
    ), added AS (  -- a map's new key replaces an expired row holding it
        INSERT INTO items (object_sid, idx, key, data, last_event_id, date_created,
                           date_updated, date_expires, created_by)
        SELECT osid, ridx, rkey, ndata, eid, wat, wat, rexpires, rby
        FROM t WHERE refusal IS NULL AND op IN ('push', 'set') AND NOT have
        ON CONFLICT (object_sid, key) DO UPDATE SET data = excluded.data,
            last_event_id = excluded.last_event_id, date_created = excluded.date_created,
            date_updated = excluded.date_updated, date_expires = excluded.date_expires,
            created_by = excluded.created_by
    ), logged AS (
        INSERT INTO events (object_sid, event_id, frame, created_at)
        SELECT osid, eid, frame, wat FROM t WHERE refusal IS NULL
    ), pruned AS (  -- as sync_write (migration 5): the one event leaving the log, or all
        DELETE FROM events ev USING (SELECT osid, eid FROM t WHERE refusal IS NULL) u
        WHERE ev.object_sid = u.osid AND ev.event_id <= u.eid - p_keep
          AND ev.event_id >= CASE WHEN u.eid % 1024 = 0 THEN 0 ELSE u.eid - p_keep END
    ), moved AS (
        UPDATE objects o SET last_event_id = u.eid, date_updated = u.wat,
            next_index = o.next_index + (u.op = 'push')::int,
            data = CASE WHEN u.op = 'update' THEN u.ndata ELSE o.data END,
            date_expires = CASE WHEN u.op = 'update' THEN u.rexpires ELSE o.date_expires END
        FROM (SELECT osid, eid, wat, op, ndata, rexpires FROM t WHERE refusal IS NULL) u
        WHERE o.sid = u.osid
    )
    SELECT t.n::integer, t.refusal, t.detail,
        CASE WHEN t.live THEN t.osid END, CASE WHEN t.live THEN t.oname END,
        CASE WHEN t.refusal IS NULL THEN t.eid END, t.frame,
        CASE WHEN t.refusal IS NULL THEN t.ridx END, CASE WHEN t.refusal IS NULL THEN t.rkey END,
        CASE WHEN t.refusal IS NULL OR t.refusal = 'too_large' THEN t.ndata END,
        CASE WHEN t.refusal IS NULL THEN t.rcreated END,
        CASE WHEN t.refusal IS NULL THEN t.wat END,
        CASE WHEN t.refusal IS NULL THEN t.rexpires END,
        CASE WHEN t.refusal IS NULL THEN t.rby END
    FROM t
    ORDER BY t.n;
END
$$;
"""
)

# (version, SQL), applied in order, each exactly once per database. Append; never edit.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
    (5, _V5),
    (6, _V6),
    (7, _V7),
)

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


# One write: see `sync_write` (migration 4) and `PostgresStorage._write`.
_WRITE = "SELECT * FROM sync_write(" + ", ".join(f"${n}" for n in range(1, 18)) + ")"
# A batch: the arguments of `sync_write` that differ by write (the first 15), one JSON array
# per write (cheaper to send than an array per argument), then the two every write shares
# (the log's length, the data's size limit).
_PER_WRITE = 15
_WRITE_BATCH = "SELECT * FROM sync_write_set($1::jsonb, $2, $3)"

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
# to $5, as `sync_write` does for one write.
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


class _Connections:
    """The pool's connections, handed out without asyncpg's `Pool.acquire` / `release` on
    the way: a connection that served a statement without an error goes back to a free list
    here, the next user takes it from there, and a user finding none waits here (when every
    connection of the pool is out) or takes one more from the pool. asyncpg's acquire and
    release cost about 30 µs of CPU per statement (a task per release, for `asyncio.shield`),
    as much as executing the statement. A connection that saw an error goes back to the pool,
    whose release cleans it up (rolls back, waits out a cancelled query, replaces a broken
    connection). Every use of the pool goes through here, so none waits on the pool while
    connections sit in the free list."""

    __slots__ = ("_dropping", "_idle", "_out", "_waiters", "closed", "max_size", "pool", "writes")

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], max_size: int) -> None:
        self.pool = pool
        self.max_size = max_size
        self.closed = False
        self._idle: list[_Conn] = []
        self._out = 0  # connections taken from the pool (in use or in `_idle`)
        self._waiters: deque[asyncio.Future[_Conn]] = deque()
        self._dropping: set[asyncio.Future[None]] = set()
        # One connection sends the writes (the rest serve everything else): while its call
        # is out, the writes arriving wait and go together in the next, one transaction and
        # one commit for them all. Two senders made smaller batches: on 2 cores, alternating
        # runs of 16 writers over 100 objects gave 1,330-1,821 writes/s with two, 1,661-2,022
        # with one (PostgreSQL's CPU per write 343-451 -> 304-336 µs).
        self.writes = _WriteBatches(self, senders=1)

    async def take(self) -> _Conn:
        if self._idle:
            return self._idle.pop()
        if self._out >= self.max_size and not self.closed:
            waiter: asyncio.Future[_Conn] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                return await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed over as it was cancelled
                    self.put(waiter.result())
                raise
        self._out += 1
        try:
            return await self.pool.acquire()
        except BaseException:
            self._out -= 1
            raise

    def put(self, conn: _Conn) -> None:
        """Done with `conn`, which ran without an error."""
        if self.closed or conn.is_closed() or conn.is_in_transaction():
            task = asyncio.ensure_future(self.drop(conn))
            self._dropping.add(task)
            task.add_done_callback(self._dropping.discard)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def drop(self, conn: _Conn) -> None:
        """Give `conn` back to the pool (after an error: the pool cleans it up)."""
        try:
            await self.pool.release(conn)
        finally:
            self._out -= 1
            self._wake()

    def _wake(self) -> None:
        """A connection went back to the pool: a waiter may take one from it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_Retake())
                return

    async def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.drop(conn)

    def acquire(self) -> _Checkout:
        return _Checkout(self)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        return await self._run("fetchrow", query, args, timeout)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        rows: list[Any] = await self._run("fetch", query, args, timeout)
        return rows

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        return await self._run("fetchval", query, args, timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        status: str = await self._run("execute", query, args, timeout)
        return status

    async def _run(
        self,
        method: Literal["fetchrow", "fetch", "fetchval", "execute"],
        query: str,
        args: tuple[Any, ...],
        timeout: float | None,
    ) -> Any:
        """One statement on a connection of the free list (back to the pool on an error)."""
        conn = await self._take()
        try:
            result = await getattr(conn, method)(query, *args, timeout=timeout)
        except BaseException:
            await self.drop(conn)
            raise
        self.put(conn)
        return result

    async def _take(self) -> _Conn:
        while True:
            try:
                return await self.take()
            except _Retake:
                continue


class _Retake(Exception):
    """A waiter for a connection: the pool has one free now, take it from there."""


class _Checkout:
    """`async with connections.acquire() as conn:` (as asyncpg's pool)."""

    __slots__ = ("_conn", "_connections")

    def __init__(self, connections: _Connections) -> None:
        self._connections = connections
        self._conn: _Conn | None = None

    async def __aenter__(self) -> _Conn:
        self._conn = await self._connections._take()
        return self._conn

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        if exc_type is None:
            self._connections.put(conn)
        else:
            await self._connections.drop(conn)


_Pending: TypeAlias = "tuple[tuple[Any, ...], asyncio.Future[asyncpg.Record]]"


class _WriteBatches:
    """Writes without a webhook (the arguments of `sync_write`) committed together when they
    come faster than the database answers: group commit. At most `senders` calls are out at a
    time. A write finding one free and nobody waiting goes at once, alone (`sync_write`: no
    wait added while the database keeps up); writes arriving while every sender is out wait,
    and the next free sender takes up to `max_batch` of them in one call of
    `sync_write_set`: one transaction, one commit, the writes in the order they came.

    A batch PostgreSQL fails as a whole (an error, not the refusal of one write: a character
    its text type cannot hold, a deadlock with an object replaced meanwhile) changed nothing,
    nor did one that could not be encoded (a string that is not Unicode text: a lone
    surrogate); its writes are then sent again one by one, so each gets its own answer.
    Other failures (a lost connection: the outcome is unknown) reach every write of the
    batch."""

    __slots__ = ("_busy", "_connections", "_pending", "_tasks", "max_batch", "senders")

    def __init__(self, connections: _Connections, senders: int, max_batch: int = 64) -> None:
        self._connections = connections
        self.senders = senders
        self.max_batch = max_batch
        self._busy = 0
        self._pending: list[_Pending] = []
        self._tasks: set[asyncio.Future[None]] = set()

    async def write(self, args: tuple[Any, ...]) -> asyncpg.Record:
        if self._busy < self.senders and not self._pending:
            self._busy += 1
            try:
                row: asyncpg.Record = await self._connections.fetchrow(_WRITE, *args)
                return row
            finally:
                self._busy -= 1
                self._start_senders()
        future: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        self._start_senders()
        return await future

    def _start_senders(self) -> None:
        while self._pending and self._busy < self.senders:
            self._busy += 1
            task = asyncio.ensure_future(self._send_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                # A write whose caller gave up before it was sent is not sent (as alone).
                batch = [pending for pending in batch if not pending[1].cancelled()]
                if not batch:
                    continue
                try:
                    await self._send(batch)
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    raise
        finally:
            self._busy -= 1

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                rows = [await self._connections.fetchrow(_WRITE, *batch[0][0])]
            else:
                writes = orjson.dumps([args[:_PER_WRITE] for args, _ in batch]).decode()
                shared = batch[0][0][_PER_WRITE:]
                rows = await self._connections.fetch(_WRITE_BATCH, writes, *shared)
        except Exception as exc:
            if len(batch) > 1 and isinstance(exc, (asyncpg.PostgresError, orjson.JSONEncodeError)):
                log.info(
                    "a batch of %d writes failed as a whole (%r): sent one by one", len(batch), exc
                )
                for pending in batch:
                    await self._send([pending])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for row, (_, future) in zip(rows, batch, strict=True):
            if not future.done():
                future.set_result(row)


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
        self._pool: _Connections | None = None
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
        self._pool = _Connections(pool, self.max_pool)

    async def close(self) -> None:
        connections, self._pool = self._pool, None
        if connections is not None:
            pool = connections.pool
            try:
                await asyncio.wait_for(connections.close(), 5)
            except TimeoutError:
                pass
            try:
                await asyncio.wait_for(pool.close(), 5)
            except TimeoutError:
                log.warning("PostgreSQL connections did not close in 5 s; dropping them")
                pool.terminate()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1", timeout=2)

    @property
    def pool(self) -> _Connections:
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
    ) -> AsyncIterator[tuple[_Conn, ObjectRecord, float]]:
        """A transaction holding the live object's row lock: (conn, object, now). The time is
        taken once the lock is held, so it never goes back between two events of one object.
        Commits when the block ends, rolls back if it raises. (Writes that append an event
        run in one call instead: `_write`.)"""
        column = common.object_column(kind, sid_or_name)
        async with (
            self._queued((service_sid, kind, sid_or_name)),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            row = await conn.fetchrow(
                f"SELECT {OBJECT_COLS} FROM objects "
                f"WHERE service_sid = $1 AND kind = $2 AND {column} = $3 FOR UPDATE",
                service_sid,
                kind,
                sid_or_name,
            )
            at = now()
            if row is None or (row["date_expires"] is not None and row["date_expires"] <= at):
                raise common.object_not_found(kind, sid_or_name)
            yield conn, object_from_row(row), at

    async def _write(
        self,
        op: Literal["update", "push", "set", "remove"],
        service_sid: str,
        kind: ObjectKind,
        sid_or_name: str,
        *,
        item: int | str | None = None,
        data: JsonObject | None = None,
        merge: bool = False,
        if_match: str | None = None,
        if_absent: bool = False,
        ttl: int | None = None,
        origin: str | None,
        created_by: str = "",
        webhook: OnChange | None,
    ) -> tuple[asyncpg.Record, StoredEvent]:
        """A write that appends an event, in one call of `sync_write`: one statement, one
        round trip, its own transaction (whose row lock orders the object's writers, as in
        `_locked`). With a webhook, the call and the outbox row share a transaction. Returns
        the row of `sync_write` and the event; raises the SyncError of a refused write.

        A merge PostgreSQL cannot do (a top-level key with a NUL character, which its text
        type cannot hold) is done here instead: read, merge, write the whole object with
        If-Match on what was read (again if it moved on)."""

        async def attempt(
            data: JsonObject | None, merge: bool, if_match: str | None
        ) -> tuple[asyncpg.Record, StoredEvent]:
            args: tuple[Any, ...] = (
                op,
                service_sid,
                kind,
                common.object_column(kind, sid_or_name) == "sid",
                sid_or_name,
                item if kind == "list" else None,
                item if kind == "map" else None,
                json_text(data),
                merge,
                if_match,
                if_absent,
                ttl,
                origin,
                created_by,
            )
            async with self._queued((service_sid, kind, sid_or_name)):
                # sync_write never goes back before the object's last change (another node's).
                args += (now(), self.event_retention, MAX_DATA_BYTES)
                if webhook is None:
                    row = await self.pool.writes.write(args)
                    return row, _written(row, service_sid, kind, sid_or_name, item, if_match)
                async with self.pool.acquire() as conn, conn.transaction():
                    hooked = await conn.fetchrow(_WRITE, *args)
                    assert hooked is not None
                    event = _written(hooked, service_sid, kind, sid_or_name, item, if_match)
                    await _add_webhook(conn, webhook, event, hooked["row_updated"])
                return hooked, event

        try:
            return await attempt(data, merge, if_match)
        except asyncpg.UntranslatableCharacterError:
            if not merge or data is None:
                raise
        while True:
            if kind == "document":
                doc = await self.get_object(service_sid, kind, sid_or_name)
                current = None if doc is None else (doc.data or {}, doc.revision)
            else:
                assert item is not None
                try:
                    found = await self.get_item(service_sid, kind, sid_or_name, item)
                    current = (found.data, found.revision)
                except common.NOT_FOUND_ERRORS:
                    current = None
            if current is None or (if_match is not None and if_match != current[1]):
                # Gone, or not the revision asked for: the write says so (or creates).
                return await attempt(data, False, if_match)
            try:
                return await attempt(common.merged(current[0], data), False, current[1])
            except common.REVISION_MISMATCH_ERRORS:
                if if_match is not None:
                    raise  # (cannot happen: it matched what was read, unless it moved on)

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
        row, event = await self._write(
            "update",
            service_sid,
            "document",
            sid,
            data=data,
            merge=merge,
            if_match=if_match,
            ttl=ttl,
            origin=origin,
            webhook=webhook,
        )
        doc = ObjectRecord(
            kind="document",
            sid=event.sid,
            service_sid=service_sid,
            unique_name=row["obj_unique_name"],
            data=loads(row["new_data"]) if merge else data,
            last_event_id=event.event_id,
            date_created=row["row_created"],
            date_updated=row["row_updated"],
            date_expires=row["row_expires"],
            created_by=row["row_created_by"],
        )
        return doc, event

    async def set_object_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, ttl: int
    ) -> ObjectRecord:
        async with self._locked(service_sid, kind, sid) as (conn, obj, at):
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
        async with self._locked(service_sid, kind, sid) as (conn, obj, at):
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
        row, event = await self._write(
            "push",
            service_sid,
            "list",
            sid,
            data=data,
            ttl=ttl,
            origin=origin,
            created_by=created_by,
            webhook=webhook,
        )
        return _item(row, data, event), event

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
        item_column(kind, item)  # InvalidRequestError on a wrong kind or address
        row, event = await self._write(
            "set",
            service_sid,
            kind,
            sid,
            item=item,
            data=data,
            merge=merge,
            if_match=if_match,
            if_absent=if_absent,
            ttl=ttl,
            origin=origin,
            created_by=created_by,
            webhook=webhook,
        )
        return _item(row, None if merge else data, event), event

    async def set_item_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str, ttl: int
    ) -> ItemRecord:
        column = item_column(kind, item)
        async with self._locked(service_sid, kind, sid) as (conn, obj, at):
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
        item_column(kind, item)  # InvalidRequestError on a wrong kind or address
        _, event = await self._write(
            "remove",
            service_sid,
            kind,
            sid,
            item=item,
            if_match=if_match,
            origin=origin,
            webhook=webhook,
        )
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


def _written(
    row: asyncpg.Record,
    service_sid: str,
    kind: ObjectKind,
    sid_or_name: str,
    item: int | str | None,
    if_match: str | None,
) -> StoredEvent:
    """The event of a `sync_write` row, or the SyncError it stands for (`common`'s)."""
    match row["err"]:
        case None:
            return StoredEvent(service_sid, row["obj_sid"], row["new_event_id"], row["new_frame"])
        case "object_not_found":
            raise common.object_not_found(kind, sid_or_name)
        case "item_not_found":
            assert item is not None
            raise common.item_not_found(kind, row["obj_sid"], item)
        case "item_exists":
            assert item is not None
            raise common.item_exists(kind, item)
        case "revision_mismatch":
            assert if_match is not None
            raise common.revision_mismatch(kind, row["err_detail"], if_match)
        case "too_large":
            raise common.too_large(int(row["err_detail"]))
        case other:
            raise RuntimeError(f"sync_write refused a write for an unknown reason: {other!r}")


def _item(row: asyncpg.Record, data: JsonObject | None, event: StoredEvent) -> ItemRecord:
    """The item a `sync_write` row stored; `data` as sent (None: the stored, merged data)."""
    return ItemRecord(
        index=row["item_idx"],
        key=row["item_key"],
        data=loads(row["new_data"]) if data is None else data,
        last_event_id=event.event_id,
        date_created=row["row_created"],
        date_updated=row["row_updated"],
        date_expires=row["row_expires"],
        created_by=row["row_created_by"],
    )


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
