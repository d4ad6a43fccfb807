"""Webhooks for Sync object changes, delivered the way Twilio Sync delivers them.

Each delivery is an HTTP ``POST`` to the service's webhook URL with a form-encoded body
(``application/x-www-form-urlencoded``) built by `event_params`, signed in the
``X-Twilio-Signature`` header exactly as Twilio signs (`compute_signature`: HMAC-SHA1 over the
full URL followed by every parameter name and value sorted by name, keyed by the account's auth
token, base64), so receivers can check it with ``twilio.request_validator.RequestValidator``.
Every delivery also carries an ``I-Twilio-Idempotency-Token`` header, the same value on each
attempt of that delivery, so receivers can discard the duplicates that retries may produce.

Guarantees of `WebhookDispatcher`:

* **In order per object.** Deliveries enqueued for one ``object_sid`` are sent strictly in
  enqueue order, one in flight at a time: the next one waits until the previous one succeeded
  or was given up on. Different objects are delivered in parallel, up to ``max_concurrency``
  requests in flight in total.
* **At least once, within ``max_attempts``.** A delivery succeeds on a 2xx answer. Any other
  status (redirects are not followed), a connection error or a timeout (``timeout`` seconds for the whole request) is retried
  with exponential backoff and jitter (`backoff_delay`), at most ``max_attempts`` attempts in
  all; then the delivery is logged and dropped (counted in ``failed``). A URL that can never
  work (malformed, or not http/https) is dropped at once. A receiver may see a delivery more
  than once (e.g. its 2xx was lost): dedupe on the idempotency token.
* **Never blocks writes.** `WebhookDispatcher.enqueue` is synchronous, does no I/O and returns
  at once; it may be called from any thread once the dispatcher is started. Memory is bounded:
  when an object's backlog exceeds ``max_queue_per_object``, its oldest pending delivery is
  dropped with a warning, and while ``max_pending`` deliveries are pending in all (a receiver
  that never answers, many busy objects), new ones are dropped with a warning (both counted
  in ``dropped``).
* **Not persisted.** The queues live in memory only: deliveries still pending when the process
  stops (or when `WebhookDispatcher.close` runs out of ``drain_timeout``) are lost, and
  counted in ``dropped``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

__all__ = [
    "USER_AGENT",
    "WebhookDispatcher",
    "backoff_delay",
    "compute_signature",
    "event_params",
]

logger = logging.getLogger(__name__)

USER_AGENT = "sync-server-webhooks"
SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# A receiver's answer body is irrelevant; read at most this much of it (so the connection can
# be reused) and never buffer an arbitrarily large one.
_MAX_RESPONSE_BYTES = 64 * 1024

_KIND_PREFIX = {"document": "Document", "list": "List", "map": "Map", "stream": "Stream"}


def _wire_url(url: str) -> str:
    try:
        return str(httpx.URL(url))
    except (httpx.InvalidURL, ValueError):
        return url  # delivery fails as a permanent error and is logged


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's ``X-Twilio-Signature`` for a POST of ``params`` to ``url``.

    The same value as ``RequestValidator(auth_token).compute_signature(url, params)``: the full
    URL (with its query string, as requested), then each parameter's name and value, sorted by
    name, HMAC-SHA1 with the auth token, base64-encoded.
    """
    payload = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def backoff_delay(
    attempt: int, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential (``initial * 2**(attempt - 1)``, capped at ``maximum``) with "equal jitter":
    a uniformly random value between half of that and all of it, so receivers recovering from
    an outage are not hit by every object's retry at the same instant.
    """
    exponent = min(max(attempt - 1, 0), 62)
    base = min(maximum, initial * float(2**exponent))
    return base / 2 + (rng or random).uniform(0, base / 2)


def event_params(
    *,
    event_type: str,
    account_sid: str,
    service_sid: str,
    object_kind: str,
    object_sid: str,
    unique_name: str | None,
    identity: str | None,
    data: dict[str, Any] | None = None,
    item_index: int | None = None,
    item_key: str | None = None,
    revision: str | None = None,
    date_created: str | None = None,
    date_updated: str | None = None,
) -> dict[str, str]:
    """The form parameters of a Sync webhook, as Twilio names them; ``None`` values are omitted.

    ``object_kind`` is ``"document"``, ``"list"``, ``"map"`` or ``"stream"`` and picks the
    names: ``DocumentSid``/``ListSid``/``MapSid``/``StreamSid`` and the matching
    ``...UniqueName``; ``data`` (sent as a compact JSON string) is ``DocumentData`` for a
    document, ``ItemData`` for a list or map item, ``MessageData`` for a stream message;
    ``revision`` is ``DocumentRevision`` or ``ItemRevision``. ``item_index`` is for lists only,
    ``item_key`` for maps only. ``event_type`` (e.g. ``"list_item_added"``) must start with the
    kind. Raises `ValueError` when the arguments do not fit together.
    """
    kind = object_kind.lower()
    prefix = _KIND_PREFIX.get(kind)
    if prefix is None:
        raise ValueError(f"unknown object kind {object_kind!r}")
    if not event_type.startswith(kind + "_"):
        raise ValueError(f"event type {event_type!r} is not a {kind} event")
    if item_index is not None and kind != "list":
        raise ValueError("item_index is for list items only")
    if item_key is not None and kind != "map":
        raise ValueError("item_key is for map items only")
    if revision is not None and kind == "stream":
        raise ValueError("streams have no revision")

    params: dict[str, str] = {
        "EventType": event_type,
        "AccountSid": account_sid,
        "ServiceSid": service_sid,
        f"{prefix}Sid": object_sid,
    }
    if unique_name is not None:
        params[f"{prefix}UniqueName"] = unique_name
    if identity is not None:
        params["Identity"] = identity
    if data is not None:
        data_name = {"document": "DocumentData", "stream": "MessageData"}.get(kind, "ItemData")
        params[data_name] = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if item_index is not None:
        params["ItemIndex"] = str(item_index)
    if item_key is not None:
        params["ItemKey"] = item_key
    if revision is not None:
        params["DocumentRevision" if kind == "document" else "ItemRevision"] = revision
    if date_created is not None:
        params["DateCreated"] = date_created
    if date_updated is not None:
        params["DateUpdated"] = date_updated
    return params


def _redact(url: str) -> str:
    """``url`` without credentials or query string, for logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<invalid url>"


@dataclass(slots=True)
class _Delivery:
    url: str
    object_sid: str
    params: dict[str, str]
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class WebhookDispatcher:
    """Delivers webhooks in the background; see the module docstring for the guarantees.

    Use from one event loop: `start` it inside the loop, `enqueue` from anywhere (before
    `start`, enqueued deliveries wait for it; call `enqueue` from the loop's thread then), and
    ``await close()`` at shutdown. ``client`` is used as is and left open by `close`; without
    one the dispatcher makes and closes its own.
    """

    def __init__(
        self,
        *,
        auth_token: str,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        max_queue_per_object: int = 10_000,
        max_pending: int = 20_000,
        max_concurrency: int = 32,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_queue_per_object < 1 or max_pending < 1:
            raise ValueError("max_queue_per_object and max_pending must be at least 1")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if initial_backoff < 0 or max_backoff < 0 or timeout <= 0:
            raise ValueError("backoffs must be >= 0 and timeout > 0")
        self._auth_token = auth_token
        self._client = client
        self._owns_client = client is None
        self._max_attempts = max_attempts
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._max_queue = max_queue_per_object
        self._max_pending = max_pending
        self._semaphore = asyncio.Semaphore(max_concurrency)

        self._queues: dict[str, deque[_Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._pending = 0  # queued + in flight
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closing = False
        self._closed = False

        self._delivered = 0
        self._failed = 0
        self._retried = 0
        self._dropped = 0

    # -- counters ---------------------------------------------------------------------------

    @property
    def delivered(self) -> int:
        """Deliveries answered with a 2xx."""
        return self._delivered

    @property
    def failed(self) -> int:
        """Deliveries given up on after ``max_attempts`` attempts (or a URL that cannot work)."""
        return self._failed

    @property
    def retried(self) -> int:
        """Attempts beyond the first one, over all deliveries."""
        return self._retried

    @property
    def dropped(self) -> int:
        """Deliveries never completed: queue overflow, enqueued after close, left at close."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Deliveries queued or in flight."""
        return self._pending

    def stats(self) -> dict[str, int]:
        """All counters at once, for metrics."""
        return {
            "delivered": self._delivered,
            "failed": self._failed,
            "retried": self._retried,
            "dropped": self._dropped,
            "pending": self._pending,
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin delivering (including anything enqueued before). Needs a running event loop."""
        if self._closing:
            raise RuntimeError("WebhookDispatcher is closed")
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        for object_sid in list(self._queues):
            self._spawn(object_sid)

    async def wait_idle(self) -> None:
        """Wait until nothing is queued or in flight (returns at once when idle)."""
        await self._idle.wait()

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting deliveries, give pending ones up to ``drain_timeout`` seconds to
        complete (retries included), then abandon the rest (counted in ``dropped``)."""
        if self._closing:
            return
        self._closing = True
        try:
            if self._loop is not None and self._pending:
                try:
                    async with asyncio.timeout(drain_timeout):
                        await self._idle.wait()
                except TimeoutError:
                    logger.warning(
                        "webhooks: %d deliveries still pending after %.1fs, abandoning them",
                        self._pending,
                        drain_timeout,
                    )
            workers = list(self._workers.values())
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            abandoned = sum(len(q) for q in self._queues.values())
            if abandoned:
                if self._loop is None:
                    logger.warning(
                        "webhooks: closed before start, %d deliveries discarded", abandoned
                    )
                self._dropped += abandoned
            self._queues.clear()
            self._pending = 0
            self._idle.set()
        finally:
            if self._owns_client and self._client is not None:
                await self._client.aclose()
            self._closed = True

    # -- enqueueing -------------------------------------------------------------------------

    def enqueue(self, url: str, object_sid: str, params: dict[str, str]) -> None:
        """Queue one delivery of ``params`` to ``url``, ordered after the earlier ones for
        ``object_sid``. Never blocks and never raises for delivery problems."""
        delivery = _Delivery(url=url, object_sid=object_sid, params=dict(params))
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            try:
                loop.call_soon_threadsafe(self._enqueue_now, delivery)
            except RuntimeError:  # the loop is closed: nothing can deliver it any more
                self._dropped += 1
                logger.warning("webhooks: event loop closed, dropping a delivery")
            return
        self._enqueue_now(delivery)

    def _enqueue_now(self, delivery: _Delivery) -> None:
        if self._closing:
            self._dropped += 1
            logger.warning(
                "webhooks: dispatcher closed, dropping %s delivery for %s",
                delivery.params.get("EventType", "a"),
                delivery.object_sid,
            )
            return
        if self._pending >= self._max_pending:
            self._dropped += 1
            if self._dropped % 1000 == 1:  # a warning per thousand, not a flood
                logger.warning(
                    "webhooks: %d deliveries pending in all, dropping new ones (%d so far)",
                    self._pending,
                    self._dropped,
                )
            return
        queue = self._queues.get(delivery.object_sid)
        if queue is None:
            queue = self._queues[delivery.object_sid] = deque()
        queue.append(delivery)
        self._pending += 1
        self._idle.clear()
        while len(queue) > self._max_queue:
            oldest = queue.popleft()
            self._pending -= 1
            self._dropped += 1
            logger.warning(
                "webhooks: more than %d deliveries pending for %s, dropping the oldest (%s)",
                self._max_queue,
                delivery.object_sid,
                oldest.params.get("EventType", "?"),
            )
        if self._loop is not None and delivery.object_sid not in self._workers:
            self._spawn(delivery.object_sid)

    def _spawn(self, object_sid: str) -> None:
        assert self._loop is not None
        self._workers[object_sid] = self._loop.create_task(
            self._drain_object(object_sid), name=f"webhooks:{object_sid}"
        )

    # -- delivering -------------------------------------------------------------------------

    async def _drain_object(self, object_sid: str) -> None:
        """The one worker of ``object_sid``: delivers its queue in order, then exits."""
        queue = self._queues[object_sid]
        try:
            while queue:
                delivery = queue.popleft()
                try:
                    await self._deliver(delivery)
                except asyncio.CancelledError:
                    self._dropped += 1  # in flight when close() gave up
                    raise
                except Exception:
                    self._failed += 1
                    logger.exception(
                        "webhooks: unexpected error delivering to %s", _redact(delivery.url)
                    )
                finally:
                    self._pending -= 1
        finally:
            if self._workers.get(object_sid) is asyncio.current_task():
                del self._workers[object_sid]
            if not queue and self._queues.get(object_sid) is queue:
                del self._queues[object_sid]
            if self._pending == 0:
                self._idle.set()

    async def _deliver(self, delivery: _Delivery) -> None:
        # Sign the URL exactly as it goes on the wire (httpx percent-encodes spaces, non-ASCII...).
        url = _wire_url(delivery.url)
        headers = {
            SIGNATURE_HEADER: compute_signature(self._auth_token, url, delivery.params),
            IDEMPOTENCY_HEADER: delivery.token,
            "User-Agent": USER_AGENT,
            "Content-Type": FORM_CONTENT_TYPE,
        }
        body = urlencode(delivery.params).encode("ascii")
        event = delivery.params.get("EventType", "?")
        for attempt in range(1, self._max_attempts + 1):
            async with self._semaphore:
                outcome = await self._attempt(url, body, headers)
            if outcome is None:
                self._delivered += 1
                return
            permanent, reason = outcome
            if permanent or attempt == self._max_attempts:
                self._failed += 1
                logger.warning(
                    "webhooks: giving up on %s for %s to %s after %d attempt(s): %s",
                    event,
                    delivery.object_sid,
                    _redact(delivery.url),
                    attempt,
                    reason,
                )
                return
            delay = backoff_delay(attempt, self._initial_backoff, self._max_backoff)
            logger.info(
                "webhooks: %s for %s to %s failed (%s), retry %d/%d in %.2fs",
                event,
                delivery.object_sid,
                _redact(delivery.url),
                reason,
                attempt,
                self._max_attempts - 1,
                delay,
            )
            self._retried += 1
            await asyncio.sleep(delay)

    async def _attempt(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[bool, str] | None:
        """One POST; ``None`` on success, else (whether retrying is pointless, why)."""
        client = self._client
        assert client is not None
        try:
            async with asyncio.timeout(self._timeout):
                async with client.stream(
                    "POST", url, content=body, headers=headers, timeout=self._timeout
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= _MAX_RESPONSE_BYTES:
                            break
                    status = response.status_code
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return True, f"bad URL: {exc}"
        except TimeoutError:
            return False, f"no answer within {self._timeout}s"
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= status < 300:
            return None
        return False, f"HTTP {status}"
