"""A client's session with the core, whatever its wire protocol.

A front door (the native WebSocket in `realtime.py`, Twilsock in `twilsock.py`) owns one
`Session` per connection and turns what the session asks of it into frames. The session
holds the rules: the verified access token and its expiry, the caller it acts as, and its
subscriptions, each caught up from an event id before it goes live.

    front door --start / update_token / subscribe / unsubscribe--> Session --> SyncService
    Broker --deliver / resync--> Session --send_event / token_expired / broken--> front door

What a session sends through its `Outlet`:
- every event of a subscribed object, once and in event-id order: first the stored events
  after the client's `since`, then live ones (those that arrive during the replay wait);
- a `snapshot` event (object and every item) when the log no longer reaches back;
- `removed` when the object vanished while its removal event was missed;
- `revoked` (with the ACL error) when the identity loses read access: the subscription ends;
- `token_expired()` when the token runs out, and `broken()` when storage fails mid-catch-up
  (the front door drops the connection; the client reconnects and catches up).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from sync_generated.errors import (
    ForbiddenError,
    InvalidRequestError,
    ServiceNotFoundError,
    SyncError,
    TokenExpiredError,
    TokenGrantsError,
    TooManySubscriptionsError,
)

from . import events, wire
from .events import Event
from .records import ObjectRecord
from .service import NOT_FOUND, Caller, SyncService, kind_of_sid
from .tokens import TokenClaims

log = logging.getLogger("sync_server.session")

NOT_FOUND_ERRORS = tuple(NOT_FOUND.values())


class Outlet(Protocol):
    """What a front door does with a session's output."""

    def send_event(self, event: Event) -> None:
        """Send an event of a subscribed object (in the order given)."""

    def token_expired(self, error: TokenExpiredError) -> None:
        """The access token ran out: tell the client and close."""

    def broken(self) -> None:
        """Storage failed while catching up: drop the connection (the client catches up)."""

    def service_removed(self, error: ServiceNotFoundError) -> None:
        """The session's service was deleted: tell the client and close (reconnecting with a
        token for that service is refused from now on)."""

    def restart(self) -> None:
        """The node is shutting down: stop reading requests, answer those already taken,
        then close so that the client reconnects at once, to another node (WebSocket close
        1012, Twilsock close 308): a request the client gets no reply to was not applied."""


@dataclass(slots=True)
class Subscribed:
    """The answer to `subscribe`: the object's position and how many events were replayed."""

    last_event_id: int
    replayed: int


@dataclass(slots=True)
class _Subscription:
    catching_up: bool = True
    buffered: list[Event] = field(default_factory=list)  # live events during catch-up
    last: int = 0  # the last event id sent


class Session:
    """One client's authenticated session (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_closed",
        "_expiry_timer",
        "_tasks",
        "caller",
        "claims",
        "id",
        "outlet",
        "service",
        "subscriptions",
    )

    def __init__(self, service: SyncService, outlet: Outlet) -> None:
        self.service = service
        self.outlet = outlet
        self.id = uuid.uuid4().hex
        self.caller: Caller | None = None
        self.claims: TokenClaims | None = None
        self.subscriptions: dict[str, _Subscription] = {}
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        service.sessions.add(self)

    @property
    def subscription_count(self) -> int:
        return len(self.subscriptions)

    @property
    def closed(self) -> bool:
        return self._closed

    def restart(self) -> None:
        """The node is shutting down (SyncService.drain): hand over to the front door."""
        if not self._closed:
            self.outlet.restart()

    def cut(self) -> None:
        """Drop the connection now (the drain ran out of time): the outcome of its running
        requests is unknown to the client."""
        if not self._closed:
            self.outlet.broken()

    # ---- the token -------------------------------------------------------------------
    async def start(self, token: str, client_id: str | None) -> TokenClaims:
        """Authenticate with an access token; `client_id` marks this client's own events
        (their `origin`). Raises the token's error (20101...20107) or 54050 for a service
        that does not exist."""
        claims = self.service.verify_token(token)
        await self.service.get_service(claims.service_sid)  # 54050 when it does not exist
        self.caller = Caller(claims.service_sid, claims.identity, client_id)
        self._accept(claims)
        self.service.acl_listeners.add(self)
        return claims

    def update_token(self, token: str) -> TokenClaims:
        """Replace the token of a started session. The new token must name the same
        identity and service (20106 otherwise, and nothing changes)."""
        caller = self.caller
        assert caller is not None, "update_token before start"
        claims = self.service.verify_token(token)
        if claims.service_sid != caller.service_sid:
            raise TokenGrantsError("update_token: the new token is for another service")
        if claims.identity != caller.identity:
            raise TokenGrantsError(
                f"update_token: the new token is for identity {claims.identity!r:.80}, "
                f"not {caller.identity!r:.80}; connect again to change identity"
            )
        self._accept(claims)
        return claims

    def _accept(self, claims: TokenClaims) -> None:
        self.claims = claims
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        delay = max(claims.expires_at - wire.now(), 0.0)
        self._expiry_timer = asyncio.get_running_loop().call_later(delay, self._token_expired)

    def _token_expired(self) -> None:
        log.info("session %s: token expired", self.id)
        self.outlet.token_expired(
            TokenExpiredError("access token expired; connect again with a new token")
        )

    # ---- subscriptions -----------------------------------------------------------------
    async def subscribe(self, sid: str, since: int | None) -> Subscribed:
        """Subscribe to `sid`: the stored events after `since` (all of them up to now when
        None: nothing is replayed) are sent, then live events."""
        caller = self._caller()
        obj = await self.service.get_object(caller, sid)
        limit = self.service.limits.max_subscriptions
        if sid not in self.subscriptions and len(self.subscriptions) >= limit:
            raise TooManySubscriptionsError(f"at most {limit} subscriptions per connection")
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
        return Subscribed(max(obj.last_event_id, sub.last), replayed)

    def unsubscribe(self, sid: str) -> bool:
        """Stop the subscription to `sid`; False if there was none."""
        if self.subscriptions.pop(sid, None) is None:
            return False
        self.service.broker.unsubscribe(sid, self)
        return True

    async def _catch_up(
        self, caller: Caller, sid: str, sub: _Subscription, start: int, position: int
    ) -> int:
        """Send the stored events after `start` (or a snapshot when the log no longer reaches
        back), then what arrived meanwhile; the subscription then goes live. Returns the
        number of events replayed."""
        replayed = 0
        last_sent = start
        batch = self.service.limits.replay_batch
        if kind_of_sid(sid) != "stream":
            while True:
                stored = await self.service.events_since(caller, sid, last_sent, batch)
                if stored is None:
                    current = await self.service.get_object(caller, sid)
                    self.outlet.send_event(await self._snapshot(caller, current))
                    last_sent = current.last_event_id
                    break
                for stored_event in stored:
                    self.outlet.send_event(stored_event)
                    last_sent = stored_event.event_id
                replayed += len(stored)
                if len(stored) < batch:
                    break
        for live in sub.buffered:
            if live.event_id is None or live.event_id > last_sent:
                self.outlet.send_event(live)
                last_sent = live.event_id or last_sent
        sub.buffered.clear()
        sub.catching_up = False
        sub.last = max(last_sent, position)
        return replayed

    async def _snapshot(self, caller: Caller, obj: ObjectRecord) -> Event:
        items = await self.service.all_items(caller, obj.sid) if obj.kind in ("list", "map") else []
        return Event.of(obj.service_sid, events.snapshot(obj, items))

    # ---- from the broker (Subscriber) --------------------------------------------------
    def deliver(self, event: Event) -> None:
        sub = self.subscriptions.get(event.sid)
        if sub is None:
            return
        if sub.catching_up:
            sub.buffered.append(event)
        else:
            if event.event_id is not None:
                sub.last = event.event_id
            self.outlet.send_event(event)

    def resync(self, sid: str) -> None:
        """Events of `sid` were lost on their way here: catch up from storage."""
        sub = self.subscriptions.get(sid)
        caller = self.caller
        if sub is not None and caller is not None and not sub.catching_up:
            sub.catching_up = True
            self._keep(asyncio.create_task(self._resync(caller, sid, sub)))

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
                removed = events.object_removed(kind_of_sid(sid), sid, sub.last + 1, None, None)
                self.outlet.send_event(Event.of(caller.service_sid, removed, final=True))
        except Exception:
            log.exception("session %s: could not resync %s", self.id, sid)
            self.outlet.broken()

    # ---- access control (AclListener) --------------------------------------------------
    def access_changed(
        self, service_sid: str | None, object_sid: str | None, identity: str | None
    ) -> None:
        """A permission or the service's ACL changed: recheck read access of our subscriptions."""
        caller = self.caller
        if caller is None or (service_sid is not None and caller.service_sid != service_sid):
            return
        if identity is not None and identity != caller.identity:
            return
        if object_sid is None and identity is None:
            self._keep(asyncio.create_task(self._check_service(caller)))
        sids = [object_sid] if object_sid is not None else list(self.subscriptions)
        for sid in sids:
            if sid in self.subscriptions:
                self._keep(asyncio.create_task(self._recheck(caller, sid)))

    async def _check_service(self, caller: Caller) -> None:
        try:
            await self.service.get_service(caller.service_sid)
        except ServiceNotFoundError as err:
            log.info("session %s: service %s was deleted", self.id, caller.service_sid)
            self.outlet.service_removed(err)

    async def _recheck(self, caller: Caller, sid: str) -> None:
        try:
            await self.service.authorize(caller, sid, "read")
        except ForbiddenError as err:
            self._revoke(sid, err)

    def _revoke(self, sid: str, err: SyncError) -> None:
        caller = self._caller()
        self.unsubscribe(sid)
        revoked = events.revoked(kind_of_sid(sid), sid, err)
        self.outlet.send_event(Event.of(caller.service_sid, revoked))

    # ---- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        """End the session: no more events, timers or tasks."""
        if self._closed:
            return
        self._closed = True
        self.service.acl_listeners.discard(self)
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        for sid in list(self.subscriptions):
            self.unsubscribe(sid)
        for task in list(self._tasks):
            task.cancel()

    def _caller(self) -> Caller:
        if self.caller is None:
            raise InvalidRequestError("authenticate with an access token first")
        return self.caller

    def _keep(self, task: asyncio.Task[None]) -> None:
        """Hold a task of this session until it ends; `close()` cancels what is left."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
