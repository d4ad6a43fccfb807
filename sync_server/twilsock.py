"""The Twilsock front door (/v3/wsconnect): what Twilio's own JavaScript SDK speaks.

One connection per client, each with a core `Session`. The first frame must be `init` with
the access token; then the client's HTTP requests of the Sync client API arrive as `message`
frames (answered by `ClientApi`, spec/cds.yaml), and the session's events go out as
`notification` frames (message_type twilio.sync.event) in the shapes the SDK reads.

What the SDK relies on, and this module keeps:
- each reply to a write goes out before the events that write caused on this connection
  (the SDK tells its own changes, isLocal, by which arrives first), so events wait while a
  write is in flight here;
- a subscription replays every stored event after the client's last_event_id, then says
  `subscription_established` (replay_status completed); when history is gone it gets the
  current state instead (the document, or every item of a list or map);
- the SDK does not drop a repeated item removal or stream message, so this connection's own
  are not echoed back to it live;
- `client_update` token_about_to_expire about 3 minutes before the token expires, `close`
  410 when it has (the SDK emits tokenExpired and waits for updateToken).
Frames that cannot be read get a `close` (406) and the socket is closed; a readable request
that is wrong gets an error reply; nothing here can take the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import orjson
from sync_generated.cds import SubscriptionRequest
from sync_generated.errors import (
    FrameTooLargeError,
    InvalidRequestError,
    ServiceNotFoundError,
    SyncError,
    TokenExpiredError,
)
from sync_generated.twilsock import (
    AckHeader,
    CloseHeader,
    InitHeader,
    MessageHeader,
    TelemetryHeader,
    UpdateHeader,
)

from . import wire
from .cds import CarriedRequest, ClientApi, HttpReply, error_reply, item_url
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
from .service import SyncService, kind_of_sid
from .session import Session
from .tokens import TokenClaims
from .twilsock_codec import FrameError, HeaderError, client_header, decode, encode
from .ws import Disconnected, RealtimeSocket

log = logging.getLogger("sync_server.twilsock")

MESSAGE_TYPE = "twilio.sync.event"
ABOUT_TO_EXPIRE = 180.0  # seconds before expiry: the SDK's tokenAboutToExpire
CLOSE_PROTOCOL = 406  # Twilsock status: the client does not reconnect
CLOSE_TOKEN_EXPIRED = 410
CLOSE_OFFLOAD = 308  # Twilsock status: reconnect (the node is draining)
OK = {"code": 200, "status": "OK"}
_NOT_ECHOED = frozenset({"item_removed", "message_published"})


def _status(code: int, text: str, err: SyncError | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"code": code, "status": text}
    if err is not None:
        status.update(description=err.message, errorCode=err.code)
    return status


def _frame_id() -> str:
    return "TM" + uuid.uuid4().hex


# ---- events as the SDK reads them ------------------------------------------------------


@functools.lru_cache(maxsize=64)
def notifier(base: str) -> Callable[[Event], bytes | None]:
    """The encoder of event notifications for clients addressing the server as `base` (the
    item URLs in events depend on it); one per base, so `Event.encoded` caches one frame
    per event for all of them."""

    def encode_event(event: Event) -> bytes | None:
        payload = sdk_event(base, event)
        return None if payload is None else notification(payload)

    return encode_event


def notification(payload: dict[str, Any]) -> bytes:
    return encode(
        {
            "method": "notification",
            "id": _frame_id(),
            "message_type": MESSAGE_TYPE,
            "payload_type": "application/json",
        },
        orjson.dumps(payload),
    )


def sdk_event(base: str, event: Event) -> dict[str, Any] | None:
    """The notification payload of one core event (None: the SDK has no such event)."""
    r = event.record
    kind, name, sid = r["kind"], r["name"], r["sid"]
    sid_field = f"{kind}_sid"
    if name == "removed":
        return {"event_type": f"{kind}_removed", "event": {sid_field: sid, "id": r["event_id"]}}
    if name == "message_published":
        message = r["message"]
        body = {sid_field: sid, "message_sid": message["sid"], "message_data": message["data"]}
        return {"event_type": "stream_message_published", "event": body}
    if name == "updated":
        body = {
            "document_sid": sid,
            "id": r["event_id"],
            "document_revision": r["revision"],
            "document_data": r["data"],
            "date_created": r["date_updated"],
            "date_expires": r["date_expires"],
        }
        return {"event_type": "document_updated", "event": body}
    if name in ("item_added", "item_updated"):
        return {"event_type": f"{kind}_{name}", "event": _item_event(base, kind, sid, r["item"])}
    if name == "item_removed":
        ref = r.get("index", r.get("key"))
        body = {
            sid_field: sid,
            "id": r["event_id"],
            _ref_field(kind): ref,
            "item_data": r.get("previous_data"),
            "date_created": wire.iso(wire.now()),
            f"{kind}_revision": str(r["event_id"]),
        }
        return {"event_type": f"{kind}_item_removed", "event": body}
    return None  # snapshot and revoked are turned into other messages by the connection


def _ref_field(kind: str) -> str:
    return "item_index" if kind == "list" else "item_key"


def _item_event(base: str, kind: str, sid: str, item: dict[str, Any]) -> dict[str, Any]:
    ref = item["index"] if kind == "list" else item["key"]
    return {
        f"{kind}_sid": sid,
        "id": item["last_event_id"],
        _ref_field(kind): ref,
        "item_data": item["data"],
        "item_revision": item["revision"],
        "item_url": item_url(base, "list" if kind == "list" else "map", sid, ref),
        "date_created": item["date_updated"],
        "date_expires": item["date_expires"],
        f"{kind}_revision": str(item["last_event_id"]),
    }


def _subscription_event(
    event_type: str, correlation_id: int | None, target: dict[str, Any]
) -> bytes:
    return notification(
        {
            "event_type": event_type,
            "correlation_id": correlation_id,
            "event_protocol_version": 4,
            "events": [target],
        }
    )


# ---- the connection --------------------------------------------------------------------


class TwilsockConnection:
    """One Twilsock client (the session's Outlet); see the module docstring."""

    def __init__(self, ws: RealtimeSocket, service: SyncService, api: ClientApi) -> None:
        self.ws = ws
        self.service = service
        self.api = api
        self.limits = service.limits
        self.session = Session(service, self)
        scheme = "https" if ws.secure else "http"
        self.base = f"{scheme}://{ws.host}"  # replaced by the cdsUri host on requests
        self.outbox: Outbox[bytes] = connection_outbox(
            ws.send_bytes,
            ws.close,
            limits=self.limits,
            metrics=service.metrics,
            protocol="twilsock",
            name=self.session.id,
            write_nowait=ws.send_bytes_nowait,
        )
        self.started = False
        self._writes_in_flight = 0
        self._held: list[bytes] = []  # frames waiting for a write's reply (see send_frame)
        self._correlation: dict[str, int | None] = {}  # sid -> last subscription correlation id
        self._subscribing = asyncio.Lock()
        self._about_to_expire: asyncio.TimerHandle | None = None
        self.requests = Requests(self.limits.max_requests_in_flight)
        self.reading = Reading()

    # ---- outgoing ----------------------------------------------------------------------
    def send_frame(self, frame: bytes) -> None:
        """Send a notification; while a write of this connection is in flight, after its
        reply (so the SDK sees its own change as local)."""
        if self._writes_in_flight:
            self._held.append(frame)
        else:
            self.outbox.send(frame)

    def send_event(self, event: Event) -> None:
        name = event.record["name"]
        if name == "snapshot":
            for payload in self._snapshot_events(event):
                self.send_frame(notification(payload))
            return
        if name == "revoked":
            error = event.record["error"]
            self.send_frame(
                _subscription_event(
                    "subscription_failed",
                    self._correlation.get(event.sid),
                    {"object_sid": event.sid, "object_type": event.kind, "error": error},
                )
            )
            return
        origin = self.session.caller.origin if self.session.caller else None
        if name in _NOT_ECHOED and event.origin == origin and origin is not None:
            return
        frame = event.encoded(notifier(self.base))
        if frame is not None:
            self.send_frame(frame)

    def _snapshot_events(self, event: Event) -> list[dict[str, Any]]:
        """The current state, as the events that bring a client up to it (the SDK has no
        snapshot): the document as it is, or every item of a list or map."""
        r = event.record
        obj, kind = r["object"], r["kind"]
        if kind == "document":
            body = {
                "document_sid": event.sid,
                "id": obj["last_event_id"],
                "document_revision": obj["revision"],
                "document_data": obj["data"] or {},
                "date_created": obj["date_updated"],
                "date_expires": obj["date_expires"],
            }
            return [{"event_type": "document_updated", "event": body}]
        return [
            {
                "event_type": f"{kind}_item_updated",
                "event": _item_event(self.base, kind, event.sid, item),
            }
            for item in r["items"]
        ]

    def token_expired(self, error: TokenExpiredError) -> None:
        self.close(CLOSE_TOKEN_EXPIRED, "Token expired", error)

    def broken(self) -> None:
        self.outbox.fail()

    def service_removed(self, error: ServiceNotFoundError) -> None:
        # Any close code but 401/406/410/417 makes the SDK reconnect: its init is then
        # refused (401, errorCode 54050) and it settles in `denied`, with the reason.
        self.close(404, "Service not found", error)

    def restart(self) -> None:
        self.reading.stop()  # the endpoint then answers what it took and closes (308)

    def close(
        self, code: int, text: str, err: SyncError | None = None, *, ws_code: int = 1000
    ) -> None:
        """Say why in a Twilsock `close`, then close the socket (with `ws_code`)."""
        header = {"method": "close", "id": _frame_id(), "status": _status(code, text, err)}
        self.outbox.send(encode(header))
        self.outbox.close(ws_code)

    def _reply(self, frame_id: str, status: dict[str, Any], **fields: Any) -> None:
        self.outbox.send(encode({"method": "reply", "id": frame_id, "status": status, **fields}))

    # ---- incoming ----------------------------------------------------------------------
    def take(self, data: str | bytes) -> bool:
        """Start a request straight from the socket's read while the reading loop waits for
        one (`RealtimeSocket.on_message`), if the loop would start it now; else leave it to
        the loop (which also refuses a text frame)."""
        return isinstance(data, bytes) and start_request_now(
            self.reading, self.outbox, self.requests, self.handle, data
        )

    async def handle(self, data: bytes) -> None:
        try:
            frame = decode(data)
            header = client_header(frame)
        except FrameError as exc:
            log.warning("twilsock %s: unreadable frame: %s", self.session.id, exc)
            self.close(CLOSE_PROTOCOL, "Not Acceptable", InvalidRequestError(str(exc)))
            return
        except HeaderError as exc:
            if exc.frame_id is None or not self.started:
                self.close(CLOSE_PROTOCOL, "Not Acceptable", InvalidRequestError(str(exc)))
            else:
                self._reply(
                    exc.frame_id, _status(400, "Bad Request", InvalidRequestError(str(exc)))
                )
            return
        if not self.started and not isinstance(header, InitHeader):
            err = InvalidRequestError(f"the first frame must be init, not {header.method}")
            self.close(CLOSE_PROTOCOL, "Not Acceptable", err)
            return
        match header:
            case InitHeader():
                await self._init(header)
            case UpdateHeader():
                self._update(header)
            case MessageHeader():
                await self._message(header, frame.payload)
            case CloseHeader():
                self.outbox.close(1000)
            case AckHeader() | TelemetryHeader():
                pass

    async def _init(self, header: InitHeader) -> None:
        if self.started:
            err = InvalidRequestError("init was already sent on this connection")
            self._reply(header.id, _status(400, "Bad Request", err))
            return
        try:
            claims = await self.session.start(header.token, self.session.id)
        except SyncError as err:
            self._reply(header.id, _status(401, "UNAUTHORIZED", err))
            self.outbox.close(1000)
            return
        self.started = True
        self._watch_expiry(claims)
        self._reply(
            header.id,
            OK,
            continuation_token=header.continuation_token or _frame_id(),
            capabilities=["client_update"],
        )

    def _update(self, header: UpdateHeader) -> None:
        try:
            claims = self.session.update_token(header.token)
        except SyncError as err:
            self._reply(header.id, _status(401, "UNAUTHORIZED", err))
            return
        self._watch_expiry(claims)
        self._reply(header.id, OK)

    def _watch_expiry(self, claims: TokenClaims) -> None:
        if self._about_to_expire is not None:
            self._about_to_expire.cancel()
        delay = max(claims.expires_at - ABOUT_TO_EXPIRE - wire.now(), 0.0)
        self._about_to_expire = asyncio.get_running_loop().call_later(delay, self._warn_expiry)

    def _warn_expiry(self) -> None:
        header = {
            "method": "client_update",
            "id": _frame_id(),
            "client_update_type": "token_about_to_expire",
        }
        self.outbox.send(encode(header))

    async def _message(self, header: MessageHeader, payload: bytes) -> None:
        started = time.perf_counter()
        request = header.http_request
        caller = self.session.caller
        assert caller is not None
        if request.host:
            self.base = f"{self.base.split('://', 1)[0]}://{request.host}"
        write = request.method != "GET"
        if write:
            self._writes_in_flight += 1
        try:
            limit = self.limits.max_frame_bytes
            if len(payload) > limit:
                too_large = FrameTooLargeError(f"body of {len(payload)} bytes exceeds {limit}")
                reply = error_reply(too_large)
            else:
                # Query values arrive percent-encoded; a repeated parameter: the last one.
                params = {
                    name: unquote(value[-1] if isinstance(value, list) else value)
                    for name, value in (request.params or {}).items()
                    if value
                }
                # The SDK sends "data_sync" as the body of a DELETE: a body is ignored there.
                body = b"" if request.method in ("GET", "DELETE") else payload
                carried = CarriedRequest(
                    self.base, request.method, request.path, params, request.headers or {}, body
                )
                reply = await self.api.handle(caller, carried)
            self._send_reply(header.id, reply)
            code = (
                reply.body.get("code")
                if isinstance(reply.body, dict) and reply.status >= 400
                else None
            )
            self.service.metrics.observe_request(
                request_type(request.method.value, request.path),
                code,
                time.perf_counter() - started,
            )
        finally:
            if write:
                self._writes_in_flight -= 1
                if not self._writes_in_flight:
                    held, self._held = self._held, []
                    for frame in held:
                        self.outbox.send(frame)
        if reply.subscription is not None:
            self.requests.keep(asyncio.create_task(self._subscriptions(reply.subscription)))

    def _send_reply(self, frame_id: str, reply: HttpReply) -> None:
        body = b"" if reply.body is None else orjson.dumps(reply.body)
        self.outbox.send(
            encode(
                {
                    "method": "reply",
                    "id": frame_id,
                    "status": OK,
                    "http_status": {"code": reply.status, "status": _reason(reply.status)},
                    "http_headers": {"content-type": "application/json"},
                    "payload_type": "application/json",
                },
                body,
            )
        )

    async def _subscriptions(self, request: SubscriptionRequest) -> None:
        """Carry out a subscription request, in arrival order: per object, replay what the
        client missed, then `subscription_established`; or `_failed` / `_canceled`."""
        async with self._subscribing:
            for target in request.requests:
                sid, object_type = target.object_sid, target.object_type.value
                summary: dict[str, Any] = {"object_sid": sid, "object_type": object_type}
                if request.action.value == "cancel":
                    self.session.unsubscribe(sid)
                    self.send_frame(
                        _subscription_event(
                            "subscription_canceled", request.correlation_id, summary
                        )
                    )
                    continue
                self._correlation[sid] = request.correlation_id
                try:
                    if object_type == "live_query" or kind_of_sid(sid) != object_type:
                        raise InvalidRequestError(f"{sid!r:.80} is not a {object_type}")
                    since = target.last_event_id
                    subscribed = await self.session.subscribe(sid, since)
                except SyncError as err:
                    summary["error"] = {
                        "status": err.status,
                        "code": err.code,
                        "message": err.message,
                    }
                    self.send_frame(
                        _subscription_event("subscription_failed", request.correlation_id, summary)
                    )
                    continue
                summary.update(replay_status="completed", last_event_id=subscribed.last_event_id)
                if object_type == "stream":
                    summary["last_event_id"] = None
                self.send_frame(
                    _subscription_event("subscription_established", request.correlation_id, summary)
                )

    def cleanup(self) -> None:
        self.outbox.closed = True
        self.session.close()
        self.service.metrics.connection_closed("twilsock")
        if self._about_to_expire is not None:
            self._about_to_expire.cancel()
        self.requests.cancel()


def request_type(method: str, path: str) -> str:
    """The metrics label of a carried request: method and resource, from a bounded set."""
    parts = path.split("?", 1)[0].split("/")
    resource = parts[2] if len(parts) > 2 and parts[2] in _RESOURCES else "other"
    return f"twilsock {method} {resource}"


_RESOURCES = frozenset({"Documents", "Lists", "Maps", "Streams", "Subscriptions"})


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def twilsock_endpoint(ws: RealtimeSocket, service: SyncService, api: ClientApi) -> None:
    """Run one accepted connection to its end."""
    conn = TwilsockConnection(ws, service, api)
    try:
        async with conn.reading:
            while not conn.outbox.closed:
                if conn.started:
                    data = await ws.receive()
                else:
                    data = await asyncio.wait_for(ws.receive(), service.limits.hello_timeout)
                if not isinstance(data, bytes):
                    err = InvalidRequestError("Twilsock frames are binary WebSocket messages")
                    conn.close(CLOSE_PROTOCOL, "Not Acceptable", err)
                    break
                if not conn.started:
                    await conn.handle(data)  # init: wait for it before reading more
                    if conn.started:
                        ws.on_message = conn.take
                else:
                    # Requests run concurrently, each started in arrival order.
                    conn.requests.start(conn.handle(data))
                    ws.flush()
                    await ready_for_request(conn.outbox, conn.requests)
        if conn.reading.stopped:  # the node is draining: the SDK reconnects on an offload
            await conn.requests.finish()
            conn.close(CLOSE_OFFLOAD, "Service restart", ws_code=CLOSE_SERVICE_RESTART)
    except Disconnected:
        pass
    except TimeoutError:
        conn.close(CLOSE_PROTOCOL, "Not Acceptable", InvalidRequestError("no init in time"))
    finally:
        ws.on_message = None  # (it holds the connection)
        conn.cleanup()
        with contextlib.suppress(Exception):
            await conn.outbox.flush(2)
