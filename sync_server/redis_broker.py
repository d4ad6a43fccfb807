"""Fan-out across several server nodes over Redis pub/sub (redis-py asyncio).

Each node holds ONE pub/sub connection. It subscribes to an object's channel
(`<prefix>:ev:<sid>`) while at least one of its own connections is subscribed to the object,
and to `<prefix>:control` (cache invalidations) always. A node publishes each event it
commits once, to the object's channel, from a single sender task that pipelines whatever is
queued: the client's write is acknowledged after the commit, never after Redis.

Pub/sub is fire-and-forget, so the base `Broker` does the bookkeeping that makes it safe:
events are delivered in event-id order exactly once, a gap is repaired from storage's event
log, and a periodic audit compares every topic with storage. After the pub/sub connection
is lost (Redis restart, network blip) the node reconnects with backoff, subscribes again,
audits every topic at once and drops its caches (invalidations may have been missed).
Stream messages are not stored anywhere, so those published while Redis is away are lost,
as Twilio documents for streams.

Message on an object channel:  <node id>|<event id or empty>|<1 if final else 0>|<frame>
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import orjson
import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import UnixDomainSocketConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .broker import Broker, ControlMessage
from .credentials import redact_url
from .events import Event

log = logging.getLogger("sync_server.redis")

_MAX_QUEUED = 100_000  # messages waiting for Redis; beyond that they are dropped (repaired)
_SILENCE = 15.0  # seconds without a byte from Redis before the connection is presumed dead
_TIMEOUT = 5.0  # seconds for a batch of publishes to be answered


class _Publisher(asyncio.Protocol):
    """The connection events are published on: a batch of PUBLISH commands is packed and
    written at once, and the batch is done when Redis has answered each of them. redis-py's
    pipeline does the same for about four times the CPU per message (its command packing,
    connection pool and response parser), which was most of what a write cost on top of
    its commit. Only for plain TCP and Unix sockets (a `rediss://` URL goes through redis-py).
    Every reply here is one line (`:n`, `+OK` or `-error`), so counting lines is parsing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._tail = b""
        self._expected = 0
        self._done: asyncio.Future[None] | None = None
        self._error: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        done = self._done
        if done is not None and not done.done():
            done.set_exception(ConnectionError(f"Redis closed the connection ({exc})"))

    def data_received(self, data: bytes) -> None:
        buf = self._tail + data if self._tail else data
        lines = buf.count(b"\r\n")
        self._tail = buf[buf.rfind(b"\r\n") + 2 :] if lines else buf
        if not lines:
            return
        if self._error is None and (buf[:1] == b"-" or b"\r\n-" in buf):
            start = 0 if buf[:1] == b"-" else buf.index(b"\r\n-") + 2
            self._error = buf[start + 1 : buf.index(b"\r\n", start)]
        self._expected -= lines
        done = self._done
        if self._expected <= 0 and done is not None and not done.done():
            done.set_result(None)

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def call(self, payload: bytes, replies: int) -> None:
        """Write `payload` (`replies` commands) and wait for every answer."""
        assert self.transport is not None
        done = self._done = asyncio.get_running_loop().create_future()
        self._expected, self._error = replies, None
        self.transport.write(payload)
        try:
            async with asyncio.timeout(_TIMEOUT):
                await done
        finally:
            self._done = None
        if self._error is not None:
            raise redis.ResponseError(self._error.decode(errors="replace"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class RedisBroker(Broker):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "sync",
        gap_timeout: float = 0.1,
        audit_interval: float = 2.0,
        reconnect_max_delay: float = 2.0,
    ) -> None:
        super().__init__(gap_timeout=gap_timeout, audit_interval=audit_interval)
        self.url = url
        self.node_id = uuid.uuid4().hex[:16]
        self.reconnect_max_delay = reconnect_max_delay
        self.connected = asyncio.Event()
        self._tag = self.node_id.encode()
        self._control = f"{prefix}:control".encode()
        self._event_prefix = f"{prefix}:ev:".encode()
        self._outgoing: list[tuple[bytes, bytes]] = []
        self._wakeup = asyncio.Event()
        self._pubsub: PubSub | None = None
        self._confirms: dict[bytes, list[asyncio.Future[None]]] = {}
        self._publisher: redis.Redis | None = None
        self._fast: _Publisher | None = None
        # Where `_Publisher` connects: None for URLs it does not handle (TLS).
        params: dict[str, Any] = dict(parse_url(url))
        self._fast_params: dict[str, Any] | None = (
            params if params.get("connection_class") in (None, UnixDomainSocketConnection) else None
        )
        self._ever_connected = False

    @property
    def healthy(self) -> bool:
        return self.connected.is_set()

    def _client(self, socket_timeout: float | None) -> redis.Redis:
        # No silent retries: a lost connection surfaces here so the broker knows to repair.
        return redis.Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=2,
            socket_timeout=socket_timeout,
        )

    async def start(self) -> None:
        self._publisher = self._client(socket_timeout=5)
        try:
            await self._publisher.ping()
        except Exception as exc:
            await self._publisher.aclose()
            raise RuntimeError(f"cannot reach Redis at {redact_url(self.url)}: {exc}") from exc
        await super().start()
        self._spawn(self._receive_loop())
        self._spawn(self._send_loop())
        await asyncio.wait_for(self.connected.wait(), 10)

    async def close(self) -> None:
        await super().close()
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()

    # ---- outgoing ----------------------------------------------------------------------
    def _send(self, event: Event) -> None:
        event_id = event.event_id
        message = b"%s|%s|%s|%s" % (
            self._tag,
            b"" if event_id is None else b"%d" % event_id,
            b"1" if event.final else b"0",
            event.frame,
        )
        self._queue(self._event_prefix + event.sid.encode(), message)

    def broadcast(self, message: ControlMessage) -> None:
        self._queue(self._control, orjson.dumps({**message, "node": self.node_id}))

    def _queue(self, channel: bytes, payload: bytes) -> None:
        if len(self._outgoing) >= _MAX_QUEUED:
            log.warning("Redis is not keeping up; dropping a message (other nodes repair it)")
            return
        self._outgoing.append((channel, payload))
        self._wakeup.set()

    async def _send_loop(self) -> None:
        assert self._publisher is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._outgoing = self._outgoing, []
            try:
                if self._fast_params is not None:
                    await self._publish_fast(batch)
                elif len(batch) == 1:
                    await self._publisher.publish(*batch[0])
                else:
                    pipe = self._publisher.pipeline(transaction=False)
                    for channel, payload in batch:
                        pipe.publish(channel, payload)
                    await pipe.execute()
            except Exception as exc:
                log.warning(
                    "could not publish %d message(s) to Redis (%s); other nodes will repair "
                    "the events from storage",
                    len(batch),
                    exc,
                )
                if self._fast is not None:  # its state is unknown: the next batch reconnects
                    self._fast.close()
                    self._fast = None

    async def _publish_fast(self, batch: list[tuple[bytes, bytes]]) -> None:
        fast = self._fast
        if fast is None or not fast.open:
            fast = self._fast = await self._connect_fast()
        await fast.call(
            b"".join(_command(b"PUBLISH", channel, payload) for channel, payload in batch),
            len(batch),
        )

    async def _connect_fast(self) -> _Publisher:
        params = self._fast_params
        assert params is not None
        loop = asyncio.get_running_loop()
        publisher = _Publisher()
        async with asyncio.timeout(2):
            if "path" in params:
                await loop.create_unix_connection(lambda: publisher, params["path"])
            else:
                await loop.create_connection(
                    lambda: publisher, params.get("host", "localhost"), params.get("port", 6379)
                )
        try:
            password = params.get("password")
            if password is not None:
                username = params.get("username")
                auth = [b"AUTH", *([username.encode()] if username else []), password.encode()]
                await publisher.call(_command(*auth), 1)
        except BaseException:
            publisher.close()
            raise
        return publisher

    # ---- incoming ----------------------------------------------------------------------
    async def _listen(self, sid: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # disconnected: the reconnect subscribes every topic, then audits
        channel = self._event_prefix + sid.encode()
        confirmed = self._expect_confirm(channel)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, 5)
        except Exception as exc:
            log.warning("subscribing to %s failed (%s); the audit will catch up", sid, exc)

    def _unlisten(self, sid: str) -> None:
        pubsub = self._pubsub
        if pubsub is not None:
            self._spawn(self._quietly(pubsub.unsubscribe(self._event_prefix + sid.encode())))

    @staticmethod
    async def _quietly(coro: Any) -> None:
        with contextlib.suppress(Exception):
            await coro

    def _expect_confirm(self, channel: bytes) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirms.setdefault(channel, []).append(future)
        return future

    def _confirm(self, channel: bytes) -> None:
        waiting = self._confirms.get(channel)
        if waiting:
            future = waiting.pop(0)
            if not waiting:
                del self._confirms[channel]
            if not future.done():
                future.set_result(None)

    async def _receive_loop(self) -> None:
        delay = 0.05
        while True:
            client = self._client(socket_timeout=None)
            pubsub = client.pubsub()
            try:
                await self._connect(pubsub)
                delay = 0.05
                last_heard = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=_SILENCE / 3)
                    if message is not None:
                        last_heard = time.monotonic()
                        self._on_message(message)
                    elif time.monotonic() - last_heard > _SILENCE:
                        raise ConnectionError(f"no answer from Redis for {_SILENCE:.0f}s")
                    else:
                        await pubsub.ping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lost the Redis pub/sub connection (%s); reconnecting", exc)
            finally:
                self._pubsub = None
                self.connected.clear()
                for waiting in self._confirms.values():
                    for future in waiting:
                        if not future.done():
                            future.set_result(None)  # the audit after reconnecting covers it
                self._confirms.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_delay)

    async def _connect(self, pubsub: PubSub) -> None:
        """Subscribe to control and every open topic; after a reconnect, catch up."""
        await pubsub.connect()  # type: ignore[no-untyped-call]
        catch_up, self._ever_connected = self._ever_connected, True
        # From here a new topic subscribes by itself (`_listen`); the ones open now are here.
        self._pubsub = pubsub
        channels = [self._control, *(self._event_prefix + sid.encode() for sid in self._topics)]
        confirmations = [self._expect_confirm(c) for c in channels]
        for start in range(0, len(channels), 500):
            await pubsub.subscribe(*channels[start : start + 500])
        self._spawn(self._connected(confirmations, catch_up))

    async def _connected(self, confirmations: list[asyncio.Future[None]], catch_up: bool) -> None:
        await asyncio.gather(*confirmations)
        if self._pubsub is None:
            return
        self.connected.set()
        if catch_up:
            self.reconnects += 1
            log.info("Redis pub/sub reconnected; auditing %d topics", len(self._topics))
            if self.on_broadcast is not None:
                self.on_broadcast({"type": "reset"})
            await self.audit()

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel: bytes = message["channel"] if kind != "pong" else b""
        if kind == "subscribe":
            self._confirm(channel)
        elif kind != "message":
            return
        elif channel == self._control:
            self._on_control(message["data"])
        else:
            self._on_event(channel, message["data"])

    def _on_event(self, channel: bytes, data: bytes) -> None:
        try:
            node, event_id, final, frame = data.split(b"|", 3)
        except ValueError:
            log.warning("ignoring a malformed message on %r", channel)
            return
        if node == self._tag:
            return  # our own event: delivered locally when it was published
        sid = channel[len(self._event_prefix) :].decode()
        topic = self._topics.get(sid)
        if topic is not None:
            number = int(event_id) if event_id else None
            self.offer(Event(topic.service_sid, sid, number, frame, final == b"1"))

    def _on_control(self, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or message.get("node") == self.node_id:
            return
        if self.on_broadcast is not None:
            self.on_broadcast({str(k): str(v) for k, v in message.items()})
