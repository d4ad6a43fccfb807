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
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, TypeVar, cast, overload

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
    ServiceNotFoundError,
    SyncError,
    TokenExpiredError,
)
from sync_generated.protocol import PROTOCOL_VERSION
from sync_generated.protocol_dicts import OpenRequest, Request
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import validation
from ._cache import CachedObject, ObjectCache, ObjectHandle, ObjectKind
from ._codec import DataCodec
from ._emitter import EventEmitter
from ._logging import TRACE, client_logger, redact
from ._protocol import UNNUMBERED, ClientProtocol, Reply
from ._state import ConnectionStateMachine
from ._tls import ssl_context
from ._transport import Connection
from ._version import __version__
from .objects import SyncDocument, SyncList, SyncMap, SyncObject, SyncStream

M = TypeVar("M", bound=BaseModel)
H = TypeVar("H", bound=SyncObject)
OpenMode = Literal["open_or_create", "open_existing", "create_new"]

_MAX_FRAME = 1 << 20
_CLOSE_TOKEN_EXPIRED = 4401  # the server closes a connection whose token expired
_CLOSE_SERVICE_REMOVED = 4404  # the server closes a connection whose service was deleted
# A node that shuts down answers every request it read, then closes with 1012: a request
# without a reply was not applied, and goes again on the next node, which is tried at once.
_CLOSE_SERVICE_RESTART = 1012
_HELLO_RESULT_FIELDS = ("connection_id", "identity", "service_sid")


def _is_terminal(err: SyncError) -> bool:
    """A failure no retry and no new token of the same kind can fix: the state becomes ERROR.

    - the token's service does not exist (54050), or was removed while connected;
    - the server does not speak this client's protocol: it refused the `hello` frame as
      malformed (51000), or answered with frames this client cannot parse."""
    return isinstance(err, (ServiceNotFoundError, InvalidRequestError))


def _is_denial(err: SyncError) -> bool:
    """The token was refused (bad signature, expired, wrong account, grants, ACL): the state
    becomes DENIED until update_token()."""
    return isinstance(err, AccessError) or err.status in (401, 403)


class _Dropped(Exception):
    """The connection dropped while a request was in flight."""


class _NotApplied(_Dropped):
    """The node closed for a restart (1012) before reading the request: send it again."""


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

    def move_on(self) -> None:
        """Leave the current node, which is shutting down, for the next, without counting a
        failure: it is tried at once."""
        self._index = (self._index + 1) % len(self.urls)

    def succeeded(self) -> None:
        """Connected to the current node: a new round starts with the next failure."""
        self._failures = 0
        self._tried.clear()


class _Caller(Protocol):
    def __call__(
        self, request: Request, *, idempotent: bool = False
    ) -> Coroutine[Any, Any, JsonObject]: ...


class _HandleChannel:
    """The client as the handles it opens see it (objects.ObjectChannel): its request and
    release methods and its logger."""

    __slots__ = ("_call", "_release", "log")

    def __init__(
        self,
        call: _Caller,
        release: Callable[[CachedObject, ObjectHandle], Awaitable[None]],
        log: logging.Logger,
    ) -> None:
        self._call = call
        self._release = release
        self.log = log

    def request(
        self, request: Request, *, idempotent: bool = False
    ) -> Coroutine[Any, Any, JsonObject]:
        # The client's own coroutine, not one wrapping it: one frame less on every call.
        return self._call(request, idempotent=idempotent)

    async def release(self, obj: CachedObject, handle: ObjectHandle) -> None:
        await self._release(obj, handle)


def _realtime_url(base: str) -> str:
    url = base.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(http):
            url = ws + url[len(http) :]
    return url if url.endswith("/v1/realtime") else url + "/v1/realtime"


class Client(ClientEvents):
    """A connection to a Sync service. Use `async with client:` (or `connect()` / `shutdown()`)."""

    version: ClassVar[str] = __version__
    options: ClientOptions
    """The options this client was created with."""
    client_id: str
    """A random id of this client, sent to the server with every connection."""
    identity: str | None
    """The identity of the token, once connected."""
    service_sid: str | None
    """The SID of the token's Sync service, once connected."""

    def __init__(self, token: str, options: ClientOptions | None = None) -> None:
        self._token = _check_token(token)
        # Checked at run time too: callers may be untyped.
        if options is not None and not isinstance(cast(object, options), ClientOptions):
            raise InvalidRequestError("options must be a ClientOptions")
        self.options = options or ClientOptions()
        self._nodes = _NodeRotation(_check_urls(self.options))
        # One round over every node fits in connect_timeout, even if a node never answers.
        self._attempt_timeout = self.options.connect_timeout / len(self._nodes.urls)
        # This client's own logger, at its own level (see _logging).
        self._log = client_logger(self.options.log_level)
        self.client_id = uuid.uuid4().hex
        self._emitter = EventEmitter("Client", self._log)
        self._machine = ConnectionStateMachine(self._on_state_changed)
        self._protocol = ClientProtocol()
        self._objects = ObjectCache(self._protocol, self.client_id, self._log)
        self._channel = _HandleChannel(self._call, self._release, self._log)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        # Each pending reply's deadline, and one timer for all of them (at the earliest).
        self._deadlines: dict[asyncio.Future[Reply], float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf
        self._ws: Connection | None = None
        self._connected = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._token_updated = asyncio.Event()  # update_token() while not connected: retry
        self._expiry_changed = asyncio.Event()  # the token timers re-read the expiry
        self._token_expires_at: float | None = _token_expiry(self._token)
        self._run_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._closing = False
        self._background: set[asyncio.Future[None]] = set()
        self._last_error: SyncError | None = None
        self.identity = None
        self.service_sid = None

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

    @property
    def logger(self) -> logging.Logger:
        """The logger this client writes to: `sync_sdk.client.<n>`, at `options.log_level`."""
        return self._log

    async def __aenter__(self) -> Client:
        """Connect. If that fails (even with a denied token) the client is shut down before
        the error propagates: a failed `async with` leaves nothing running. To recover from
        DENIED with update_token(), use connect() / shutdown() instead."""
        try:
            await self.connect()
        except BaseException:
            await self.shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def connect(self) -> None:
        """Connect and return once CONNECTED.

        - The token is refused (bad signature, expired, …): raises that error (e.g.
          TokenSignatureError, 20107) and the client stays in DENIED; `update_token()` with a
          good token reconnects, and connect() called again waits for that connection.
          With `token_provider`, the provider is asked once for a new token first.
        - A permanent failure (the token's service does not exist, the server speaks another
          protocol): raises it and the client stays in ERROR (every later call raises
          ClientClosedError naming it); create a new client.
        - Not connected within `connect_timeout`: raises ConnectFailedError and the client
          is shut down (DISCONNECTED).
        - After shutdown(): raises ClientClosedError."""
        self._check_open()
        if self._run_task is None:
            self._run_task = asyncio.create_task(self._run(), name="sync_sdk.connection")
            self._timer_task = asyncio.create_task(
                self._token_timers(), name="sync_sdk.token_timers"
            )
        deadline = asyncio.get_running_loop().time() + self.options.connect_timeout
        while self._machine.state != ConnectionState.CONNECTED:
            if self._machine.state in (ConnectionState.DENIED, ConnectionState.ERROR):
                raise self._last_error or ConnectFailedError()
            if self._closing:
                raise ClientClosedError("the client was shut down while connecting")
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

    def _check_open(self) -> None:
        """Raise ClientClosedError if the client was shut down or failed permanently."""
        if self._closing:
            raise ClientClosedError("the client was shut down; create a new one")
        if self._machine.state is ConnectionState.ERROR:
            cause = self._last_error
            raise ClientClosedError(
                "the client failed permanently"
                + (f" ({cause.code}: {cause.message})" if cause else "")
                + "; create a new one"
            )

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
        self._connected.set()  # wake calls waiting for a connection: they raise
        self._token_updated.set()
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
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
            self._sweep_at = math.inf
        if self._machine.state == ConnectionState.DISCONNECTING:
            self._machine.move_to(ConnectionState.DISCONNECTED)

    async def update_token(self, token: str) -> None:
        """Replace the access token.

        Connected: the server checks it on the live connection (subscriptions are kept); a
        token it refuses (e.g. for another identity: 20106) raises and changes nothing.
        DENIED: the client reconnects with it (CONNECTING, then CONNECTED or DENIED again);
        this returns at once, and connect() waits for the outcome. Connecting or not yet
        connected: the next attempt uses it. After shutdown() or in ERROR: raises
        ClientClosedError."""
        token = _check_token(token)
        self._check_open()
        state = self._machine.state
        if state == ConnectionState.CONNECTED:
            result = await self._call({"id": UNNUMBERED, "type": "update_token", "token": token})
            self._token = token
            self._set_expiry(result)
            self._log.debug("token updated on the live connection")
            return
        self._token = token
        self._token_expires_at = _token_expiry(token)
        self._expiry_changed.set()
        self._log.debug("token updated while %s", state.value)
        if state == ConnectionState.DENIED:
            self._machine.move_to(ConnectionState.CONNECTING)
        self._token_updated.set()

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
        if self._closing:
            raise ClientClosedError("the client was shut down; its events will not fire")
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
        self._check_open()
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
        handle = cls(self._channel, obj, codec)  # registers itself: the last of obj.handles
        registration = obj.handles[-1]
        if resubscribe:
            try:
                await self._subscribe(obj)
            except BaseException:
                obj.handles.remove(registration)
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.command_timeout
        throttled = 0
        log = self._log
        while True:
            ws = self._ws
            # CONNECTED with a socket is the common case (and rules out ERROR); anything else
            # takes the checks and waits of the slow path.
            if ws is None or self._closing or self._machine.state is not ConnectionState.CONNECTED:
                self._check_open()
                if ws is None or self._machine.state is not ConnectionState.CONNECTED:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise ConnectionLostError(
                            f"{request['type']}: not connected within "
                            f"{self.options.command_timeout}s "
                            f"(state {self._machine.state.value}); the call was not sent"
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._connected.wait(), remaining)
                    continue
            request_id, frame = self._protocol.encode_request(request)
            if len(frame) > _MAX_FRAME:
                raise InvalidRequestError(
                    f"{request['type']}: request of {len(frame)} bytes exceeds {_MAX_FRAME}"
                )
            future: asyncio.Future[Reply] = loop.create_future()
            self._pending[request_id] = future
            # At the deadline the future fails with TimeoutError. One timer serves every
            # pending call: a later call (a later deadline) needs none of its own.
            self._deadlines[future] = deadline
            if deadline < self._sweep_at:
                self._arm_sweeper(loop, deadline)
            verbose = log.isEnabledFor(logging.DEBUG)
            if verbose:
                if log.isEnabledFor(TRACE):
                    log.log(TRACE, "-> %s", redact(frame))
                log.debug("request #%d %s", request_id, request["type"])
            try:
                try:
                    if not ws.send_text_now(frame):
                        await ws.send(frame, text=True)
                except ConnectionClosed:
                    pass  # the outcome still arrives in `future`: the reply, when it was
                    # read before the close, else _Dropped or _NotApplied
                reply = await future
            except _Dropped as dropped:
                if idempotent or isinstance(dropped, _NotApplied):
                    continue
                raise CommandTimeoutError(
                    f"{request['type']}: connection lost before the reply; whether it was applied is unknown"
                ) from None
            except TimeoutError:
                raise CommandTimeoutError(
                    f"{request['type']}: no reply within {self.options.command_timeout}s; whether it was applied is unknown"
                ) from None
            finally:
                self._deadlines.pop(future, None)
                self._pending.pop(request_id, None)
            error = reply.error
            if verbose:
                log.debug(
                    "reply #%d %s: %s",
                    request_id,
                    request["type"],
                    "ok" if error is None else f"error {error.code}",
                )
            if error is None:
                return reply.result or {}
            if isinstance(error, RateLimitExceededError):
                # Not applied: back off and try again if the command timeout leaves room
                # for the retry and its reply; otherwise report the throttling itself.
                throttled += 1
                delay = min(0.05 * 2**throttled, 1.0)
                if loop.time() + delay * 2 < deadline:
                    await asyncio.sleep(delay)
                    continue
            raise error

    def _arm_sweeper(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._sweep_at = at
        self._sweeper = loop.call_at(at, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the calls whose deadline passed; re-arm for the earliest one left."""
        self._sweeper = None
        self._sweep_at = math.inf
        now = loop.time()
        earliest = math.inf
        for future, at in list(self._deadlines.items()):
            if at <= now:
                if not future.done():
                    future.set_exception(TimeoutError())
            elif at < earliest:
                earliest = at
        if earliest != math.inf:
            self._arm_sweeper(loop, earliest)

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
        provider_asked = False  # the token_provider gets one chance per denial
        while not self._closing:
            if self._machine.state == ConnectionState.DENIED:
                await self._token_updated.wait()  # update_token() (or shutdown())
                provider_asked = False
                if not self._closing and self._machine.state == ConnectionState.DENIED:
                    self._machine.move_to(ConnectionState.CONNECTING)
                continue
            if self._machine.state != ConnectionState.CONNECTING:
                self._machine.move_to(ConnectionState.CONNECTING)
            url = self._nodes.attempt()
            self._log.info("connecting to %s", url)
            try:
                ws = await self._open_socket(url)
            except SyncError as err:
                if self._closing:
                    return
                self._report(err, terminal=False)
                attempt = await self._next_node(attempt)
                continue
            self._token_updated.clear()  # a token supplied from here on gets its own attempt
            try:
                hello = await self._handshake(ws)
            except SyncError as err:
                await ws.close()
                if self._closing:
                    return
                if _is_terminal(err):
                    self._fail(err)
                    return
                if not _is_denial(err):
                    self._report(err, terminal=False)
                    attempt = await self._next_node(attempt)
                    continue
                self._report(err, terminal=False, level=logging.WARNING)
                if self._token_updated.is_set():
                    continue  # a new token arrived during the attempt: try it
                if not provider_asked:
                    provider_asked = True
                    if await self._token_from_provider():
                        continue
                self._machine.move_to(ConnectionState.DENIED)
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
            provider_asked = False
            self._nodes.succeeded()
            self._log.info("connected to %s", url)
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
                restarted = ws.close_code == _CLOSE_SERVICE_RESTART
                self._fail_pending(_NotApplied() if restarted else _Dropped())
                for obj in self._objects:
                    obj.set_subscription_state(SubscriptionState.PENDING)
            if self._closing:
                return
            if ws.close_code == _CLOSE_SERVICE_REMOVED:
                self._fail(ServiceNotFoundError("the service of this client's token was removed"))
                return
            if ws.close_code == _CLOSE_TOKEN_EXPIRED:
                self._report(
                    TokenExpiredError("the access token expired; call update_token()"),
                    terminal=False,
                    level=logging.WARNING,
                )
                if not provider_asked:
                    provider_asked = True
                    if await self._token_from_provider():
                        continue
                self._machine.move_to(ConnectionState.DENIED)
                continue
            self._machine.move_to(ConnectionState.CONNECTING)
            if ws.close_code == _CLOSE_SERVICE_RESTART:
                self._log.info("%s is shutting down; moving on at once", url)
                self._nodes.move_on()
                continue
            self._log.warning("connection to %s lost; reconnecting", url)
            attempt = await self._next_node(attempt)

    async def _next_node(self, attempt: int) -> int:
        """After a failed attempt or a lost connection: move on to the next node, at once
        while some node has not been tried in this round, else after the back-off for the
        next round. Returns the new round count (the back-off exponent)."""
        failed = self._nodes.current
        if self._nodes.failed():
            attempt += 1
            delay = self._backoff(attempt)
            self._log.warning("every node failed; retrying %s in %.2fs", self._nodes.current, delay)
            await asyncio.sleep(delay)
        else:
            self._log.info("%s failed; trying %s", failed, self._nodes.current)
        return attempt

    def _backoff(self, attempt: int) -> float:
        o = self.options
        delay = min(o.reconnect_max_delay, o.reconnect_initial_delay * 2 ** max(attempt - 1, 0))
        return float(delay * (1 - o.reconnect_jitter * random.random()))

    async def _open_socket(self, base_url: str) -> Connection:
        url = _realtime_url(base_url)
        hb = self.options.heartbeat_interval
        try:
            tls = ssl_context(self.options.verify) if url.startswith("wss://") else None
            ws = await connect(
                url,
                create_connection=Connection,
                ssl=tls,
                compression=None,
                max_size=_MAX_FRAME * 4,
                open_timeout=self._attempt_timeout,
                ping_interval=hb,
                ping_timeout=hb,
                close_timeout=min(1.0, hb),
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectFailedError(f"cannot connect to {url}: {exc}") from None
        assert isinstance(ws, Connection)
        return ws

    async def _handshake(self, ws: ClientConnection) -> JsonObject:
        request_id, frame = self._protocol.encode_request(
            {
                "id": UNNUMBERED,
                "type": "hello",
                "token": self._token,
                "client_id": self.client_id,
                "protocol": PROTOCOL_VERSION,
            }
        )
        if self._log.isEnabledFor(TRACE):
            self._log.log(TRACE, "-> %s", redact(frame))
        await ws.send(frame, text=True)
        async with asyncio.timeout(self._attempt_timeout):
            while True:
                raw = await ws.recv()
                if self._log.isEnabledFor(TRACE):
                    self._log.log(TRACE, "<- %s", redact(raw))
                message = self._protocol.decode(raw)
                if isinstance(message, Reply) and message.id == request_id:
                    if message.error is not None:
                        raise message.error
                    result = message.result or {}
                    missing = [f for f in _HELLO_RESULT_FIELDS if f not in result]
                    if missing:
                        raise InvalidRequestError(
                            "the server's hello reply lacks "
                            + ", ".join(missing)
                            + f": it does not speak protocol {PROTOCOL_VERSION}"
                        )
                    spoken = result.get("protocol", PROTOCOL_VERSION)  # older servers omit it
                    if spoken != PROTOCOL_VERSION:
                        raise InvalidRequestError(
                            f"the server speaks protocol {spoken!r:.20}, this client "
                            f"{PROTOCOL_VERSION}"
                        )
                    return result

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
                self._log.error("re-subscribing %s failed: %s", obj.sid, err)

    async def _read_loop(self, ws: Connection) -> None:
        """Take the server's messages until the connection closes: most as they are parsed
        (`Connection.on_text`), the rest from websockets' queue, in the order they came."""
        ws.on_text = self._on_message
        try:
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    self._on_message(raw)
        finally:
            ws.on_text = None

    def _on_message(self, raw: str | bytes) -> None:
        """One server message: a reply resolves its call, an event goes to its object."""
        log = self._log
        if log.isEnabledFor(TRACE):
            log.log(TRACE, "<- %s", redact(raw))
        try:
            message = self._protocol.decode(raw)
        except SyncError as err:
            log.error("ignoring bad frame from server: %s", err)
            return
        if type(message) is Reply:
            future = self._pending.get(message.id)
            if future is not None and not future.done():
                future.set_result(message)
            elif message.error is not None:
                log.warning("server error without a pending request: %s", message.error)
            return
        assert not isinstance(message, Reply)
        try:
            behind = self._objects.receive(message)
            if behind is not None:
                self._spawn(self._subscribe(behind))
        except Exception:
            log.exception("failed to apply event %s of %s", message.name, message.sid)

    # ---- state, errors and token timers --------------------------------------------------
    def _on_state_changed(self, state: ConnectionState) -> None:
        self._log.info("connection state: %s", state.value)
        if state is ConnectionState.ERROR:
            self._connected.set()  # wake calls waiting for a connection: they raise
            self._expiry_changed.set()  # the token timers stop
        self._state_changed.set()
        self._emitter.emit("connection_state_changed", state)

    def _report(self, err: SyncError, *, terminal: bool, level: int = logging.INFO) -> None:
        """Record a connection failure and emit connection_error. A failure the client
        recovers from by itself is logged at `level` (info), a denial at warning, a terminal
        one at error."""
        self._last_error = err
        self._log.log(
            logging.ERROR if terminal else level,
            "connection error%s: %s",
            " (terminal)" if terminal else "",
            err,
        )
        self._emitter.emit(
            "connection_error",
            ConnectionErrorEvent(
                terminal=terminal, message=err.message, code=err.code, status=err.status
            ),
        )

    def _fail(self, err: SyncError) -> None:
        """A permanent failure: report it as terminal and stay in ERROR."""
        self._report(err, terminal=True)
        self._machine.move_to(ConnectionState.ERROR)

    def _set_expiry(self, result: JsonObject) -> None:
        expires = result.get("token_expires_at")
        self._token_expires_at = (
            float(expires) if isinstance(expires, (int, float)) else _token_expiry(self._token)
        )
        self._log.debug("token expires at %s", self._token_expires_at)
        self._expiry_changed.set()

    async def _token_timers(self) -> None:
        """Fire token_about_to_expire (and call token_provider) and token_expired on time,
        once per token: a new token (update_token, token_provider) re-arms both."""
        warned_for: float | None = None
        expired_for: float | None = None
        while not self._closing and self._machine.state is not ConnectionState.ERROR:
            expires = self._token_expires_at
            self._expiry_changed.clear()
            wait: float | None = None
            if expires is not None:
                left = expires - time.time()
                margin = self.options.token_refresh_margin
                if warned_for != expires and left > margin:
                    wait = left - margin
                elif warned_for != expires and left > 0:
                    warned_for = expires
                    self._emitter.emit(
                        "token_about_to_expire", TokenAboutToExpireEvent(expires_in=left)
                    )
                    await self._refresh_token()
                    continue
                elif left > 0:
                    wait = left
                elif expired_for != expires:
                    expired_for = expires
                    self._log.info("token expired")
                    self._emitter.emit("token_expired", TokenExpiredEvent())
            try:
                async with asyncio.timeout(wait):
                    await self._expiry_changed.wait()
            except TimeoutError:
                continue

    async def _refresh_token(self) -> None:
        """Before expiry: a new token from token_provider, applied with update_token()."""
        if self.options.token_provider is None:
            return
        try:
            await self.update_token(await self.options.token_provider())
        except Exception as exc:
            self._log.warning("token_provider failed: %s", exc)

    async def _token_from_provider(self) -> bool:
        """A refused or expired token: ask token_provider (if any) for a new one, to be used
        by the next attempt. True if it gave one."""
        provider = self.options.token_provider
        if provider is None:
            return False
        try:
            token = _check_token(await provider())
        except Exception as exc:
            self._log.warning("token_provider failed: %s", exc)
            return False
        self._log.debug("token_provider supplied a new token")
        self._token = token
        self._token_expires_at = _token_expiry(token)
        self._expiry_changed.set()
        return True
