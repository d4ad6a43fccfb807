"""Encoding shared by every part of the server: JSON via orjson, timestamps, SIDs, and the
dict shapes of object and item snapshots (spec/protocol.yaml ObjectSnapshot, ItemSnapshot).
Built as plain dicts and encoded once; no pydantic on this path. Events: `events.py`."""

from __future__ import annotations

import functools
import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any, overload

import orjson
from sync_generated.errors import InvalidDocumentDataError
from sync_generated.protocol_dicts import ItemSnapshot, ObjectSnapshot

from .records import ItemRecord, ObjectRecord

JsonObject = dict[str, Any]


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)


def refuse_non_finite(raw: str | bytes) -> None:
    """JSON has no NaN or Infinity, but pydantic's parser reads them (and orjson would then
    store null): a request with one outside a string is refused (54101)."""
    found = (
        ("NaN" in raw or "Infinity" in raw)
        if isinstance(raw, str)
        else (b"NaN" in raw or b"Infinity" in raw)
    )
    if not found:
        return
    try:
        orjson.loads(raw)  # strict JSON: fails on a bare NaN / Infinity, not on "NaN" in a string
    except orjson.JSONDecodeError:
        raise InvalidDocumentDataError(
            "data must be JSON: NaN and Infinity are not JSON numbers"
        ) from None


def now() -> float:
    return time.time()


@overload
def iso(ts: float) -> str: ...
@overload
def iso(ts: None) -> None: ...
@overload
def iso(ts: float | None) -> str | None: ...
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


def object_snapshot(obj: ObjectRecord) -> ObjectSnapshot:
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


def item_snapshot(item: ItemRecord) -> ItemSnapshot:
    snap: ItemSnapshot = {
        "revision": item.revision,
        "data": item.data,
        "date_created": iso(item.date_created),
        "date_updated": iso(item.date_updated),
        "date_expires": iso(item.date_expires),
        "created_by": item.created_by,
        "last_event_id": item.last_event_id,
    }
    if item.index is not None:
        snap["index"] = item.index
    else:
        snap["key"] = item.key
    return snap


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)
