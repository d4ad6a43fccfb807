"""The native realtime WebSocket front door: one connection per client (spec/protocol.yaml).

Each connection authenticates with `hello`, then multiplexes requests (answered by `reply`
frames) and the events of the objects it subscribed to. The rules (token, subscriptions,
catch-up, ACL) live in the connection's `Session`; this module parses frames, calls the
session or `SyncService`, and writes frames. A request starts as soon as it is read (on our
WebSocket protocol, in the very call that read it while the reading loop waits: `take`), and
its reply goes out as soon as it is answered when nothing is queued; everything else goes
through a bounded outbox, drained by a task that exists only while frames are queued, so
fan-out never waits on a slow client and an idle connection holds no task. A client that
falls too far behind is disconnected (code 4008) and catches up from the event log when it
reconnects. A malformed frame gets an error reply; it never takes the connection, let alone
the server, down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from pydantic import ValidationError
from sync_generated import protocol as p
from sync_generated.errors import (
    FrameTooLargeError,
    InternalServerError,
    InvalidMapKeyError,
    InvalidRequestError,
    InvalidTtlError,
    InvalidUniqueNameError,
    ServiceNotFoundError,
    SyncError,
    TokenExpiredError,
)

from . import wire
from .config import Limits
from .events import Event
from .outbox import (
    CLOSE_SERVICE_RESTART,
    Outbox,
    Reading,
    Requests,
    connection_outbox,
    ready_for_request,
    start_request_now,
)
from .service import SyncService
from .session import Session
from .tokens import TokenClaims
from .ws import Disconnected, RealtimeSocket

log = logging.getLogger("sync_server.realtime")

CLOSE_TOKEN_EXPIRED = 4401
CLOSE_PROTOCOL = 4400
CLOSE_SERVICE_REMOVED = 4404  # the service was deleted; a new hello is refused (54050)

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
    """One client connection: its session, its outbox and the frames (the session's Outlet)."""

    __slots__ = ("limits", "outbox", "reading", "requests", "service", "session", "started", "ws")

    def __init__(self, ws: RealtimeSocket, service: SyncService) -> None:
        self.ws = ws
        self.service = service
        self.limits: Limits = service.limits
        self.session = Session(service, self)
        self.started = False  # `hello` succeeded
        self.outbox: Outbox[str] = connection_outbox(
            ws.send_text,
            self._close_socket,
            limits=self.limits,
            metrics=service.metrics,
            protocol="native",
            name=self.session.id,
            write_nowait=ws.send_text_nowait,
        )
        self.requests = Requests(self.limits.max_requests_in_flight)
        self.reading = Reading()

    async def _close_socket(self, code: int) -> None:
        await self.ws.close(code)

    # ---- the session's outlet ---------------------------------------------------------
    def send_event(self, event: Event) -> None:
        self.outbox.send(event.text)  # the native event frame is the event's canonical encoding

    def token_expired(self, error: TokenExpiredError) -> None:
        self.reply_error(None, error)
        self.outbox.close(CLOSE_TOKEN_EXPIRED)

    def broken(self) -> None:
        self.outbox.fail()

    def service_removed(self, error: ServiceNotFoundError) -> None:
        self.reply_error(None, error)
        self.outbox.close(CLOSE_SERVICE_REMOVED)

    def restart(self) -> None:
        self.reading.stop()  # the endpoint then answers what it took and closes (1012)

    def reply_error(self, request_id: int | None, err: SyncError) -> None:
        body = {"code": err.code, "status": err.status, "message": err.message}
        try:
            frame = orjson.dumps({"type": "reply", "id": request_id, "error": body})
        except orjson.JSONEncodeError:  # an id no JSON encoder can write back
            frame = orjson.dumps({"type": "reply", "id": None, "error": body})
        self.outbox.send(frame.decode())

    # ---- incoming ----------------------------------------------------------------------
    def take(self, raw: str | bytes) -> bool:
        """Start a request straight from the socket's read while the reading loop waits for
        one (`RealtimeSocket.on_message`), if the loop would start it now; else leave it to
        the loop (which also answers a binary frame)."""
        return isinstance(raw, str) and start_request_now(
            self.reading, self.outbox, self.requests, self.handle, raw
        )

    async def handle(self, raw: str) -> None:
        started = time.perf_counter()
        request_id: int | None = None
        type_ = "invalid"  # until the frame is read
        code: int | None = None
        try:
            limit = self.limits.max_frame_bytes
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
            request_id, type_ = request.id, request.type
            wire.refuse_non_finite(raw)
            result = await self.dispatch(request)
            self.outbox.send(
                orjson.dumps({"type": "reply", "id": request_id, "result": result}).decode()
            )
        except SyncError as err:
            code = err.code
            self.reply_error(request_id, err)
        except Exception:
            caller = self.session.caller
            log.exception(
                "request failed",
                extra={
                    "connection": self.session.id,
                    "identity": caller.identity if caller else None,
                    "request": type_,
                },
            )
            internal = InternalServerError("internal error; the request may not have been applied")
            code = internal.code
            self.reply_error(request_id, internal)
        self.service.metrics.observe_request(type_, code, time.perf_counter() - started)

    async def dispatch(self, req: Any) -> Any:
        session = self.session
        if isinstance(req, p.HelloRequest):
            if self.started:
                raise InvalidRequestError("hello was already sent on this connection")
            if req.protocol != p.PROTOCOL_VERSION:
                raise InvalidRequestError(
                    f"protocol version {req.protocol} is not supported; this server speaks "
                    f"version {p.PROTOCOL_VERSION}"
                )
            claims = await session.start(req.token, req.client_id)
            self.started = True
            return self._token_result(claims)
        caller = session.caller
        if caller is None:
            raise InvalidRequestError("the first request must be `hello` with an access token")
        s = self.service
        match req:
            case p.PingRequest():
                return {"time": wire.now()}
            case p.UpdateTokenRequest():
                return self._token_result(session.update_token(req.token))
            case p.OpenRequest():
                obj = await s.open(
                    caller, req.kind.value, req.object_id, req.mode.value, req.ttl, req.data
                )
                return wire.object_snapshot(obj)
            case p.SubscribeRequest():
                subscribed = await session.subscribe(req.sid, req.since)
                return {"last_event_id": subscribed.last_event_id, "replayed": subscribed.replayed}
            case p.UnsubscribeRequest():
                session.unsubscribe(req.sid)
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

    def _token_result(self, claims: TokenClaims) -> dict[str, Any]:
        return {
            "connection_id": self.session.id,
            "identity": claims.identity,
            "account_sid": claims.account_sid,
            "service_sid": claims.service_sid,
            "token_expires_at": claims.expires_at,
            "heartbeat_interval": self.limits.heartbeat_interval,
            "protocol": p.PROTOCOL_VERSION,
        }

    def cleanup(self) -> None:
        self.outbox.closed = True
        self.session.close()
        self.requests.cancel()
        self.service.metrics.connection_closed("native")


class _BinaryFrame(Exception):
    """A binary frame arrived: the native protocol is JSON text."""


def _text(message: str | bytes) -> str:
    if isinstance(message, bytes):
        raise _BinaryFrame
    return message


async def realtime_endpoint(ws: RealtimeSocket, service: SyncService) -> None:
    """Run one accepted connection to its end."""
    conn = Connection(ws, service)
    try:
        async with conn.reading:
            first = await asyncio.wait_for(ws.receive(), service.limits.hello_timeout)
            await conn.handle(_text(first))
            if not conn.started:
                # A failed hello: say why (already queued), then close.
                conn.outbox.close(CLOSE_PROTOCOL)
                return
            ws.on_message = conn.take
            while not conn.outbox.closed:
                await ready_for_request(conn.outbox, conn.requests)
                raw = _text(await ws.receive())
                # Requests run concurrently (a slow read must not stall the rest), but each
                # starts in arrival order, so writes on one object are applied in order.
                conn.requests.start(conn.handle(raw))
                ws.flush()  # its reply, if answered without waiting: not at the turn's end
        if conn.reading.stopped:  # the node is draining
            await conn.requests.finish()
            conn.outbox.close(CLOSE_SERVICE_RESTART)
    except (Disconnected, TimeoutError):
        pass
    except _BinaryFrame:
        conn.reply_error(
            None, InvalidRequestError("binary frames are not supported; send JSON text")
        )
        conn.outbox.close(CLOSE_PROTOCOL)
    finally:
        ws.on_message = None  # (it holds the connection)
        conn.cleanup()
        await conn.outbox.flush(2)
