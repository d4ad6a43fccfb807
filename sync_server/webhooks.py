"""Webhooks for Sync object changes, delivered the way Twilio Sync delivers them.

Each delivery is an HTTP ``POST`` to the service's webhook URL with a form-encoded body
(``application/x-www-form-urlencoded``) built by `event_params`, signed in the
``X-Twilio-Signature`` header exactly as Twilio signs (`compute_signature`: HMAC-SHA1 over the
full URL followed by every parameter name and value sorted by name, keyed by the account's auth
token, base64), so receivers can check it with ``twilio.request_validator.RequestValidator``.
Every delivery also carries an ``I-Twilio-Idempotency-Token`` header, the same value on each
attempt of that delivery, so receivers can discard the duplicates that retries may produce.

Guarantees of `WebhookDispatcher`:

* **Durable.** Deliveries live in the storage's outbox (SQLite or PostgreSQL), written in the
  same transaction as the change they report (see `sync_server.storage.base`): a committed
  change has its delivery, a failed one has none. A process that stops or dies loses nothing:
  at the next start (SQLite), or as soon as its leases lapse (another node of a cluster), the
  remaining deliveries go out, with the attempts already made counted.
* **In order per object, by one node at a time.** Only the oldest pending delivery of an
  object can be claimed, with a lease (``lease`` seconds, renewed every third of it while
  its node works on it; on PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``):
  the next one waits until it succeeded or was given up on, whichever node holds it.
  Different objects are delivered in parallel, up to ``max_concurrency`` requests in flight.
* **At least once, within ``max_attempts``.** A delivery succeeds on a 2xx answer. Any other
  status (redirects are not followed), a connection error or a timeout (``timeout`` seconds for the whole request) is retried
  with exponential backoff and jitter (`backoff_delay`), at most ``max_attempts`` attempts in
  all; then the delivery is logged and dropped (counted in ``failed``). A URL that can never
  work (malformed, or not http/https) is dropped at once. A receiver may see a delivery more
  than once (its 2xx was lost, the sending node died, a lease lapsed): dedupe on the
  idempotency token, which is stored with the delivery.
* **Never blocks writes on the network.** A write pays one more statement in its transaction.
  The outbox is bounded: a write that finds ``max_pending`` deliveries pending in all (this
  node's count of the table, refreshed every ``poll_interval``, plus its writes in progress)
  commits without one (dropped, counted and logged, one warning per thousand), and an object
  with more than ``max_queue_per_object`` waiting deliveries loses its oldest waiting ones
  (dropped, counted and logged) at the next poll.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import math
import random
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from .storage.base import OutboxRow, Storage, WebhookDelivery

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


class WebhookDispatcher:
    """Delivers the outbox of `storage` in the background; see the module docstring.

    Use from one event loop: `start` it inside the loop and ``await close()`` at shutdown.
    Writes that carry a webhook call `reserve` first (False: the outbox is full, write
    without it), then `written` once committed or `release` if not; a delivery that is not
    part of a stored change goes in with `enqueue`. ``client`` is used as is and left open by
    `close`; without one the dispatcher makes and closes its own.
    """

    def __init__(
        self,
        *,
        auth_token: str,
        storage: Storage,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        max_queue_per_object: int = 10_000,
        max_pending: int = 20_000,
        max_concurrency: int = 32,
        max_claimed: int = 1000,
        lease: float = 10.0,
        poll_interval: float = 1.0,
        node_id: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_queue_per_object < 1 or max_pending < 1:
            raise ValueError("max_queue_per_object and max_pending must be at least 1")
        if max_concurrency < 1 or max_claimed < 1:
            raise ValueError("max_concurrency and max_claimed must be at least 1")
        if initial_backoff < 0 or max_backoff < 0 or timeout <= 0:
            raise ValueError("backoffs must be >= 0 and timeout > 0")
        if lease <= 0 or poll_interval <= 0:
            raise ValueError("lease and poll_interval must be > 0")
        self._auth_token = auth_token
        self._storage = storage
        self._client = client
        self._owns_client = client is None
        self._max_attempts = max_attempts
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._max_queue = max_queue_per_object
        self._max_pending = max_pending
        self._max_claimed = max_claimed
        self._lease = lease
        self._poll_interval = poll_interval
        self.node_id = node_id or uuid.uuid4().hex
        self._semaphore = asyncio.Semaphore(max_concurrency)

        self._held: dict[int, asyncio.Task[None]] = {}  # claimed rows being delivered
        self._backlog = 0  # rows in the outbox, as last counted, +- this node's changes since
        self._reserved = 0  # writes in progress that carry a delivery
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._closing = False

        self._delivered = 0
        self._failed = 0
        self._retried = 0
        self._dropped = 0

    # -- counters ---------------------------------------------------------------------------

    @property
    def delivered(self) -> int:
        """Deliveries answered with a 2xx (by this node)."""
        return self._delivered

    @property
    def failed(self) -> int:
        """Deliveries given up on after ``max_attempts`` attempts (or a URL that cannot work)."""
        return self._failed

    @property
    def retried(self) -> int:
        """Attempts beyond the first one, over all deliveries (of this node)."""
        return self._retried

    @property
    def dropped(self) -> int:
        """Deliveries never made: the outbox was full, or an object's backlog overflowed."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Deliveries in the outbox (every node's), as this node last saw it."""
        return max(self._backlog, 0)

    def stats(self) -> dict[str, int]:
        """All counters at once, for metrics."""
        return {
            "delivered": self._delivered,
            "failed": self._failed,
            "retried": self._retried,
            "dropped": self._dropped,
            "pending": self.pending,
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin delivering what the outbox holds. Needs a running event loop and a started
        storage."""
        if self._closing:
            raise RuntimeError("WebhookDispatcher is closed")
        if self._runner is not None:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        self._runner = asyncio.create_task(self._run(), name="webhooks")
        self._renewer = asyncio.create_task(self._renew(), name="webhooks:leases")

    async def wait_idle(self, poll: float = 0.02) -> None:
        """Wait until the outbox is empty and nothing is being delivered (tests, tools)."""
        while True:
            backlog = await self._storage.webhook_backlog()
            if not (self._held or self._reserved or backlog):
                self._backlog = 0
                return
            self._wake.set()
            await asyncio.sleep(poll)

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop claiming; give the requests in flight up to ``drain_timeout`` seconds (a
        delivery waiting to retry stops at once), then release this node's leases. What is
        left stays in the outbox for the next start or another node."""
        if self._closing:
            return
        self._closing = True
        self._stopping.set()
        try:
            for task in (self._runner, self._renewer):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            held = list(self._held.values())
            if held:
                _, late = await asyncio.wait(held, timeout=drain_timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(*held, return_exceptions=True)
                if late:
                    logger.warning(
                        "webhooks: %d deliveries still in flight after %.1fs, left in the outbox",
                        len(late),
                        drain_timeout,
                    )
            if self._runner is not None:
                try:
                    await self._storage.release_webhooks(self.node_id)
                except Exception as exc:  # its leases lapse by themselves
                    logger.warning("webhooks: could not release leases: %r", exc)
        finally:
            if self._owns_client and self._client is not None:
                await self._client.aclose()

    # -- writes -----------------------------------------------------------------------------

    def reserve(self) -> bool:
        """Room in the outbox for one more delivery? False (counted in ``dropped``) when
        ``max_pending`` are pending: the write goes ahead without its webhook."""
        if self._backlog + self._reserved >= self._max_pending:
            self._dropped += 1
            if self._dropped % 1000 == 1:  # a warning per thousand, not a flood
                logger.warning(
                    "webhooks: %d deliveries pending in all, dropping new ones (%d so far)",
                    self._backlog + self._reserved,
                    self._dropped,
                )
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        """A reserved delivery was not written (its write failed)."""
        self._reserved -= 1

    def written(self) -> None:
        """A reserved delivery was committed: deliver it now."""
        self._reserved -= 1
        self._backlog += 1
        self._wake.set()

    async def enqueue(self, url: str, object_sid: str, params: dict[str, str]) -> bool:
        """Store one delivery of ``params`` to ``url`` on its own (not part of a stored
        change), ordered after the earlier ones for ``object_sid``; False if the outbox is full."""
        if self._closing or not self.reserve():
            return False
        try:
            await self._storage.add_webhook(
                WebhookDelivery(object_sid=object_sid, url=url, params=dict(params))
            )
        except BaseException:
            self.release()
            raise
        self.written()
        return True

    # -- delivering -------------------------------------------------------------------------

    async def _run(self) -> None:
        """Claim due heads (on a wake-up or every ``poll_interval``), one task per row."""
        last_count = -math.inf
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                if loop.time() - last_count >= self._poll_interval:
                    last_count = loop.time()
                    self._backlog = await self._storage.webhook_backlog()
                    if self._backlog > self._max_queue:
                        await self._trim()
                room = self._max_claimed - len(self._held)
                rows = await self._storage.claim_webhooks(self.node_id, self._lease, room)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("webhooks: cannot read the outbox (retrying): %r", exc)
                rows = []
            for row in rows:
                self._held[row.seq] = asyncio.create_task(
                    self._deliver(row), name=f"webhooks:{row.delivery.object_sid}"
                )
            if rows and len(rows) == room:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()

    async def _trim(self) -> None:
        dropped = await self._storage.trim_webhooks(self._max_queue)
        if dropped:
            self._dropped += dropped
            self._backlog -= dropped
            logger.warning(
                "webhooks: objects with more than %d deliveries pending, dropped the oldest %d",
                self._max_queue,
                dropped,
            )

    async def _renew(self) -> None:
        """Keep this node's leases while it works on them; stop a delivery whose lease was
        lost (it lapsed and another node took the row: that node delivers it)."""
        while True:
            await asyncio.sleep(self._lease / 3)
            held = set(self._held)
            if not held:
                continue
            try:
                kept = await self._storage.renew_webhook_leases(self.node_id, held, self._lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("webhooks: cannot renew leases: %r", exc)
                continue
            for seq in held - kept:
                task = self._held.get(seq)
                if task is not None:
                    logger.warning("webhooks: lost the lease of delivery %d to another node", seq)
                    task.cancel()

    async def _deliver(self, row: OutboxRow) -> None:
        """Every remaining attempt of one claimed row, then its deletion."""
        try:
            done = await self._attempts(row)
            if done:
                try:
                    await self._storage.finish_webhook(row.seq, self.node_id)
                except Exception as exc:  # the lease lapses: sent again, same token
                    logger.warning("webhooks: cannot delete delivery %d: %r", row.seq, exc)
                self._backlog -= 1
        except asyncio.CancelledError:
            pass  # closing, or the lease was lost: the row stays for whoever holds it next
        except Exception:
            logger.exception("webhooks: unexpected error delivering %d", row.seq)
        finally:
            self._held.pop(row.seq, None)
            self._wake.set()  # the object's next delivery is its head now

    async def _attempts(self, row: OutboxRow) -> bool:
        """Attempt until success or give-up (True), or until closing (False)."""
        delivery = row.delivery
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
        attempt = row.attempts
        while True:
            attempt += 1
            async with self._semaphore:
                outcome = await self._attempt(url, body, headers)
            if outcome is None:
                self._delivered += 1
                return True
            permanent, reason = outcome
            if permanent or attempt >= self._max_attempts:
                self._failed += 1
                logger.warning(
                    "webhooks: giving up on %s for %s to %s after %d attempt(s): %s",
                    event,
                    delivery.object_sid,
                    _redact(delivery.url),
                    attempt,
                    reason,
                )
                return True
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
            try:
                await self._storage.retry_webhook(
                    row.seq, self.node_id, attempts=attempt, delay=delay, lease=self._lease
                )
            except Exception as exc:  # keep going: the lease is renewed meanwhile
                logger.warning("webhooks: cannot record a retry of %d: %r", row.seq, exc)
            if self._stopping.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return False

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
