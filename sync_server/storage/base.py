"""The storage interface: every durable operation of the Sync service.

Backends (SQLite now, PostgreSQL later) implement `Storage`. Methods are async and each
write is atomic and durable when it returns: the caller acknowledges the client only
afterwards. Every write that changes an object returns the `StoredEvent` it appended to the
object's event log; the event's `frame` is the exact JSON bytes pushed to subscribers, so it
is encoded once, stored once, and replayed as is on catch-up.

Conventions shared by every backend:
- Each object has a counter `last_event_id`, 0 at creation, +1 on every event (document
  update, item added/updated/removed). A document's revision and a list/map revision is
  `str(last_event_id)`; an item's revision is `str(event_id)` of its last write.
- List indexes come from a per-list counter: 0, 1, 2, ... and are never reused.
- Expired rows (date_expires <= now) are invisible to reads and removed by `expire()`.
- Errors are raised as the generated SyncError subclasses (DocumentNotFoundError, ...).
- Times are Unix seconds (float).

Webhook outbox. A write that changes an object takes an optional `webhook` hook; when given,
the backend calls it inside the write's transaction with the write's result (the
`StoredEvent`, or the new `ObjectRecord` for `create_object`) and stores the
`WebhookDelivery` it returns in the outbox *in that same transaction*, as its own statement:
the change and its webhook commit together or not at all. The `*_webhook*` methods are the
dispatcher's side: rows are claimed with a lease (`claim_webhooks`), the lease is renewed
while a delivery is in progress, and a row is deleted once delivered or given up on. Only
the oldest row of each object (its head) can be claimed, so one object's deliveries go out
in order whichever node sends them; a head whose lease lapses (its node died) is claimable
again by any node.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

from ..events import StoredEvent
from ..records import (
    ItemRecord,
    JsonObject,
    ObjectKind,
    ObjectRecord,
    PageResult,
    PermissionRecord,
    ServiceRecord,
)

__all__ = [
    "ItemRecord",
    "JsonObject",
    "ObjectKind",
    "ObjectRecord",
    "OnChange",
    "OnCreate",
    "OutboxRow",
    "PageResult",
    "PermissionRecord",
    "ServiceRecord",
    "Storage",
    "StoredEvent",
    "WebhookDelivery",
]


def new_idempotency_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One webhook POST to store in the outbox: the form `params` for `url`, ordered after the
    earlier deliveries of `object_sid`. `token` is its ``I-Twilio-Idempotency-Token``, the
    same on every attempt, from any node."""

    object_sid: str
    url: str
    params: dict[str, str]
    token: str = field(default_factory=new_idempotency_token)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A claimed outbox row: `seq` orders the outbox; `attempts` already made (any node)."""

    seq: int
    delivery: WebhookDelivery
    attempts: int


# The webhook hook of a write: called in the write's transaction with what it produced.
OnChange = Callable[[StoredEvent], WebhookDelivery | None]
OnCreate = Callable[[ObjectRecord], WebhookDelivery | None]


class Storage(abc.ABC):
    """Durable state of every service. One instance per server process."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    async def ping(self) -> None:  # noqa: B027 - optional: embedded storage is always there
        """Raise if the storage cannot serve requests now (readiness checks)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # ---- services --------------------------------------------------------------------
    @abc.abstractmethod
    async def put_service(self, service: ServiceRecord) -> ServiceRecord:
        """Insert or replace a service (by sid)."""

    @abc.abstractmethod
    async def get_service(self, sid_or_name: str) -> ServiceRecord | None: ...

    @abc.abstractmethod
    async def list_services(self, *, after_sid: str | None, limit: int) -> list[ServiceRecord]:
        """Services ordered by sid, strictly after `after_sid` (None = from the first)."""

    @abc.abstractmethod
    async def delete_service(self, sid: str) -> bool:
        """Delete a service with all its objects, items, events and permissions; False if absent."""

    # ---- objects ---------------------------------------------------------------------
    @abc.abstractmethod
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
        """Create an object with a new SID; UniqueNameExistsError (54301) if the name is taken."""

    @abc.abstractmethod
    async def get_object(
        self, service_sid: str, kind: ObjectKind, sid_or_name: str
    ) -> ObjectRecord | None:
        """The object by SID or unique name, or None if absent or expired."""

    @abc.abstractmethod
    async def list_objects(
        self, service_sid: str, kind: ObjectKind, *, after_sid: str | None, limit: int
    ) -> list[ObjectRecord]:
        """Non-expired objects of one kind, ordered by sid, strictly after `after_sid`."""

    @abc.abstractmethod
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
        """Overwrite (or shallow-merge) a document: event `updated`. 54100 / 54103."""

    @abc.abstractmethod
    async def set_object_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, ttl: int
    ) -> ObjectRecord:
        """Set the object's TTL (0 = never expires) from now. No event."""

    @abc.abstractmethod
    async def remove_object(
        self,
        service_sid: str,
        kind: ObjectKind,
        sid: str,
        *,
        origin: str | None,
        webhook: OnChange | None = None,
    ) -> StoredEvent:
        """Delete an object with its items and event log: event `removed`."""

    # ---- items -----------------------------------------------------------------------
    @abc.abstractmethod
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
        """Append an item at the next index: event `item_added`. 54150."""

    @abc.abstractmethod
    async def get_item(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str
    ) -> ItemRecord:
        """One item; 54150/54151 (list) or 54200/54201 (map) when absent."""

    @abc.abstractmethod
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
        """Write an item. Lists: must exist (54151), event `item_updated`. Maps: upsert,
        event `item_added` or `item_updated`. If-Match mismatch: 54155 / 54205.
        if_absent: create only, MapItemAlreadyExistsError (54208) if the item exists."""

    @abc.abstractmethod
    async def set_item_ttl(
        self, service_sid: str, kind: ObjectKind, sid: str, item: int | str, ttl: int
    ) -> ItemRecord:
        """Set the item's TTL from now (0 = never). No event."""

    @abc.abstractmethod
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
        """Delete an item: event `item_removed` with previous_data."""

    @abc.abstractmethod
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
        """Items in index/key order from `start` (None = from the first in that order)."""

    # ---- permissions -----------------------------------------------------------------
    @abc.abstractmethod
    async def put_permission(self, permission: PermissionRecord) -> PermissionRecord:
        """Insert or replace the permission of (object_sid, identity)."""

    @abc.abstractmethod
    async def get_permission(
        self, service_sid: str, object_sid: str, identity: str
    ) -> PermissionRecord | None: ...

    @abc.abstractmethod
    async def delete_permission(self, service_sid: str, object_sid: str, identity: str) -> bool:
        """False if there was none."""

    @abc.abstractmethod
    async def list_permissions(
        self, service_sid: str, object_sid: str, *, after_identity: str | None, limit: int
    ) -> list[PermissionRecord]:
        """Permissions of one object ordered by identity, strictly after `after_identity`."""

    # ---- events ----------------------------------------------------------------------
    @abc.abstractmethod
    async def events_since(
        self, service_sid: str, sid: str, since: int, limit: int
    ) -> list[StoredEvent] | None:
        """Stored events with event_id > since, in order (at most `limit`); None when the log
        no longer reaches back to since + 1 (the caller then sends a snapshot)."""

    @abc.abstractmethod
    async def object_positions(self, sids: Collection[str]) -> dict[str, int]:
        """`last_event_id` of each of `sids` that exists and has not expired (others are left
        out). A node of a cluster compares these with what it delivered to find missed events."""

    @abc.abstractmethod
    async def expire(self, now: float, limit: int) -> list[StoredEvent]:
        """Delete at most `limit` expired objects, oldest `date_expires` first, then, once no
        expired object is left, at most `limit` expired items; return their removal events, in
        order. Fewer than `limit` events: nothing expired at `now` is left. Each call holds the
        storage briefly; sweep by calling again. With several server processes on one database,
        each expired row is removed (and its event returned) by exactly one of them."""

    @abc.abstractmethod
    async def prune_events(self, now: float, limit: int) -> int:
        """Delete at most `limit` events older than the retention window; return how many.
        (Each write keeps at most the retention count of events of its object.)"""

    # ---- webhook outbox --------------------------------------------------------------
    @abc.abstractmethod
    async def add_webhook(self, delivery: WebhookDelivery) -> None:
        """Store one delivery on its own (a change that is not stored: a stream message)."""

    @abc.abstractmethod
    async def claim_webhooks(self, owner: str, lease: float, limit: int) -> list[OutboxRow]:
        """Lease to `owner` for `lease` seconds at most `limit` rows, oldest first, each the
        head of its object, due (its back-off is over) and not leased (or its lease lapsed).
        Across processes, each row goes to one claimer."""

    @abc.abstractmethod
    async def renew_webhook_leases(
        self, owner: str, seqs: Collection[int], lease: float
    ) -> set[int]:
        """Extend `owner`'s leases of `seqs` to `lease` seconds from now; the seqs it still
        holds (a row whose lease lapsed and was claimed by another is lost)."""

    @abc.abstractmethod
    async def retry_webhook(
        self, seq: int, owner: str, *, attempts: int, delay: float, lease: float
    ) -> bool:
        """Record a failed attempt: `attempts` made, next one due in `delay` seconds; the
        lease is kept until then plus `lease`. False if `owner` no longer holds the row."""

    @abc.abstractmethod
    async def finish_webhook(self, seq: int, owner: str) -> bool:
        """Delete a row (delivered or given up on); False if `owner` no longer held it."""

    @abc.abstractmethod
    async def release_webhooks(self, owner: str) -> None:
        """Give up every lease of `owner` (a node shutting down), keeping the back-off."""

    @abc.abstractmethod
    async def webhook_backlog(self) -> int:
        """Rows in the outbox (pending, leased or backing off)."""

    @abc.abstractmethod
    async def trim_webhooks(self, per_object: int) -> int:
        """Delete the oldest waiting rows of each object holding more than `per_object`
        (never a leased or already attempted one); how many were deleted."""
