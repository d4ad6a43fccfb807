"""Wire encoding shared by every part of the server: JSON via orjson, timestamps, and the
dict shapes of snapshots and event frames (spec/protocol.yaml ObjectSnapshot, ItemSnapshot,
EventFrame). Frames are built as plain dicts and encoded once; no pydantic on this path."""

from __future__ import annotations

import functools
import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from .storage.base import ItemRecord, ObjectKind, ObjectRecord

JsonObject = dict[str, Any]


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    """Unix seconds -> Twilio's date format, `%Y-%m-%dT%H:%M:%SZ`."""
    if ts is None:
        return None
    return _iso_second(math.floor(ts))


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    # Every reply and event carries two or three of these, mostly of the last few seconds.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expires_at(ttl: int | None, at: float) -> float | None:
    """TTL in seconds (0 or None = never) -> absolute expiry time."""
    return None if not ttl else at + ttl


def object_snapshot(obj: ObjectRecord) -> JsonObject:
    return {
        "kind": obj.kind,
        "sid": obj.sid,
        "unique_name": obj.unique_name,
        "revision": obj.revision,
        "data": obj.data,
        "date_created": iso(obj.date_created),
        "date_updated": iso(obj.date_updated),
        "date_expires": iso(obj.date_expires),
        "created_by": obj.created_by,
        "last_event_id": obj.last_event_id,
    }


def item_snapshot(item: ItemRecord) -> JsonObject:
    snap: JsonObject = {"index": item.index} if item.index is not None else {"key": item.key}
    snap.update(
        revision=item.revision,
        data=item.data,
        date_created=iso(item.date_created),
        date_updated=iso(item.date_updated),
        date_expires=iso(item.date_expires),
        created_by=item.created_by,
        last_event_id=item.last_event_id,
    )
    return snap


def event_frame(
    kind: ObjectKind, sid: str, name: str, event_id: int | None, origin: str | None, **fields: Any
) -> bytes:
    """Encode one EventFrame: {type: event, sid, kind, name, event_id, origin, ...fields}."""
    frame: JsonObject = {
        "type": "event",
        "sid": sid,
        "kind": kind,
        "name": name,
        "event_id": event_id,
        "origin": origin,
    }
    frame.update(fields)
    return orjson.dumps(frame)


def document_updated_frame(
    doc: ObjectRecord, previous_data: JsonObject | None, origin: str | None
) -> bytes:
    return event_frame(
        "document",
        doc.sid,
        "updated",
        doc.last_event_id,
        origin,
        data=doc.data,
        previous_data=previous_data,
        revision=doc.revision,
        date_updated=iso(doc.date_updated),
        date_expires=iso(doc.date_expires),
    )


def item_changed_frame(
    kind: ObjectKind,
    sid: str,
    name: str,
    item: ItemRecord,
    previous_data: JsonObject | None,
    origin: str | None,
) -> bytes:
    """`item_added` or `item_updated`; event_id is the item's last_event_id."""
    return event_frame(
        kind,
        sid,
        name,
        item.last_event_id,
        origin,
        item=item_snapshot(item),
        previous_data=previous_data,
    )


def item_removed_frame(
    kind: ObjectKind,
    sid: str,
    event_id: int,
    item: int | str,
    previous_data: JsonObject | None,
    origin: str | None,
) -> bytes:
    ref: JsonObject = {"index": item} if isinstance(item, int) else {"key": item}
    return event_frame(
        kind, sid, "item_removed", event_id, origin, previous_data=previous_data, **ref
    )


def object_removed_frame(
    kind: ObjectKind, sid: str, event_id: int, previous_data: JsonObject | None, origin: str | None
) -> bytes:
    return event_frame(kind, sid, "removed", event_id, origin, previous_data=previous_data)


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)
