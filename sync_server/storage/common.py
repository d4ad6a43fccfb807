"""What every storage backend shares: SIDs, errors, column lists, row decoding, and the pure
decisions of each write (what changes, which event frame, which error).

The backends differ only in how they read, lock and persist; the rules of the Sync data model
live here once, so SQLite and PostgreSQL cannot drift apart. Row decoders take any indexable
row (an sqlite3 tuple or an asyncpg Record) whose columns follow the `*_COLS` lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

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
)

from .. import events
from ..wire import dumps, expires_at, loads, new_sid
from .base import (
    ItemRecord,
    JsonObject,
    ObjectKind,
    ObjectRecord,
    OutboxRow,
    PermissionRecord,
    ServiceRecord,
    StoredEvent,
    WebhookDelivery,
)

NOT_FOUND_ERRORS = (
    DocumentNotFoundError,
    ListNotFoundError,
    MapNotFoundError,
    ListItemNotFoundError,
    MapItemNotFoundError,
)
REVISION_MISMATCH_ERRORS = (
    DocumentRevisionMismatchError,
    ListItemRevisionMismatchError,
    MapItemRevisionMismatchError,
)

PREFIXES: dict[str, str] = {"document": "ET", "list": "ES", "map": "MP", "stream": "TO"}
SID_RES: dict[str, re.Pattern[str]] = {
    kind: re.compile(prefix + "[0-9a-f]{32}") for kind, prefix in PREFIXES.items()
}
NOT_FOUND: dict[str, type[SyncError]] = {
    "document": DocumentNotFoundError,
    "list": ListNotFoundError,
    "map": MapNotFoundError,
    "stream": StreamNotFoundError,
}
LABELS: dict[str, str] = {"document": "Document", "list": "List", "map": "Map", "stream": "Stream"}

# Column lists: both schemas use these names, and the row decoders below this order.
SERVICE_COLS = (
    "sid, account_sid, unique_name, friendly_name, webhook_url, webhooks_from_rest_enabled, "
    "reachability_webhooks_enabled, acl_enabled, reachability_debouncing_enabled, "
    "reachability_debouncing_window, date_created, date_updated"
)
OBJECT_COLS = (
    "kind, sid, service_sid, unique_name, data, last_event_id, date_created, date_updated, "
    "date_expires, created_by"
)
PERMISSION_COLS = "service_sid, object_sid, identity, read, write, manage"
ITEM_COLS = "idx, key, data, last_event_id, date_created, date_updated, date_expires, created_by"


def qualified(cols: str, alias: str) -> str:
    """`qualified("a, b", "o")` -> "o.a, o.b"."""
    return ", ".join(f"{alias}.{col}" for col in cols.split(", "))


class Row(Protocol):
    def __getitem__(self, index: int, /) -> Any: ...


# ---- rows ---------------------------------------------------------------------------


def json_text(data: JsonObject | None) -> str | None:
    return None if data is None else dumps(data).decode()


def service_from_row(row: Row) -> ServiceRecord:
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


def object_from_row(row: Row) -> ObjectRecord:
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


def item_from_row(row: Row) -> ItemRecord:
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


def permission_from_row(row: Row) -> PermissionRecord:
    return PermissionRecord(
        service_sid=row[0],
        object_sid=row[1],
        identity=row[2],
        read=bool(row[3]),
        write=bool(row[4]),
        manage=bool(row[5]),
    )


# ---- addressing and errors -------------------------------------------------------------


def check_kind(kind: str) -> None:
    if kind not in PREFIXES:
        raise InvalidRequestError(f"Unknown object kind {kind!r}")


def object_column(kind: str, sid_or_name: str) -> str:
    """The objects column addressing `sid_or_name`: "sid" for a SID of `kind`, else "unique_name"."""
    check_kind(kind)
    return "sid" if SID_RES[kind].fullmatch(sid_or_name) else "unique_name"


def item_column(kind: str, item: object) -> str:
    """The items column addressing `item` for `kind`; InvalidRequestError on a wrong type."""
    if kind == "list":
        if not isinstance(item, int) or isinstance(item, bool):
            raise InvalidRequestError(f"A list item is addressed by an integer index, got {item!r}")
        return "idx"
    if kind == "map":
        if not isinstance(item, str):
            raise InvalidRequestError(f"A map item is addressed by a string key, got {item!r}")
        return "key"
    check_kind(kind)
    raise InvalidRequestError(f"A {kind} has no items")


def items_column(kind: str) -> str:
    return item_column(kind, 0 if kind == "list" else "")


def object_not_found(kind: str, sid_or_name: str) -> SyncError:
    return NOT_FOUND[kind](f"{LABELS[kind]} {sid_or_name} not found")


def item_not_found(kind: str, sid: str, item: int | str) -> SyncError:
    if kind == "list":
        return ListItemNotFoundError(f"List item {item} not found in {sid}")
    return MapItemNotFoundError(f"Map item {item!r} not found in {sid}")


def revision_mismatch(kind: str, revision: str, if_match: str) -> SyncError:
    """If-Match `if_match` failed against a document's (kind "document") or an item's revision."""
    if kind == "document":
        return DocumentRevisionMismatchError(
            f"Document revision is {revision}, If-Match was {if_match!r}"
        )
    cls = ListItemRevisionMismatchError if kind == "list" else MapItemRevisionMismatchError
    return cls(f"Item revision is {revision}, If-Match was {if_match!r}")


def item_mismatch(kind: str, item: ItemRecord, if_match: str) -> SyncError:
    return revision_mismatch(kind, item.revision, if_match)


def item_exists(kind: str, item: int | str) -> SyncError:
    return MapItemAlreadyExistsError(f"{kind} item {item!r} already exists")


def too_large(size: int) -> SyncError:
    return DataTooLargeError(
        f"merged data would be {size} bytes of JSON; the limit is {MAX_DATA_BYTES}"
    )


def merged(old: JsonObject, patch: JsonObject) -> JsonObject:
    """Shallow merge; the result must still fit the data limit (54006), like any write."""
    result = {**old, **patch}
    size = len(dumps(result))
    if size > MAX_DATA_BYTES:
        raise too_large(size)
    return result


# ---- the decisions of each write --------------------------------------------------------
# Each takes the current state read by the backend (under its lock), raises the error the
# write must fail with, or updates the records in memory and returns the event frame. The
# backend then persists exactly what the records say.


def new_object(
    service_sid: str,
    kind: ObjectKind,
    *,
    unique_name: str | None,
    data: JsonObject | None,
    ttl: int | None,
    created_by: str,
    at: float,
) -> ObjectRecord:
    check_kind(kind)
    return ObjectRecord(
        kind=kind,
        sid=new_sid(PREFIXES[kind]),
        service_sid=service_sid,
        unique_name=unique_name,
        data=(data or {}) if kind == "document" else None,
        last_event_id=0,
        date_created=at,
        date_updated=at,
        date_expires=expires_at(ttl, at),
        created_by=created_by,
    )


def update_document(
    doc: ObjectRecord,
    *,
    data: JsonObject,
    merge: bool,
    if_match: str | None,
    ttl: int | None,
    origin: str | None,
    at: float,
) -> bytes:
    """Apply an update to `doc` (next event id, data, dates); the `updated` frame."""
    if if_match is not None and if_match != doc.revision:
        raise revision_mismatch("document", doc.revision, if_match)
    old = doc.data or {}
    doc.data = merged(old, data) if merge else data
    doc.last_event_id += 1
    doc.date_updated = at
    if ttl is not None:
        doc.date_expires = expires_at(ttl, at)
    return dumps(events.document_updated(doc, previous_data=old, origin=origin))


def push_item(
    lst: ObjectRecord,
    index: int,
    *,
    data: JsonObject,
    ttl: int | None,
    origin: str | None,
    created_by: str,
    at: float,
) -> tuple[ItemRecord, bytes]:
    """The item appended at `index` (the list's counter) and its `item_added` frame."""
    lst.last_event_id += 1
    lst.date_updated = at
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
    return item, dumps(events.item_added("list", lst.sid, item, origin))


def write_item(
    kind: ObjectKind,
    obj: ObjectRecord,
    existing: ItemRecord | None,
    item: int | str,
    *,
    data: JsonObject,
    merge: bool,
    if_match: str | None,
    ttl: int | None,
    origin: str | None,
    created_by: str,
    if_absent: bool,
    at: float,
) -> tuple[ItemRecord, bytes]:
    """The item as `set_item` leaves it (`existing`: the live item, if any) and its frame.
    A new item is always a map item (lists must have the item: 54151)."""
    if existing is None:
        if kind == "list" or if_match is not None:
            raise item_not_found(kind, obj.sid, item)
    else:
        if if_absent:
            raise item_exists(kind, item)
        if if_match is not None and if_match != existing.revision:
            raise item_mismatch(kind, existing, if_match)
    obj.last_event_id += 1
    obj.date_updated = at
    if existing is None:
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
        frame = dumps(events.item_added(kind, obj.sid, record, origin))
        return record, frame
    record = ItemRecord(
        index=existing.index,
        key=existing.key,
        data=merged(existing.data, data) if merge else data,
        last_event_id=obj.last_event_id,
        date_created=existing.date_created,
        date_updated=at,
        date_expires=existing.date_expires if ttl is None else expires_at(ttl, at),
        created_by=existing.created_by,
    )
    frame = dumps(events.item_updated(kind, obj.sid, record, existing.data, origin))
    return record, frame


def remove_item(
    kind: ObjectKind,
    obj: ObjectRecord,
    found: ItemRecord | None,
    item: int | str,
    *,
    if_match: str | None,
    origin: str | None,
    at: float,
) -> bytes:
    """Check the removal of `found` (the live item, if any); the `item_removed` frame."""
    if found is None:
        raise item_not_found(kind, obj.sid, item)
    if if_match is not None and if_match != found.revision:
        raise item_mismatch(kind, found, if_match)
    obj.last_event_id += 1
    obj.date_updated = at
    return dumps(events.item_removed(kind, obj.sid, obj.last_event_id, item, found.data, origin))


def object_removed_event(
    kind: ObjectKind,
    service_sid: str,
    sid: str,
    last_event_id: int,
    data: JsonObject | None,
    origin: str | None,
) -> StoredEvent:
    """The `removed` event of an object (deleted with its log, so never stored)."""
    event_id = last_event_id + 1
    previous = data if kind == "document" else None
    frame = dumps(events.object_removed(kind, sid, event_id, previous, origin))
    return StoredEvent(service_sid, sid, event_id, frame, final=True)


def expired_object_event(row: Row) -> StoredEvent:
    """Row: sid, service_sid, kind, data (JSON text), last_event_id."""
    sid, service_sid, kind, data, last_event_id = (row[i] for i in range(5))
    previous = loads(data) if data is not None else None
    return object_removed_event(kind, service_sid, sid, int(last_event_id), previous, None)


def expired_item_events(rows: Iterable[Row]) -> tuple[list[StoredEvent], dict[str, int]]:
    """The `item_removed` events of expired items, in the order of `rows`, and each object's
    new last_event_id. Row: object_sid, idx, key, data (JSON text), kind, service_sid,
    last_event_id (the object's, before these removals)."""
    removals: list[StoredEvent] = []
    counters: dict[str, int] = {}
    for row in rows:
        sid, idx, key, data, kind, service_sid, last_event_id = (row[i] for i in range(7))
        event_id = counters.get(sid, int(last_event_id)) + 1
        counters[sid] = event_id
        ref: int | str = idx if kind == "list" else key
        frame = dumps(events.item_removed(kind, sid, event_id, ref, loads(data), None))
        removals.append(StoredEvent(service_sid, sid, event_id, frame))
    return removals, counters


# ---- the webhook outbox ------------------------------------------------------------------
# One table in both schemas: `seq` (ever increasing) orders it, each object's rows go out in
# seq order, one at a time: only an object's head (its lowest seq) is ever claimed. A claim
# is a lease (`lease_owner` until `lease_expires`); `next_attempt_at` holds the back-off.
# New rows are due at once (next_attempt_at 0). The statements below are the same text on
# both backends, but for the parameter marks, the clock and PostgreSQL's row locking.

OUTBOX_COLS = "seq, object_sid, url, params, token, attempts"


def outbox_args(delivery: WebhookDelivery, at: float) -> tuple[Any, ...]:
    """The parameters of `OutboxSql.insert`, in order."""
    return (
        delivery.object_sid,
        delivery.url,
        dumps(delivery.params).decode(),
        delivery.token,
        at,
    )


def outbox_from_row(row: Row) -> OutboxRow:
    """Row: the columns of OUTBOX_COLS."""
    delivery = WebhookDelivery(object_sid=row[1], url=row[2], params=loads(row[3]), token=row[4])
    return OutboxRow(seq=int(row[0]), delivery=delivery, attempts=int(row[5]))


@dataclass(frozen=True, slots=True)
class OutboxSql:
    insert: str  # object_sid, url, params, token, created_at
    claim: str  # owner, lease seconds, limit -> OUTBOX_COLS
    retry: str  # seq, owner, attempts, delay, lease
    finish: str  # seq, owner
    release: str  # owner
    backlog: str
    trim: str  # rows kept per object


def outbox_sql(mark: Callable[[int], str], now: str, lock: str = "") -> OutboxSql:
    """The outbox statements of one backend: `mark(n)` is its n-th parameter, `now` its
    clock in Unix seconds, `lock` what keeps two claimers off one row."""
    p = mark
    waiting = f"attempts = 0 AND (lease_expires IS NULL OR lease_expires <= {now})"
    return OutboxSql(
        insert=(
            "INSERT INTO webhook_outbox (object_sid, url, params, token, attempts, "
            f"next_attempt_at, created_at) VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)}, 0, 0, {p(5)})"
        ),
        claim=(
            f"UPDATE webhook_outbox SET lease_owner = {p(1)}, lease_expires = {now} + {p(2)} "
            "WHERE seq IN (SELECT o.seq FROM webhook_outbox o "
            f"WHERE o.next_attempt_at <= {now} "
            f"AND (o.lease_expires IS NULL OR o.lease_expires <= {now}) "
            "AND NOT EXISTS (SELECT 1 FROM webhook_outbox h "
            "WHERE h.object_sid = o.object_sid AND h.seq < o.seq) "
            f"ORDER BY o.seq LIMIT {p(3)}{lock}) "
            f"RETURNING {OUTBOX_COLS}"
        ),
        retry=(
            f"UPDATE webhook_outbox SET attempts = {p(3)}, next_attempt_at = {now} + {p(4)}, "
            f"lease_expires = {now} + {p(4)} + {p(5)} "
            f"WHERE seq = {p(1)} AND lease_owner = {p(2)} RETURNING seq"
        ),
        finish=(
            f"DELETE FROM webhook_outbox WHERE seq = {p(1)} AND lease_owner = {p(2)} RETURNING seq"
        ),
        release=(
            "UPDATE webhook_outbox SET lease_owner = NULL, lease_expires = NULL "
            f"WHERE lease_owner = {p(1)}"
        ),
        backlog="SELECT count(*) FROM webhook_outbox",
        trim=(
            "DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM ("
            "SELECT seq, attempts, lease_expires, "
            "row_number() OVER (PARTITION BY object_sid ORDER BY seq DESC) AS newer "
            f"FROM webhook_outbox) AS r WHERE newer > {p(1)} AND {waiting})"
        ),
    )
