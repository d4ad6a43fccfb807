"""The Sync service: every operation of the application core, whatever the front door.

REST, the native WebSocket protocol and Twilsock only parse, call this (or a `Session`,
which calls this) and encode. `SyncService` validates arguments with Twilio's codes,
checks access (ACL), calls storage (with the write's webhook, stored in the same transaction
in the outbox that `WebhookDispatcher` delivers), publishes every resulting event to the
broker right after the write commits (so events leave in commit order), and keeps the
caches of services, permissions and live streams, invalidated here and on every other node
(`broker.broadcast`) when a service, a permission or a stream changes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from sync_generated.client import (
    MAX_STREAM_MESSAGE_BYTES,
    SID_PREFIXES,
)
from sync_generated.errors import (
    DocumentNotFoundError,
    ForbiddenError,
    InvalidMapKeyError,
    InvalidRequestError,
    InvalidUniqueNameError,
    ListNotFoundError,
    MapNotFoundError,
    PermissionNotFoundError,
    RateLimitExceededError,
    ServiceNotFoundError,
    StreamNotFoundError,
    SyncError,
    UniqueNameExistsError,
)
from sync_generated.protocol_dicts import StreamMessageResult

from sync_sdk.validation import check_data, check_map_key
from sync_sdk.validation import check_unique_name as check_name

from . import events, wire
from .broker import Broker
from .config import DEFAULT_LIMITS, Limits
from .credentials import Credentials
from .events import Event, StoredEvent
from .metrics import Metrics
from .records import (
    ItemRecord,
    ObjectKind,
    ObjectRecord,
    PageResult,
    PermissionRecord,
    ServiceRecord,
)
from .storage.base import Storage, WebhookDelivery
from .tokens import TokenClaims, verify_token
from .webhooks import WebhookDispatcher, event_params

JsonObject = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger(__name__)

PREFIX_BY_KIND: dict[ObjectKind, str] = {
    "document": SID_PREFIXES["Document"],
    "list": SID_PREFIXES["List"],
    "map": SID_PREFIXES["Map"],
    "stream": SID_PREFIXES["Stream"],
}
KIND_BY_PREFIX: dict[str, ObjectKind] = {v: k for k, v in PREFIX_BY_KIND.items()}
NOT_FOUND: dict[ObjectKind, type[SyncError]] = {
    "document": DocumentNotFoundError,
    "list": ListNotFoundError,
    "map": MapNotFoundError,
    "stream": StreamNotFoundError,
}
SID_RE = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
_STREAM_PREFIX = PREFIX_BY_KIND["stream"]
_UNKNOWN: Any = object()  # not in a cache


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the service, the identity and the client id used as event origin.
    Trusted callers (the REST API, authenticated with account credentials) bypass the ACL."""

    service_sid: str
    identity: str
    origin: str | None
    trusted: bool = False


Access = Literal["read", "write", "manage"]


class AclListener(Protocol):
    def access_changed(
        self, service_sid: str | None, object_sid: str | None, identity: str | None
    ) -> None:
        """Recheck access; None means any (service, object or identity)."""


class LiveSession(Protocol):
    """A client session as the service sees it (session.Session)."""

    @property
    def closed(self) -> bool: ...

    @property
    def subscription_count(self) -> int: ...

    def restart(self) -> None:
        """The node is shutting down: finish what was asked, then let the client go."""

    def cut(self) -> None:
        """Drop the connection now (the drain ran out of time)."""


def kind_of_sid(sid: str) -> ObjectKind:
    kind = KIND_BY_PREFIX.get(sid[:2]) if SID_RE.fullmatch(sid) else None
    if kind is None:
        raise InvalidRequestError(f"{sid!r:.80} is not the SID of a document, list, map or stream")
    return kind


def check_unique_name(kind: ObjectKind, name: str) -> str:
    """The SDK's rule (54302), no SID-shaped name of another kind of object, and no "/" (a
    name must work as one path segment of the REST API and the client API)."""
    check_name(name)
    if "/" in name:
        raise InvalidUniqueNameError(f"unique name {name!r:.80} may not contain '/'")
    if SID_RE.fullmatch(name) and name[:2] != PREFIX_BY_KIND[kind]:
        raise InvalidUniqueNameError(
            f"unique name {name!r} looks like the SID of another kind of object"
        )
    return name


@dataclass(frozen=True, slots=True)
class Webhook:
    """The webhook of one write, decided before it (the service wants one, the outbox has
    room): storage calls `on_change` / `on_create` inside the write's transaction."""

    service: ServiceRecord
    caller: Caller

    def delivery(
        self,
        event_type: str,
        kind: ObjectKind,
        sid: str,
        *,
        unique_name: str | None = None,
        data: JsonObject | None = None,
        item_index: int | None = None,
        item_key: str | None = None,
        revision: str | None = None,
        date_updated: str | None = None,
    ) -> WebhookDelivery:
        """The POST to the service's WebhookUrl. REST writes carry no Identity."""
        svc = self.service
        assert svc.webhook_url is not None
        params = event_params(
            event_type=event_type,
            account_sid=svc.account_sid,
            service_sid=svc.sid,
            object_kind=kind,
            object_sid=sid,
            unique_name=unique_name,
            identity=None if self.caller.trusted else self.caller.identity,
            data=data,
            item_index=item_index,
            item_key=item_key,
            revision=None if kind == "stream" else revision,
            date_updated=date_updated,
        )
        return WebhookDelivery(object_sid=sid, url=svc.webhook_url, params=params)

    def on_create(self, created: ObjectRecord) -> WebhookDelivery:
        kind = created.kind
        return self.delivery(
            f"{kind}_created",
            kind,
            created.sid,
            unique_name=created.unique_name,
            data=created.data if kind == "document" else None,
            revision=None if kind == "stream" else created.revision,
            date_updated=wire.iso(created.date_updated),
        )

    def on_change(self, event: Event) -> WebhookDelivery:
        frame = event.record
        item = frame.get("item") or {}
        kind = frame["kind"]
        return self.delivery(
            f"{kind}_{frame['name']}",
            kind,
            event.sid,
            data=frame.get("data") if kind == "document" else item.get("data"),
            item_index=item.get("index", frame.get("index")) if kind == "list" else None,
            item_key=item.get("key", frame.get("key")) if kind == "map" else None,
            revision=frame.get("revision") or item.get("revision"),
            date_updated=frame.get("date_updated") or item.get("date_updated"),
        )


class RateLimiter:
    """Token buckets by key: `rate` actions/s sustained, bursts of up to `burst`. rate <= 0
    disables it. Over the limit: 54009 / 429, and the action is not taken."""

    def __init__(self, rate: float, burst: int, action: str) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.action = action  # for the message, e.g. "writes to"
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            retry = (1.0 - tokens) / self.rate
            raise RateLimitExceededError(
                f"more than {self.rate:g} {self.action} {key} per second "
                f"(bursts of {self.burst}); retry in {retry:.2f}s"
            )
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._buckets.clear()


class SyncService:
    def __init__(
        self,
        storage: Storage,
        broker: Broker,
        *,
        credentials: Credentials,
        limits: Limits = DEFAULT_LIMITS,
        webhooks: WebhookDispatcher | None = None,
    ) -> None:
        self.storage = storage
        self.broker = broker
        broker.bind(storage)
        broker.on_broadcast = self._on_broadcast
        self.credentials = credentials
        self.limits = limits
        self._api_keys = {credentials.api_key_sid: credentials.api_secret}
        self.webhooks = webhooks
        self.metrics = Metrics()
        # Every client session, whatever its front door (for the drain and the metrics).
        self.sessions: weakref.WeakSet[LiveSession] = weakref.WeakSet()
        self.metrics.sessions = self.sessions
        self.draining = False  # the node is shutting down (see drain)
        self.metrics.broker = broker
        self.metrics.webhooks = webhooks
        # Writes per object (Twilio: about 20/s); objects created per identity and per
        # connection, so one client cannot fill the database.
        self.limiter = RateLimiter(limits.write_rate, limits.write_burst, "writes to")
        self.creations = RateLimiter(limits.create_rate, limits.create_burst, "objects created by")
        self.acl_listeners: set[AclListener] = set()
        self._services: dict[str, ServiceRecord | None] = {}
        self._permissions: dict[tuple[str, str], PermissionRecord | None] = {}
        # Streams known to exist, so publishing needs no storage round trip; an entry is
        # dropped when the stream's `removed` event (delete or expiry) is published.
        self._live_streams: set[tuple[str, str]] = set()
        self._streams_removed = 0  # bumped on every stream removal (see publish_message)

    async def drain(self, timeout: float) -> int:
        """Shut the node's sessions down without losing a request: each front door stops
        reading, answers the requests it has taken, then closes its connection so that the
        client reconnects at once (to another node). Connections still busy at `timeout`
        seconds are dropped; returns how many."""
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = [s for s in list(self.sessions) if not s.closed]
            if not left:
                return 0
            for session in left:  # again each time: connections accepted just before
                session.restart()
            if loop.time() >= deadline:
                # Requests still running: drop these connections (1011) so that their
                # clients know the outcome is unknown (a 1012 would promise "not applied").
                for session in left:
                    session.cut()
                await asyncio.sleep(0.05)  # their close frames go out before uvicorn's 1012
                return len(left)
            await asyncio.sleep(0.02)

    async def _commit(self, write: Awaitable[T], webhook: Webhook | None = None) -> T:
        """A durable write, timed for `sync_storage_commit_seconds`; `webhook`: the one it
        stores (`_webhook`), now committed or not."""
        started = time.perf_counter()
        try:
            result = await write
        except BaseException:
            if webhook is not None and self.webhooks is not None:
                self.webhooks.release()
            raise
        finally:
            self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if webhook is not None and self.webhooks is not None:
            self.webhooks.written()
        return result

    # ---- tokens ------------------------------------------------------------------------
    def verify_token(self, token: str) -> TokenClaims:
        """The claims of a client's access token, signed with this server's API key
        (20101...20107 otherwise)."""
        return verify_token(token, keys=self._api_keys, account_sid=self.credentials.account_sid)

    # ---- access control ------------------------------------------------------------------
    async def authorize(self, caller: Caller, object_sid: str, access: Access) -> None:
        """ForbiddenError (54007) unless the caller may `access` the object. Only services with
        acl_enabled are checked; streams are not covered by permissions (as in Twilio).

        What allows is taken from the caches; what would refuse is read again from storage
        first: a grant (or ACL switched off) on another node reaches this node's caches only
        with its invalidation over Redis, moments after the REST call that made it returned."""
        if caller.trusted or object_sid[:2] == _STREAM_PREFIX:
            return
        # The cached service without a coroutine per check (`settings` reads it otherwise).
        svc = self._services.get(caller.service_sid, _UNKNOWN)
        if svc is _UNKNOWN:
            svc = await self.settings(caller.service_sid)
        if not (svc and svc.acl_enabled):
            return
        key = (object_sid, caller.identity)
        perm = self._permissions.get(key, _UNKNOWN)
        if perm is not _UNKNOWN and perm is not None and getattr(perm, access):
            return
        if len(self._permissions) > 100_000:
            self._permissions.clear()
        perm = self._permissions[key] = await self.storage.get_permission(
            caller.service_sid, object_sid, caller.identity
        )
        if perm is not None and getattr(perm, access):
            return
        self._services.pop(caller.service_sid, None)
        svc = await self.settings(caller.service_sid)
        if svc and svc.acl_enabled:
            raise ForbiddenError(
                f"identity {caller.identity!r} has no {access} permission on {object_sid}"
            )

    async def settings(self, service_sid: str) -> ServiceRecord | None:
        """The service's record, cached until `service_changed()`."""
        if service_sid not in self._services:
            self._services[service_sid] = await self.storage.get_service(service_sid)
        return self._services[service_sid]

    async def _acl_on(self, service_sid: str) -> bool:
        svc = await self.settings(service_sid)
        return bool(svc and svc.acl_enabled)

    def _service_changed(self, service_sid: str) -> None:
        """A service was updated or deleted: forget cached settings, recheck access (here and
        on every other node)."""
        self._forget_service(service_sid)
        self.broker.broadcast({"type": "service", "service_sid": service_sid})

    def _permission_changed(self, service_sid: str, object_sid: str, identity: str) -> None:
        self._forget_permission(service_sid, object_sid, identity)
        self.broker.broadcast(
            {
                "type": "permission",
                "service_sid": service_sid,
                "object_sid": object_sid,
                "identity": identity,
            }
        )

    def _forget_service(self, service_sid: str | None) -> None:
        """None: every service (e.g. after invalidations from other nodes may have been lost)."""
        if service_sid is None:
            self._services.clear()
            self._live_streams.clear()
        else:
            self._services.pop(service_sid, None)
            self._live_streams = {s for s in self._live_streams if s[0] != service_sid}
        self._permissions.clear()
        for listener in tuple(self.acl_listeners):
            listener.access_changed(service_sid, None, None)

    def _forget_permission(self, service_sid: str, object_sid: str, identity: str) -> None:
        self._permissions.pop((object_sid, identity), None)
        for listener in tuple(self.acl_listeners):
            listener.access_changed(service_sid, object_sid, identity)

    def _forget_stream(self, service_sid: str, sid: str) -> None:
        self._live_streams.discard((service_sid, sid))
        self._streams_removed += 1

    def _on_broadcast(self, message: dict[str, str]) -> None:
        """A change made on another node (see the calls to `broker.broadcast`)."""
        match message.get("type"):
            case "service":
                self._forget_service(message["service_sid"])
            case "permission":
                self._forget_permission(
                    message["service_sid"], message["object_sid"], message["identity"]
                )
            case "stream_removed":
                self._forget_stream(message["service_sid"], message["sid"])
            case "reset":
                self._forget_service(None)

    async def _publish(self, event: Event) -> None:
        """Fan the event out to subscribers (its webhook, if any, was stored with it)."""
        await self.broker.publish(event)
        if event.sid[:2] == PREFIX_BY_KIND["stream"]:
            self._forget_stream(event.service_sid, event.sid)
            self.broker.broadcast(
                {"type": "stream_removed", "service_sid": event.service_sid, "sid": event.sid}
            )

    async def _webhook(self, caller: Caller) -> Webhook | None:
        """The webhook of a write by `caller`, if the service has a WebhookUrl (REST writes
        notify only with webhooks_from_rest_enabled, as in Twilio) and the outbox has room
        (it is reserved: pass it to `_commit`)."""
        if self.webhooks is None:
            return None
        svc = self._services.get(caller.service_sid, _UNKNOWN)
        if svc is _UNKNOWN:
            svc = await self.settings(caller.service_sid)
        if not (svc and svc.webhook_url and (not caller.trusted or svc.webhooks_from_rest_enabled)):
            return None
        if not self.webhooks.reserve():
            return None
        return Webhook(svc, caller)

    # ---- services ----------------------------------------------------------------------
    async def get_service(self, sid_or_name: str) -> ServiceRecord:
        """The service with this SID or unique name, read from storage (54050 if none)."""
        svc = await self.storage.get_service(sid_or_name)
        if svc is None:
            raise ServiceNotFoundError(f"service {sid_or_name!r:.80} not found")
        return svc

    async def list_services(self, *, after_sid: str | None, limit: int) -> list[ServiceRecord]:
        return await self.storage.list_services(after_sid=after_sid, limit=limit)

    async def create_service(self, svc: ServiceRecord) -> ServiceRecord:
        await self._check_service_name(svc)
        return await self.storage.put_service(svc)

    async def update_service(self, svc: ServiceRecord) -> ServiceRecord:
        await self._check_service_name(svc)
        svc.date_updated = wire.now()
        await self.storage.put_service(svc)
        self._service_changed(svc.sid)
        return svc

    async def delete_service(self, sid: str) -> None:
        await self.storage.delete_service(sid)
        self._service_changed(sid)

    async def _check_service_name(self, svc: ServiceRecord) -> None:
        name = svc.unique_name
        if name is None:
            return
        check_name(name)
        if SID_RE.fullmatch(name):
            raise InvalidUniqueNameError(f"service unique name {name!r:.80} looks like a SID")
        other = await self.storage.get_service(name)
        if other is not None and other.sid != svc.sid:
            raise UniqueNameExistsError(f"a service named {name!r:.80} already exists")

    # ---- permissions -------------------------------------------------------------------
    async def list_permissions(
        self, caller: Caller, object_sid: str, *, after_identity: str | None, limit: int
    ) -> list[PermissionRecord]:
        await self.authorize(caller, object_sid, "manage")
        return await self.storage.list_permissions(
            caller.service_sid, object_sid, after_identity=after_identity, limit=limit
        )

    async def get_permission(
        self, caller: Caller, object_sid: str, identity: str
    ) -> PermissionRecord:
        await self.authorize(caller, object_sid, "manage")
        perm = await self.storage.get_permission(caller.service_sid, object_sid, identity)
        if perm is None:
            raise PermissionNotFoundError(
                f"no permission for identity {identity!r:.80} on {object_sid}"
            )
        return perm

    async def set_permission(self, caller: Caller, perm: PermissionRecord) -> PermissionRecord:
        await self.authorize(caller, perm.object_sid, "manage")
        await self.storage.put_permission(perm)
        self._permission_changed(perm.service_sid, perm.object_sid, perm.identity)
        return perm

    async def delete_permission(self, caller: Caller, object_sid: str, identity: str) -> None:
        await self.authorize(caller, object_sid, "manage")
        if not await self.storage.delete_permission(caller.service_sid, object_sid, identity):
            raise PermissionNotFoundError(
                f"no permission for identity {identity!r:.80} on {object_sid}"
            )
        self._permission_changed(caller.service_sid, object_sid, identity)

    # ---- objects -----------------------------------------------------------------------
    async def open(
        self,
        caller: Caller,
        kind: ObjectKind,
        object_id: str | None,
        mode: Literal["open_or_create", "open_existing", "create_new"],
        ttl: int | None,
        data: JsonObject | None,
    ) -> ObjectRecord:
        if data is not None:
            if kind != "document":
                raise InvalidRequestError("initial data is only for documents")
            check_data(data)
        if object_id is not None:
            check_unique_name(kind, object_id)
        if mode != "create_new" and object_id is not None:
            existing = await self.storage.get_object(caller.service_sid, kind, object_id)
            if existing is not None:
                await self.authorize(caller, existing.sid, "read")
                return existing
            if mode == "open_existing":
                raise NOT_FOUND[kind](f"{kind} {object_id!r} not found")
        if object_id is not None and SID_RE.fullmatch(object_id):
            if mode == "create_new":
                existing = await self.storage.get_object(caller.service_sid, kind, object_id)
                if existing is not None:
                    raise UniqueNameExistsError(f"{kind} {object_id} already exists")
            raise NOT_FOUND[kind](
                f"{kind} {object_id} not found (a SID cannot be used as a new unique name)"
            )
        if await self.settings(caller.service_sid) is None:  # deleted under a live session
            raise ServiceNotFoundError(f"service {caller.service_sid} not found")
        if not caller.trusted:
            self.creations.check(f"identity {caller.identity!r:.80}")
            if caller.origin is not None:
                self.creations.check(f"connection {caller.origin!r:.80}")
        if kind != "stream" and not caller.trusted and await self._acl_on(caller.service_sid):
            raise ForbiddenError(
                f"identity {caller.identity!r} may not create a {kind}: the service has ACL enabled; "
                "create objects over the REST API and grant permissions"
            )
        try:
            hook = await self._webhook(caller)
            return await self._commit(
                self.storage.create_object(
                    caller.service_sid,
                    kind,
                    unique_name=object_id,
                    data=data,
                    ttl=ttl,
                    created_by=caller.identity,
                    webhook=hook.on_create if hook else None,
                ),
                hook,
            )
        except UniqueNameExistsError:
            if mode == "create_new" or object_id is None:
                raise
            # Lost a race with another creator: open theirs.
            existing = await self.storage.get_object(caller.service_sid, kind, object_id)
            if existing is None:
                raise
            await self.authorize(caller, existing.sid, "read")
            return existing

    async def get_object(self, caller: Caller, sid: str) -> ObjectRecord:
        kind = kind_of_sid(sid)
        obj = await self.storage.get_object(caller.service_sid, kind, sid)
        if obj is None:
            raise NOT_FOUND[kind](f"{kind} {sid} not found")
        await self.authorize(caller, obj.sid, "read")
        return obj

    async def find_object(self, caller: Caller, kind: ObjectKind, sid_or_name: str) -> ObjectRecord:
        """The object of this kind with this SID or unique name (its kind's 404 if none)."""
        obj = await self.storage.get_object(caller.service_sid, kind, sid_or_name)
        if obj is None:
            raise NOT_FOUND[kind](f"{kind} {sid_or_name!r:.80} not found")
        await self.authorize(caller, obj.sid, "read")
        return obj

    async def list_objects(
        self, caller: Caller, kind: ObjectKind, *, after_sid: str | None, limit: int
    ) -> list[ObjectRecord]:
        if not caller.trusted:
            raise ForbiddenError("listing objects needs the REST API's credentials")
        return await self.storage.list_objects(
            caller.service_sid, kind, after_sid=after_sid, limit=limit
        )

    async def events_since(
        self, caller: Caller, sid: str, since: int, limit: int
    ) -> list[StoredEvent] | None:
        """The stored events of `sid` after `since` (at most `limit`), None when the log no
        longer reaches back that far."""
        await self.authorize(caller, sid, "read")
        return await self.storage.events_since(caller.service_sid, sid, since, limit)

    async def set_document(
        self,
        caller: Caller,
        sid: str,
        data: JsonObject,
        *,
        merge: bool,
        if_match: str | None,
        ttl: int | None,
    ) -> ObjectRecord:
        if kind_of_sid(sid) != "document":
            raise InvalidRequestError(f"{sid} is not a document")
        check_data(data)
        await self.authorize(caller, sid, "write")
        self.limiter.check(sid)
        hook = await self._webhook(caller)
        doc, event = await self._commit(
            self.storage.update_document(
                caller.service_sid,
                sid,
                data=data,
                merge=merge,
                if_match=if_match,
                ttl=ttl,
                origin=caller.origin,
                webhook=hook.on_change if hook else None,
            ),
            hook,
        )
        await self._publish(event)
        return doc

    async def set_ttl(self, caller: Caller, sid: str, ttl: int) -> ObjectRecord:
        await self.authorize(caller, sid, "write")
        return await self._commit(
            self.storage.set_object_ttl(caller.service_sid, kind_of_sid(sid), sid, ttl)
        )

    async def remove(self, caller: Caller, sid: str) -> None:
        await self.authorize(caller, sid, "manage")
        hook = await self._webhook(caller)
        event = await self._commit(
            self.storage.remove_object(
                caller.service_sid,
                kind_of_sid(sid),
                sid,
                origin=caller.origin,
                webhook=hook.on_change if hook else None,
            ),
            hook,
        )
        await self._publish(event)

    # ---- items -------------------------------------------------------------------------
    def _item_ref(self, kind: ObjectKind, index: int | None, key: str | None) -> int | str:
        if kind == "list":
            if index is None or key is not None:
                raise InvalidRequestError("list items are addressed by `index` (an int), not `key`")
            return index
        if kind == "map":
            if key is None or index is not None:
                raise InvalidMapKeyError("map items are addressed by `key` (a string), not `index`")
            return check_map_key(key)
        raise InvalidRequestError(f"a {kind} has no items")

    async def list_push(
        self, caller: Caller, sid: str, data: JsonObject, ttl: int | None
    ) -> ItemRecord:
        if kind_of_sid(sid) != "list":
            raise InvalidRequestError(f"{sid} is not a list")
        check_data(data)
        await self.authorize(caller, sid, "write")
        self.limiter.check(sid)
        hook = await self._webhook(caller)
        item, event = await self._commit(
            self.storage.list_push(
                caller.service_sid,
                sid,
                data=data,
                ttl=ttl,
                origin=caller.origin,
                created_by=caller.identity,
                webhook=hook.on_change if hook else None,
            ),
            hook,
        )
        await self._publish(event)
        return item

    async def get_item(
        self, caller: Caller, sid: str, index: int | None, key: str | None
    ) -> ItemRecord:
        kind = kind_of_sid(sid)
        await self.authorize(caller, sid, "read")
        return await self.storage.get_item(
            caller.service_sid, kind, sid, self._item_ref(kind, index, key)
        )

    async def set_item(
        self,
        caller: Caller,
        sid: str,
        index: int | None,
        key: str | None,
        data: JsonObject,
        *,
        merge: bool,
        if_match: str | None,
        ttl: int | None,
        if_absent: bool = False,
    ) -> ItemRecord:
        item, _ = await self.upsert_item(
            caller,
            sid,
            index,
            key,
            data,
            merge=merge,
            if_match=if_match,
            ttl=ttl,
            if_absent=if_absent,
        )
        return item

    async def upsert_item(
        self,
        caller: Caller,
        sid: str,
        index: int | None,
        key: str | None,
        data: JsonObject,
        *,
        merge: bool,
        if_match: str | None,
        ttl: int | None,
        if_absent: bool = False,
    ) -> tuple[ItemRecord, Event]:
        """`set_item`, and its event (`item_added` or `item_updated`)."""
        kind = kind_of_sid(sid)
        ref = self._item_ref(kind, index, key)
        check_data(data)
        await self.authorize(caller, sid, "write")
        self.limiter.check(sid)
        hook = await self._webhook(caller)
        item, event = await self._commit(
            self.storage.set_item(
                caller.service_sid,
                kind,
                sid,
                ref,
                data=data,
                merge=merge,
                if_match=if_match,
                ttl=ttl,
                origin=caller.origin,
                created_by=caller.identity,
                if_absent=if_absent,
                webhook=hook.on_change if hook else None,
            ),
            hook,
        )
        await self._publish(event)
        return item, event

    async def set_item_ttl(
        self, caller: Caller, sid: str, index: int | None, key: str | None, ttl: int
    ) -> ItemRecord:
        kind = kind_of_sid(sid)
        await self.authorize(caller, sid, "write")
        return await self._commit(
            self.storage.set_item_ttl(
                caller.service_sid, kind, sid, self._item_ref(kind, index, key), ttl
            )
        )

    async def remove_item(
        self, caller: Caller, sid: str, index: int | None, key: str | None, if_match: str | None
    ) -> int:
        """Remove an item; the id of its `item_removed` event."""
        kind = kind_of_sid(sid)
        await self.authorize(caller, sid, "write")
        self.limiter.check(sid)
        ref = self._item_ref(kind, index, key)
        hook = await self._webhook(caller)
        event = await self._commit(
            self.storage.remove_item(
                caller.service_sid,
                kind,
                sid,
                ref,
                if_match=if_match,
                origin=caller.origin,
                webhook=hook.on_change if hook else None,
            ),
            hook,
        )
        await self._publish(event)
        return event.event_id

    async def items_page(
        self,
        caller: Caller,
        sid: str,
        start: int | str | None,
        *,
        inclusive: bool,
        page_size: int,
        order: Literal["asc", "desc"],
    ) -> PageResult:
        kind = kind_of_sid(sid)
        if kind not in ("list", "map"):
            raise InvalidRequestError(f"a {kind} has no items")
        if start is not None and (kind == "list") != isinstance(start, int):
            raise InvalidRequestError("use from_index for lists and from_key for maps")
        if kind == "map" and isinstance(start, str):
            check_map_key(start)
        await self.authorize(caller, sid, "read")
        return await self.storage.items_page(
            caller.service_sid,
            kind,
            sid,
            start=start,
            inclusive=inclusive,
            page_size=page_size,
            order=order,
        )

    async def all_items(self, caller: Caller, sid: str) -> list[ItemRecord]:
        """Every item of a list or map, in order (a snapshot)."""
        items: list[ItemRecord] = []
        start: int | str | None = None
        inclusive = True
        while True:
            page = await self.items_page(
                caller, sid, start, inclusive=inclusive, page_size=100, order="asc"
            )
            items.extend(page.items)
            if not page.has_next or not page.items:
                return items
            last = page.items[-1]
            start, inclusive = (last.index if last.index is not None else last.key), False

    # ---- streams -----------------------------------------------------------------------
    async def publish_message(
        self, caller: Caller, sid: str, data: JsonObject
    ) -> StreamMessageResult:
        if kind_of_sid(sid) != "stream":
            raise InvalidRequestError(f"{sid} is not a stream")
        check_data(data, MAX_STREAM_MESSAGE_BYTES)
        self.limiter.check(sid)
        if (caller.service_sid, sid) not in self._live_streams:
            removals = self._streams_removed
            if await self.storage.get_object(caller.service_sid, "stream", sid) is None:
                raise StreamNotFoundError(f"stream {sid} not found")
            if removals == self._streams_removed:  # no removal raced with the read
                self._live_streams.add((caller.service_sid, sid))
        message: StreamMessageResult = {
            "sid": wire.new_sid(SID_PREFIXES["StreamMessage"]),
            "data": data,
        }
        frame = events.message_published(sid, message, caller.origin)
        await self.broker.publish(Event.of(caller.service_sid, frame))
        hook = await self._webhook(caller)
        if hook is not None:  # the message is not stored: its webhook is a write of its own
            delivery = hook.delivery("stream_message_published", "stream", sid, data=data)
            try:
                await self._commit(self.storage.add_webhook(delivery), hook)
            except Exception as exc:  # the message is out: report it as published
                log.warning("webhook of a stream message on %s not stored: %r", sid, exc)
        return message

    # ---- expiry ------------------------------------------------------------------------
    async def expire(self, batch: int = 100) -> int:
        """Sweep what has expired by now, then prune the event log, in batches of at most
        `batch` rows that each hold the storage briefly, yielding to the loop between them.
        Returns the number of removal events published."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        at = wire.now()
        total = 0
        while True:
            events = await self.storage.expire(at, batch)
            for event in events:
                await self._publish(event)
            total += len(events)
            if len(events) < batch:
                break
            await asyncio.sleep(0)
        pruned = batch
        while pruned >= batch:
            await asyncio.sleep(0)
            pruned = await self.storage.prune_events(at, batch)
        return total
