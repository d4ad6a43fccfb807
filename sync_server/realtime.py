"""The realtime WebSocket endpoint: one connection per client (spec/protocol.yaml).

Each connection authenticates with `hello`, then multiplexes requests (answered by
`reply` frames) and the events of the objects it subscribed to. A reply goes out from the
request's own task when nothing is queued; everything else goes through a bounded outbox,
drained by a task that exists only while frames are queued, so fan-out never waits on a
slow client and an idle connection holds no task. A client that falls too far behind is
disconnected (code 4008) and catches up from the event log when it reconnects. A malformed frame gets an error reply; it never
takes the connection, let alone the server, down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect
from sync_generated import protocol as p
from sync_generated.errors import (
    AccessError,
    ForbiddenError,
    FrameTooLargeError,
    InternalServerError,
    InvalidMapKeyError,
    InvalidRequestError,
    InvalidTtlError,
    InvalidUniqueNameError,
    ServiceNotFoundError,
    SyncError,
    TokenExpiredError,
    TooManySubscriptionsError,
)

from . import wire
from ._eager import start_eagerly
from .service import NOT_FOUND, Caller, SyncService, kind_of_sid
from .tokens import TokenClaims, verify_token

log = logging.getLogger("sync_server.realtime")

CLOSE_TOKEN_EXPIRED = 4401
CLOSE_SLOW_CONSUMER = 4008
CLOSE_PROTOCOL = 4400
CLOSE_INTERNAL_ERROR = 1011


@dataclass(slots=True)
class RealtimeSettings:
    account_sid: str
    api_keys: dict[str, str]
    max_frame_bytes: int = 256 * 1024
    max_subscriptions: int = 1000
    max_outbox_frames: int = 10_000
    hello_timeout: float = 10.0
    heartbeat_interval: float = 5.0
    replay_batch: int = 1000


@dataclass(slots=True)
class _Subscription:
    catching_up: bool = True
    buffered: list[tuple[int | None, str]] = field(default_factory=list)
    last: int = 0  # the last event id sent


NOT_FOUND_ERRORS = tuple(NOT_FOUND.values())

# Validation failures on these fields carry the field's own Twilio code.
_FIELD_ERRORS: dict[str, type[SyncError]] = {
    "ttl": InvalidTtlError,
    "key": InvalidMapKeyError,
    "from_key": InvalidMapKeyError,
    "object_id": InvalidUniqueNameError,
}


def _validation_error(exc: ValidationError) -> SyncError:
    first = exc.errors()[0]
    loc = [str(x) for x in first["loc"]]
    field_name = (
        None
        if first["type"] == "extra_forbidden"  # an unknown field is not a bad TTL / key / name
        else next((x for x in reversed(loc) if x in _FIELD_ERRORS), None)
    )
    where = ".".join(loc[1:]) or loc[0] if loc else "frame"
    message = f"invalid request: {where}: {first['msg']}"
    return (_FIELD_ERRORS[field_name] if field_name else InvalidRequestError)(message)


def _request_id(raw: str) -> int | None:
    """The id of a request that failed validation, if one can be read, for its error reply."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("id") if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Connection:
    """One client connection: auth state, subscriptions and the outbox."""

    __slots__ = (
        "__weakref__",
        "_broken",
        "_close_code",
        "_closed",
        "_drainer",
        "_expiry_timer",
        "_outbox",
        "_socket_closed",
        "_tasks",
        "_writing",
        "caller",
        "claims",
        "id",
        "service",
        "settings",
        "subscriptions",
        "ws",
    )

    def __init__(self, ws: WebSocket, service: SyncService, settings: RealtimeSettings) -> None:
        self.ws = ws
        self.service = service
        self.settings = settings
        self.id = uuid.uuid4().hex
        self.caller: Caller | None = None
        self.claims: TokenClaims | None = None
        self.subscriptions: dict[str, _Subscription] = {}
        self._outbox: deque[str] = deque()
        self._writing = False  # a send is in progress (the drain task or a reply's fast path)
        self._drainer: asyncio.Task[None] | None = None  # exists only while frames are queued
        self._closed = False
        self._broken = False  # the socket failed: nothing more can be sent
        self._socket_closed = False
        self._close_code: int | None = None
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- outgoing ----------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Send a frame, in order: written at once when nothing is queued, else queued."""
        if self._closed or self._broken:
            return
        if not self._writing and not self._outbox:
            self._write_now(text)
            return
        if len(self._outbox) >= self.settings.max_outbox_frames:
            log.warning(
                "connection %s is too slow (%d frames queued); closing it",
                self.id,
                len(self._outbox),
            )
            self.close(CLOSE_SLOW_CONSUMER)
            return
        self._outbox.append(text)
        self._kick()

    def _write_now(self, text: str) -> None:
        """Write at once when the transport takes the bytes (the usual case: no task switch,
        which is what makes fan-out cheap); if it is paused, a task finishes the write and
        then drains the outbox."""
        try:
            task = start_eagerly(self.ws.send_text(text))
        except Exception:
            self._fail()
            return
        if task is not None:
            self._writing = True
            self._drainer = task
            task.add_done_callback(self._resumed)

    def _resumed(self, task: asyncio.Task[None]) -> None:
        self._writing = False
        self._drainer = None
        if task.cancelled() or task.exception() is not None:
            self._fail()
        elif self._outbox or self._close_code is not None:
            self._kick()

    def _fail(self) -> None:
        """A write failed: drop the connection rather than go on with a gap in what this client
        received (it reconnects and catches up from the event log)."""
        if self._broken:
            return
        self._broken = True
        self._outbox.clear()
        self.close(CLOSE_INTERNAL_ERROR)  # the drain closes the socket once no write is running

    def _kick(self) -> None:
        """Start draining the outbox unless a send is already in progress (it kicks us after)."""
        if self._drainer is None and not self._writing:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def deliver(self, sid: str, event_id: int | None, frame: str) -> None:
        sub = self.subscriptions.get(sid)
        if sub is None:
            return
        if sub.catching_up:
            sub.buffered.append((event_id, frame))
        else:
            if event_id is not None:
                sub.last = event_id
            self.send(frame)

    def resync(self, sid: str) -> None:
        """Events of `sid` were lost on their way here: catch up from storage."""
        sub = self.subscriptions.get(sid)
        caller = self.caller
        if sub is not None and caller is not None and not sub.catching_up:
            sub.catching_up = True
            self.keep(asyncio.create_task(self._resync(caller, sid, sub)))

    async def _resync(self, caller: Caller, sid: str, sub: _Subscription) -> None:
        try:
            obj = await self.service.get_object(caller, sid)
            await self._catch_up(caller, sid, sub, sub.last, obj.last_event_id)
        except ForbiddenError as err:
            self._revoke(sid, err)
        except NOT_FOUND_ERRORS:
            # Removed or expired, and its `removed` event was missed: say so now.
            if self.subscriptions.get(sid) is sub:
                self.unsubscribe(sid)
                frame = wire.object_removed_frame(kind_of_sid(sid), sid, sub.last + 1, None, None)
                self.send(frame.decode())
        except Exception:
            # Storage unreachable: drop the connection; the client reconnects and catches up.
            log.exception("connection %s: could not resync %s", self.id, sid)
            self._fail()

    def reply_error(self, request_id: int | None, err: SyncError) -> None:
        body = {"code": err.code, "status": err.status, "message": err.message}
        try:
            frame = orjson.dumps({"type": "reply", "id": request_id, "error": body})
        except orjson.JSONEncodeError:  # an id no JSON encoder can write back
            frame = orjson.dumps({"type": "reply", "id": None, "error": body})
        self.send(frame.decode())

    def close(self, code: int) -> None:
        """Close after what is queued has been sent (already-queued frames say why)."""
        if self._close_code is None:
            self._close_code = code
        self._closed = True
        self._kick()

    async def _drain(self) -> None:
        """Send every queued frame in order, then close the socket if asked; then exit (an idle
        connection keeps no task)."""
        self._writing = True
        try:
            while self._outbox and not self._broken:
                await self.ws.send_text(self._outbox.popleft())
        except Exception:
            self._fail()
        finally:
            self._writing = False
            self._drainer = None
        if self._close_code is not None and not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(Exception):
                await self.ws.close(self._close_code)

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) for queued frames to go out, e.g. before the handler returns."""
        drainer = self._drainer
        if drainer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(drainer), timeout)

    # ---- incoming ----------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        request_id: int | None = None
        try:
            limit = self.settings.max_frame_bytes
            if len(raw) > limit or (len(raw) * 4 > limit and len(raw.encode()) > limit):
                request_id = _request_id(raw)
                raise FrameTooLargeError(f"frame of {len(raw.encode())} bytes exceeds {limit}")
            try:
                # Strict: no coercion ("7" or true is not an int), straight from the JSON text.
                request = p.REQUEST_ADAPTER.validate_json(raw, strict=True)
            except ValidationError as exc:
                request_id = _request_id(raw)
                if exc.errors()[0]["type"] == "json_invalid":
                    raise InvalidRequestError(
                        f"frame is not valid JSON: {exc.errors()[0]['msg']}"
                    ) from None
                raise _validation_error(exc) from None
            request_id = request.id
            result = await self.dispatch(request)
            self.send(orjson.dumps({"type": "reply", "id": request_id, "result": result}).decode())
        except SyncError as err:
            self.reply_error(request_id, err)
        except Exception:
            log.exception("request failed")
            self.reply_error(
                request_id,
                InternalServerError("internal error; the request may not have been applied"),
            )

    async def dispatch(self, req: Any) -> Any:
        if isinstance(req, p.HelloRequest):
            return await self.hello(req.token, req.client_id)
        caller = self.caller
        if caller is None:
            raise InvalidRequestError("the first request must be `hello` with an access token")
        s = self.service
        match req:
            case p.PingRequest():
                return {"time": wire.now()}
            case p.UpdateTokenRequest():
                return self.authenticate(req.token, caller.origin)
            case p.OpenRequest():
                obj = await s.open(
                    caller, req.kind.value, req.object_id, req.mode.value, req.ttl, req.data
                )
                return wire.object_snapshot(obj)
            case p.SubscribeRequest():
                return await self.subscribe(caller, req.sid, req.since)
            case p.UnsubscribeRequest():
                self.unsubscribe(req.sid)
                return {}
            case p.DocumentSetRequest():
                doc = await s.set_document(
                    caller, req.sid, req.data, merge=req.merge, if_match=req.if_match, ttl=req.ttl
                )
                return wire.object_snapshot(doc)
            case p.SetTtlRequest():
                return wire.object_snapshot(await s.set_ttl(caller, req.sid, req.ttl))
            case p.RemoveRequest():
                await s.remove(caller, req.sid)
                return {}
            case p.ListPushRequest():
                return wire.item_snapshot(await s.list_push(caller, req.sid, req.data, req.ttl))
            case p.ItemGetRequest():
                return wire.item_snapshot(await s.get_item(caller, req.sid, req.index, req.key))
            case p.ItemSetRequest():
                item = await s.set_item(
                    caller,
                    req.sid,
                    req.index,
                    req.key,
                    req.data,
                    merge=req.merge,
                    if_match=req.if_match,
                    if_absent=req.if_absent,
                    ttl=req.ttl,
                )
                return wire.item_snapshot(item)
            case p.ItemSetTtlRequest():
                return wire.item_snapshot(
                    await s.set_item_ttl(caller, req.sid, req.index, req.key, req.ttl)
                )
            case p.ItemRemoveRequest():
                await s.remove_item(caller, req.sid, req.index, req.key, req.if_match)
                return {}
            case p.ItemsPageRequest():
                start = req.from_index if req.from_index is not None else req.from_key
                page = await s.items_page(
                    caller,
                    req.sid,
                    start,
                    inclusive=req.inclusive,
                    page_size=req.page_size,
                    order=req.order.value,
                )
                return {
                    "items": [wire.item_snapshot(i) for i in page.items],
                    "has_next": page.has_next,
                    "has_prev": page.has_prev,
                }
            case p.StreamPublishRequest():
                return await s.publish_message(caller, req.sid, req.data)
        raise InvalidRequestError(f"unsupported request {type(req).__name__}")

    # ---- auth --------------------------------------------------------------------------
    def authenticate(self, token: str, origin: str | None) -> dict[str, Any]:
        claims = verify_token(
            token, keys=self.settings.api_keys, account_sid=self.settings.account_sid
        )
        if self.caller is not None and claims.service_sid != self.caller.service_sid:
            raise AccessError(
                "update_token: the new token is for another service", code=20106, status=401
            )
        self.claims = claims
        self._schedule_expiry(claims.expires_at)
        return {
            "connection_id": self.id,
            "identity": claims.identity,
            "account_sid": claims.account_sid,
            "service_sid": claims.service_sid,
            "token_expires_at": claims.expires_at,
            "heartbeat_interval": self.settings.heartbeat_interval,
        }

    async def hello(self, token: str, client_id: str) -> dict[str, Any]:
        if self.caller is not None:
            raise InvalidRequestError("hello was already sent on this connection")
        result = self.authenticate(token, client_id)
        assert self.claims is not None
        if await self.service.storage.get_service(self.claims.service_sid) is None:
            raise ServiceNotFoundError(
                f"service {self.claims.service_sid} (from the token's data_sync grant) not found"
            )
        self.caller = Caller(self.claims.service_sid, self.claims.identity, client_id)
        return result

    def _schedule_expiry(self, expires_at: float) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        loop = asyncio.get_running_loop()
        delay = max(expires_at - wire.now(), 0.0)
        self._expiry_timer = loop.call_later(delay, self._token_expired)

    def _token_expired(self) -> None:
        log.info("connection %s: token expired", self.id)
        err = TokenExpiredError("access token expired; connect again with a new token")
        self.send(
            orjson.dumps(
                {
                    "type": "reply",
                    "id": None,
                    "error": {"code": err.code, "status": err.status, "message": err.message},
                }
            ).decode()
        )
        self.close(CLOSE_TOKEN_EXPIRED)

    # ---- subscriptions -----------------------------------------------------------------
    async def subscribe(self, caller: Caller, sid: str, since: int | None) -> dict[str, Any]:
        obj = await self.service.get_object(caller, sid)
        if (
            sid not in self.subscriptions
            and len(self.subscriptions) >= self.settings.max_subscriptions
        ):
            raise TooManySubscriptionsError(
                f"at most {self.settings.max_subscriptions} subscriptions per connection"
            )
        start = obj.last_event_id if since is None else min(since, obj.last_event_id)
        sub = _Subscription()
        old = self.subscriptions.get(sid)
        self.subscriptions[sid] = sub
        try:
            if old is None:
                await self.service.broker.subscribe(caller.service_sid, sid, self)
            replayed = await self._catch_up(caller, sid, sub, start, obj.last_event_id)
        except BaseException:
            # Not subscribed after all (e.g. storage unreachable): nothing left half-open.
            if self.subscriptions.get(sid) is sub:
                self.unsubscribe(sid)
            raise
        return {"last_event_id": max(obj.last_event_id, sub.last), "replayed": replayed}

    async def _catch_up(
        self, caller: Caller, sid: str, sub: _Subscription, start: int, position: int
    ) -> int:
        """Send the stored events after `start` (or a snapshot when the log no longer reaches
        back), then what arrived meanwhile; the subscription then goes live. Returns the
        number of events replayed."""
        replayed = 0
        last_sent = start
        if kind_of_sid(sid) != "stream":
            while True:
                events = await self.service.storage.events_since(
                    caller.service_sid, sid, last_sent, self.settings.replay_batch
                )
                if events is None:
                    current = await self.service.get_object(caller, sid)
                    self.send(await self._snapshot_frame(caller, current))
                    last_sent = current.last_event_id
                    break
                for event in events:
                    self.send(event.frame.decode())
                    last_sent = event.event_id
                replayed += len(events)
                if len(events) < self.settings.replay_batch:
                    break
        for event_id, frame in sub.buffered:
            if event_id is None or event_id > last_sent:
                self.send(frame)
                last_sent = event_id or last_sent
        sub.buffered.clear()
        sub.catching_up = False
        sub.last = max(last_sent, position)
        return replayed

    async def _snapshot_frame(self, caller: Caller, obj: Any) -> str:
        items: list[dict[str, Any]] = []
        if obj.kind in ("list", "map"):
            start: int | str | None = None
            inclusive = True
            while True:
                page = await self.service.items_page(
                    caller, obj.sid, start, inclusive=inclusive, page_size=100, order="asc"
                )
                items.extend(wire.item_snapshot(i) for i in page.items)
                if not page.has_next or not page.items:
                    break
                last = page.items[-1]
                start, inclusive = (last.index if last.index is not None else last.key), False
        return wire.event_frame(
            obj.kind,
            obj.sid,
            "snapshot",
            obj.last_event_id,
            None,
            object=wire.object_snapshot(obj),
            items=items,
        ).decode()

    def access_changed(
        self, service_sid: str | None, object_sid: str | None, identity: str | None
    ) -> None:
        """A permission or the service's ACL changed: recheck read access of our subscriptions."""
        caller = self.caller
        if caller is None or (service_sid is not None and caller.service_sid != service_sid):
            return
        if identity is not None and identity != caller.identity:
            return
        sids = [object_sid] if object_sid is not None else list(self.subscriptions)
        for sid in sids:
            if sid in self.subscriptions:
                self.keep(asyncio.create_task(self._recheck(caller, sid)))

    def keep(self, task: asyncio.Task[None] | None) -> None:
        """Hold a task of this connection until it ends; `cleanup()` cancels what is left."""
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _recheck(self, caller: Caller, sid: str) -> None:
        try:
            await self.service.authorize(caller, sid, "read")
        except ForbiddenError as err:
            self._revoke(sid, err)

    def _revoke(self, sid: str, err: SyncError) -> None:
        self.unsubscribe(sid)
        body = {"code": err.code, "status": err.status, "message": err.message}
        self.send(
            wire.event_frame(kind_of_sid(sid), sid, "revoked", None, None, error=body).decode()
        )

    def unsubscribe(self, sid: str) -> None:
        if self.subscriptions.pop(sid, None) is not None:
            self.service.broker.unsubscribe(sid, self)

    def cleanup(self) -> None:
        self.service.acl_listeners.discard(self)
        self._closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        for sid in list(self.subscriptions):
            self.unsubscribe(sid)
        for task in list(self._tasks):
            task.cancel()


async def realtime_endpoint(
    ws: WebSocket, service: SyncService, settings: RealtimeSettings
) -> None:
    await ws.accept()
    conn = Connection(ws, service, settings)
    service.acl_listeners.add(conn)
    try:
        first = await asyncio.wait_for(ws.receive_text(), settings.hello_timeout)
        await conn.handle(first)
        if conn.caller is None:
            # A failed hello: say why (already queued), then close.
            conn.close(CLOSE_PROTOCOL)
            return
        while not conn._closed:
            raw = await ws.receive_text()
            # Requests run concurrently (a slow read must not stall the rest), but each
            # starts in arrival order, so writes on one object are applied in order.
            conn.keep(start_eagerly(conn.handle(raw)))
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        pass
    except KeyError:
        # A binary frame: receive_text() cannot read it.
        conn.reply_error(
            None, InvalidRequestError("binary frames are not supported; send JSON text")
        )
        conn.close(CLOSE_PROTOCOL)
    finally:
        conn.cleanup()
        await conn.flush(2)
