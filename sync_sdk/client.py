"""The Sync client: one WebSocket, a connection state machine, objects by SID or name.

    async with Client(token, ClientOptions(url="http://127.0.0.1:4700")) as client:
        doc = await client.document("settings")
        await doc.set({"theme": "dark"})

The connection loop reconnects with exponential back-off and jitter, re-subscribes every
open object from its last event id (the server replays what was missed) and drops
duplicates, so handlers see every change of an object once and in order. With
`ClientOptions(urls=[...])` it rotates over equivalent server nodes: a lost or unreachable
node is left for the next one, and the same catch-up runs on whichever node it reaches.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar, overload

import orjson
from pydantic import BaseModel
from sync_generated.client import (
    ClientEvents,
    ClientOptions,
    ConnectionErrorEvent,
    ConnectionState,
    Handler,
    JsonObject,
    SubscriptionState,
    TokenAboutToExpireEvent,
    TokenExpiredEvent,
    Unsubscribe,
)
from sync_generated.errors import (
    AccessError,
    ClientClosedError,
    CommandTimeoutError,
    ConnectFailedError,
    ConnectionLostError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
    SyncError,
    TokenExpiredError,
)
from sync_generated.protocol_dicts import OpenRequest, Request
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import validation
from ._cache import CachedObject, ObjectCache, ObjectHandle, ObjectKind
from ._codec import DataCodec
from ._emitter import EventEmitter
from ._logging import TRACE, apply_log_level, logger
from ._protocol import UNNUMBERED, ClientProtocol, Reply
from ._state import ConnectionStateMachine
from ._version import __version__
from .objects import SyncDocument, SyncList, SyncMap, SyncStream, _Handle

M = TypeVar("M", bound=BaseModel)
H = TypeVar("H", bound=_Handle)
OpenMode = Literal["open_or_create", "open_existing", "create_new"]

_MAX_FRAME = 1 << 20
_CLOSE_TOKEN_EXPIRED = 4401  # the server closes a connection whose token expired


class _Dropped(Exception):
    """The connection dropped while a request was in flight."""


def _token_expiry(token: str) -> float | None:
    """`exp` of a JWT, read without verifying (the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None
    except (IndexError, ValueError, orjson.JSONDecodeError, AttributeError):
        return None


def _check_token(token: object) -> str:
    if not isinstance(token, str) or not token.strip():
        raise InvalidRequestError("token must be a non-empty string (a Twilio access token JWT)")
    if token.count(".") != 2:
        raise InvalidRequestError(
            f"token is not a JWT: expected 3 dot-separated segments, got {token.count('.') + 1}"
        )
    return token


def _check_urls(options: ClientOptions) -> tuple[str, ...]:
    """The server nodes to use: `options.urls` (deduplicated, in order; ClientOptions has
    checked each) if non-empty, else `(options.url,)`."""
    return tuple(dict.fromkeys(options.urls or ())) or (options.url,)


class _NodeRotation:
    """Round-robin over equivalent server nodes (base URLs).

    `current` is the node in use, or the next one to try. `failed()` records that it could
    not be reached or its connection was lost, moves on to the next node, and says whether
    a back-off is due: only once every node has failed in this round (since the last
    success or the last back-off), so each node is tried once promptly. With one node
    every failure ends a round, which is the plain reconnect back-off."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("at least one URL is needed")
        self.urls: tuple[str, ...] = tuple(urls)
        self._index = 0
        self._failures = 0
        self._tried: builtins.list[str] = []

    @property
    def current(self) -> str:
        return self.urls[self._index]

    @property
    def tried(self) -> tuple[str, ...]:
        """The distinct nodes attempted since the last success, in the order first tried."""
        return tuple(self._tried)

    def attempt(self) -> str:
        """The node to connect to now (recorded as tried)."""
        url = self.current
        if url not in self._tried:
            self._tried.append(url)
        return url

    def failed(self) -> bool:
        """The current node failed: move to the next. True if the round is over (back off)."""
        self._index = (self._index + 1) % len(self.urls)
        self._failures += 1
        if self._failures >= len(self.urls):
            self._failures = 0
            return True
        return False

    def succeeded(self) -> None:
        """Connected to the current node: a new round starts with the next failure."""
        self._failures = 0
        self._tried.clear()


class _HandleChannel:
    """The client as the handles it opens see it (objects.ObjectChannel)."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    async def request(self, request: Request, *, idempotent: bool = False) -> JsonObject:
        return await self._client._call(request, idempotent=idempotent)

    async def release(self, obj: CachedObject, handle: ObjectHandle) -> None:
        await self._client._release(obj, handle)


def _realtime_url(base: str) -> str:
    url = base.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(http):
            url = ws + url[len(http) :]
    return url if url.endswith("/v1/realtime") else url + "/v1/realtime"


class Client(ClientEvents):
    """A connection to a Sync service. Use `async with client:` (or `connect()` / `shutdown()`)."""

    version: ClassVar[str] = __version__

    def __init__(self, token: str, options: ClientOptions | None = None) -> None:
        self._token = _check_token(token)
        if options is not None and not isinstance(options, ClientOptions):
            raise InvalidRequestError("options must be a ClientOptions")
        self.options = options or ClientOptions()
        self._nodes = _NodeRotation(_check_urls(self.options))
        # One round over every node fits in connect_timeout, even if a node never answers.
        self._attempt_timeout = self.options.connect_timeout / len(self._nodes.urls)
        apply_log_level(logger, self.options.log_level)
        self.client_id = uuid.uuid4().hex
        self._emitter = EventEmitter("Client")
        self._machine = ConnectionStateMachine(self._on_state_changed)
        self._protocol = ClientProtocol()
        self._objects = ObjectCache(self._protocol, self.client_id)
        self._channel = _HandleChannel(self)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._token_changed = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._closing = False
        self._background: set[asyncio.Future[None]] = set()
        self._last_error: SyncError | None = None
        self.identity: str | None = None
        self.service_sid: str | None = None

    # ---- public surface --------------------------------------------------------------
    @property
    def connection_state(self) -> ConnectionState:
        """The current ConnectionState."""
        return self._machine.state

    @property
    def server_url(self) -> str:
        """Base URL of the server node in use: the one connected to, or, while connecting,
        the one being tried next. `ClientOptions.url` unless `ClientOptions.urls` is set."""
        return self._nodes.current

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def connect(self) -> None:
        """Connect and return once CONNECTED; raise the SyncError if denied or failed."""
        if self._closing:
            raise ClientClosedError("the client was shut down; create a new one")
        if self._run_task is None:
            self._run_task = asyncio.create_task(self._run(), name="sync_sdk.connection")
            self._timer_task = asyncio.create_task(
                self._token_timers(), name="sync_sdk.token_timers"
            )
        deadline = asyncio.get_running_loop().time() + self.options.connect_timeout
        while self._machine.state != ConnectionState.CONNECTED:
            if self._machine.state in (ConnectionState.DENIED, ConnectionState.ERROR):
                err = self._last_error or ConnectFailedError()
                await self.shutdown()
                raise err
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                err = ConnectFailedError(
                    f"could not connect to {self._describe_tried()}"
                    f" within {self.options.connect_timeout}s"
                    + (f": {self._last_error.message}" if self._last_error else "")
                )
                await self.shutdown()
                raise err
            self._state_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state_changed.wait(), remaining)

    def _describe_tried(self) -> str:
        tried = self._nodes.tried or self._nodes.urls[:1]
        return tried[0] if len(tried) == 1 else "any of " + ", ".join(tried)

    async def shutdown(self) -> None:
        """Close every object and the connection; ends in DISCONNECTED."""
        if self._closing:
            if self._run_task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._run_task
            return
        self._closing = True
        if self._machine.state != ConnectionState.DISCONNECTED:
            self._machine.move_to(ConnectionState.DISCONNECTING)
        self._objects.close_all()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in (self._run_task, self._timer_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._fail_pending(ClientClosedError("the client was shut down"))
        if self._machine.state == ConnectionState.DISCONNECTING:
            self._machine.move_to(ConnectionState.DISCONNECTED)

    async def update_token(self, token: str) -> None:
        """Replace the access token on the live connection (subscriptions are kept). A token
        the server refuses (e.g. for another identity: 20106) raises and changes nothing."""
        token = _check_token(token)
        state = self._machine.state
        if state == ConnectionState.CONNECTED:
            result = await self._call({"id": UNNUMBERED, "type": "update_token", "token": token})
            self._token = token
            self._token_changed.set()
            self._set_expiry(result)
            return
        self._token = token
        self._token_changed.set()
        if state == ConnectionState.DENIED:
            self._machine.move_to(ConnectionState.CONNECTING)

    @overload
    async def document(
        self,
        id: str | None = None,
        *,
        data_type: None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
        data: JsonObject | None = None,
    ) -> SyncDocument[JsonObject]: ...
    @overload
    async def document(
        self,
        id: str | None = None,
        *,
        data_type: type[M],
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
        data: M | None = None,
    ) -> SyncDocument[M]: ...
    async def document(
        self,
        id: str | None = None,
        *,
        data_type: type[BaseModel] | None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
        data: Any = None,
    ) -> SyncDocument[Any]:
        """Open a document by SID or unique name (None creates one with a random SID)."""
        codec: DataCodec[Any] = DataCodec(data_type)
        initial = None if data is None else validation.check_data(codec.encode(data))
        return await self._open("document", SyncDocument, id, mode, ttl, codec, initial)

    @overload
    async def stream(
        self,
        id: str | None = None,
        *,
        data_type: None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncStream[JsonObject]: ...
    @overload
    async def stream(
        self,
        id: str | None = None,
        *,
        data_type: type[M],
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncStream[M]: ...
    async def stream(
        self,
        id: str | None = None,
        *,
        data_type: type[BaseModel] | None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncStream[Any]:
        """Open a message stream by SID or unique name."""
        return await self._open("stream", SyncStream, id, mode, ttl, DataCodec(data_type), None)

    @overload
    async def map(
        self,
        id: str | None = None,
        *,
        data_type: None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncMap[JsonObject]: ...
    @overload
    async def map(
        self,
        id: str | None = None,
        *,
        data_type: type[M],
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncMap[M]: ...
    async def map(
        self,
        id: str | None = None,
        *,
        data_type: type[BaseModel] | None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncMap[Any]:
        """Open a map by SID or unique name."""
        return await self._open("map", SyncMap, id, mode, ttl, DataCodec(data_type), None)

    @overload
    async def list(
        self,
        id: str | None = None,
        *,
        data_type: None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncList[JsonObject]: ...
    @overload
    async def list(
        self,
        id: str | None = None,
        *,
        data_type: type[M],
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncList[M]: ...
    async def list(
        self,
        id: str | None = None,
        *,
        data_type: type[BaseModel] | None = None,
        mode: OpenMode = "open_or_create",
        ttl: int | None = None,
    ) -> SyncList[Any]:
        """Open a list by SID or unique name."""
        return await self._open("list", SyncList, id, mode, ttl, DataCodec(data_type), None)

    # ---- objects -----------------------------------------------------------------------
    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        return self._emitter.on(event, handler)

    async def _open(
        self,
        kind: ObjectKind,
        cls: type[H],
        object_id: str | None,
        mode: str,
        ttl: int | None,
        codec: DataCodec[Any],
        data: JsonObject | None,
    ) -> H:
        request: OpenRequest = {
            "id": UNNUMBERED,
            "type": "open",
            "kind": kind,
            "object_id": validation.check_unique_name(object_id),
            "mode": validation.check_mode(mode),
            "ttl": validation.check_ttl(ttl),
            "data": data,
        }
        snap = await self._call(request, idempotent=mode != "create_new")
        obj, created = self._objects.open(kind, snap)
        # A failed subscription (e.g. read access revoked, then granted again) is retried.
        resubscribe = created or obj.subscription_state is SubscriptionState.FAILED
        handle = cls(self._channel, obj, codec)
        obj.handles.append(handle)
        if resubscribe:
            try:
                await self._subscribe(obj)
            except BaseException:
                obj.handles.remove(handle)
                if created:
                    self._objects.drop(obj)
                raise
        return handle

    async def _subscribe(self, obj: CachedObject) -> None:
        """(Re-)subscribe from the last event seen: the server replays what was missed."""
        obj.set_subscription_state(SubscriptionState.PENDING)
        since = self._protocol.last_event_id(obj.sid)
        try:
            await self._call(
                {"id": UNNUMBERED, "type": "subscribe", "sid": obj.sid, "since": since},
                idempotent=True,
            )
        except NotFoundError:
            raise
        except SyncError:
            obj.set_subscription_state(SubscriptionState.FAILED)
            raise
        if self._objects.is_cached(obj):
            obj.set_subscription_state(SubscriptionState.ESTABLISHED)

    async def _release(self, obj: CachedObject, handle: ObjectHandle) -> None:
        if self._objects.release(obj, handle) and self._machine.state == ConnectionState.CONNECTED:
            with contextlib.suppress(SyncError):
                await self._call(
                    {"id": UNNUMBERED, "type": "unsubscribe", "sid": obj.sid}, idempotent=True
                )

    # ---- requests ----------------------------------------------------------------------
    async def _call(self, request: Request, *, idempotent: bool = False) -> JsonObject:
        """Send a request and await its reply, waiting for a connection if needed.

        Raises ConnectionLostError if never sent (not applied) and CommandTimeoutError if the
        outcome is unknown (sent, but no reply in time or the connection dropped)."""
        type_ = request["type"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.command_timeout
        throttled = 0
        while True:
            if self._closing:
                raise ClientClosedError("the client is shut down")
            ws = self._ws
            if ws is None or self._machine.state != ConnectionState.CONNECTED:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ConnectionLostError(
                        f"{type_}: not connected within {self.options.command_timeout}s "
                        f"(state {self._machine.state.value}); the call was not sent"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._connected.wait(), remaining)
                continue
            request_id, frame = self._protocol.encode_request(request)
            if len(frame) > _MAX_FRAME:
                raise InvalidRequestError(
                    f"{type_}: request of {len(frame)} bytes exceeds {_MAX_FRAME}"
                )
            future: asyncio.Future[Reply] = loop.create_future()
            self._pending[request_id] = future
            logger.log(TRACE, "-> %s", frame)
            try:
                await ws.send(frame, text=True)
                remaining = max(deadline - loop.time(), 0.0)
                reply = await asyncio.wait_for(future, remaining)
            except ConnectionClosed:
                if idempotent:
                    continue
                raise CommandTimeoutError(
                    f"{type_}: connection lost while sending; whether it was applied is unknown"
                ) from None
            except _Dropped:
                if idempotent:
                    continue
                raise CommandTimeoutError(
                    f"{type_}: connection lost before the reply; whether it was applied is unknown"
                ) from None
            except TimeoutError:
                raise CommandTimeoutError(
                    f"{type_}: no reply within {self.options.command_timeout}s; whether it was applied is unknown"
                ) from None
            finally:
                self._pending.pop(request_id, None)
            if reply.error is not None:
                if isinstance(reply.error, RateLimitExceededError):
                    # Not applied: back off and try again if the command timeout leaves room
                    # for the retry and its reply; otherwise report the throttling itself.
                    throttled += 1
                    delay = min(0.05 * 2**throttled, 1.0)
                    if loop.time() + delay * 2 < deadline:
                        await asyncio.sleep(delay)
                        continue
                raise reply.error
            return reply.result or {}

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _fail_pending(self, exc: BaseException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()

    # ---- connection loop ---------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            if self._machine.state == ConnectionState.DENIED:
                self._token_changed.clear()
                await self._token_changed.wait()
                continue
            if self._machine.state != ConnectionState.CONNECTING:
                self._machine.move_to(ConnectionState.CONNECTING)
            url = self._nodes.attempt()
            logger.info("connecting to %s", url)
            try:
                ws = await self._open_socket(url)
            except SyncError as err:
                if self._closing:
                    return
                self._report(err, terminal=False)
                attempt = await self._next_node(attempt)
                continue
            try:
                hello = await self._handshake(ws)
            except SyncError as err:
                await ws.close()
                self._report(err, terminal=False)
                if isinstance(err, AccessError) or err.status in (401, 403, 404):
                    # The token (or its service) is refused: wait for update_token().
                    if not self._closing:
                        self._machine.move_to(ConnectionState.DENIED)
                    continue
                attempt = await self._next_node(attempt)
                continue
            except (ConnectionClosed, TimeoutError, OSError) as err:
                await ws.close()
                self._report(
                    ConnectFailedError(
                        f"handshake with {url} failed: {str(err) or type(err).__name__}"
                    ),
                    terminal=False,
                )
                attempt = await self._next_node(attempt)
                continue
            attempt = 0
            self._nodes.succeeded()
            logger.info("connected to %s", url)
            self._set_expiry(hello)
            self.identity = str(hello.get("identity"))
            self.service_sid = str(hello.get("service_sid"))
            self._ws = ws
            self._last_error = None
            self._machine.move_to(ConnectionState.CONNECTED)
            self._connected.set()
            resubscribe = asyncio.create_task(self._resubscribe_all())
            try:
                await self._read_loop(ws)
            finally:
                resubscribe.cancel()
                self._connected.clear()
                self._ws = None
                self._fail_pending(_Dropped())
                for obj in self._objects:
                    obj.set_subscription_state(SubscriptionState.PENDING)
            if self._closing:
                return
            if ws.close_code == _CLOSE_TOKEN_EXPIRED:
                self._report(
                    TokenExpiredError("the access token expired; call update_token()"),
                    terminal=False,
                )
                self._machine.move_to(ConnectionState.DENIED)
                continue
            logger.warning("connection to %s lost; reconnecting", url)
            self._machine.move_to(ConnectionState.CONNECTING)
            attempt = await self._next_node(attempt)

    async def _next_node(self, attempt: int) -> int:
        """After a failed attempt or a lost connection: move on to the next node, at once
        while some node has not been tried in this round, else after the back-off for the
        next round. Returns the new round count (the back-off exponent)."""
        failed = self._nodes.current
        if self._nodes.failed():
            attempt += 1
            delay = self._backoff(attempt)
            logger.info("retrying %s in %.2fs", self._nodes.current, delay)
            await asyncio.sleep(delay)
        else:
            logger.info("%s failed; trying %s", failed, self._nodes.current)
        return attempt

    def _backoff(self, attempt: int) -> float:
        o = self.options
        delay = min(o.reconnect_max_delay, o.reconnect_initial_delay * 2 ** max(attempt - 1, 0))
        return float(delay * (1 - o.reconnect_jitter * random.random()))

    async def _open_socket(self, base_url: str) -> ClientConnection:
        url = _realtime_url(base_url)
        hb = self.options.heartbeat_interval
        try:
            return await connect(
                url,
                compression=None,
                max_size=_MAX_FRAME * 4,
                open_timeout=self._attempt_timeout,
                ping_interval=hb,
                ping_timeout=hb,
                close_timeout=min(1.0, hb),
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectFailedError(f"cannot connect to {url}: {exc}") from None

    async def _handshake(self, ws: ClientConnection) -> JsonObject:
        request_id, frame = self._protocol.encode_request(
            {
                "id": UNNUMBERED,
                "type": "hello",
                "token": self._token,
                "client_id": self.client_id,
                "protocol": 1,
            }
        )
        await ws.send(frame, text=True)
        async with asyncio.timeout(self._attempt_timeout):
            while True:
                message = self._protocol.decode(await ws.recv())
                if isinstance(message, Reply) and message.id == request_id:
                    if message.error is not None:
                        raise message.error
                    return message.result or {}

    async def _resubscribe_all(self) -> None:
        for obj in self._objects:
            if not self._objects.is_cached(obj):
                continue
            try:
                await self._subscribe(obj)
            except NotFoundError:
                # Removed while we were away: tell the handles, as a live `removed` would.
                self._objects.remove(obj)
            except SyncError as err:
                logger.error("re-subscribing %s failed: %s", obj.sid, err)

    async def _read_loop(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                logger.log(TRACE, "<- %s", raw)
                try:
                    message = self._protocol.decode(raw)
                except SyncError as err:
                    logger.error("ignoring bad frame from server: %s", err)
                    continue
                if isinstance(message, Reply):
                    future = self._pending.get(message.id)
                    if future is not None and not future.done():
                        future.set_result(message)
                    elif message.error is not None:
                        logger.warning("server error without a pending request: %s", message.error)
                else:
                    try:
                        behind = self._objects.receive(message)
                        if behind is not None:
                            self._spawn(self._subscribe(behind))
                    except Exception:
                        logger.exception(
                            "failed to apply event %s of %s", message.name, message.sid
                        )

    # ---- state, errors and token timers --------------------------------------------------
    def _on_state_changed(self, state: ConnectionState) -> None:
        logger.info("connection state: %s", state.value)
        self._state_changed.set()
        self._emitter.emit("connection_state_changed", state)

    def _report(self, err: SyncError, *, terminal: bool) -> None:
        self._last_error = err
        logger.error("connection error: %s", err)
        self._emitter.emit(
            "connection_error",
            ConnectionErrorEvent(
                terminal=terminal, message=err.message, code=err.code, status=err.status
            ),
        )

    def _set_expiry(self, result: JsonObject) -> None:
        expires = result.get("token_expires_at")
        self._token_expires_at = (
            float(expires) if isinstance(expires, (int, float)) else _token_expiry(self._token)
        )
        self._token_changed.set()

    _token_expires_at: float | None = None

    async def _token_timers(self) -> None:
        """Fire token_about_to_expire (and call token_provider) and token_expired on time."""
        warned_for: float | None = None
        while not self._closing:
            expires = self._token_expires_at or _token_expiry(self._token)
            self._token_changed.clear()
            if expires is None:
                await self._token_changed.wait()
                continue
            left = expires - time.time()
            margin = self.options.token_refresh_margin
            try:
                if left > margin or warned_for == expires:
                    wait = left - margin if warned_for != expires else left
                    if wait > 0:
                        async with asyncio.timeout(wait):
                            await self._token_changed.wait()
                        continue
                if warned_for != expires and left > 0:
                    warned_for = expires
                    self._emitter.emit(
                        "token_about_to_expire", TokenAboutToExpireEvent(expires_in=max(left, 0.0))
                    )
                    await self._refresh_token()
                    continue
                if left <= 0:
                    self._emitter.emit("token_expired", TokenExpiredEvent())
                    if self.options.token_provider is not None:
                        await self._refresh_token()
                    self._token_changed.clear()
                    await self._token_changed.wait()
            except TimeoutError:
                continue

    async def _refresh_token(self) -> None:
        provider = self.options.token_provider
        if provider is None:
            return
        try:
            await self.update_token(await provider())
        except Exception as exc:
            logger.error("token_provider failed: %s", exc)
