"""The core's transport-neutral `Session`, in process: tokens, catch-up, snapshots, live
events, ACL revocation, resync and expiry, on a real SQLite storage and the in-process
broker, with a recording outlet in place of a front door (no sockets: fast)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sync_generated.errors import (
    ServiceNotFoundError,
    TokenExpiredError,
    TokenGrantsError,
    TokenSignatureError,
    TooManySubscriptionsError,
)

from sync_server import wire
from sync_server.broker import InProcessBroker
from sync_server.config import Limits
from sync_server.credentials import Credentials, load_credentials
from sync_server.events import Event, StoredEvent
from sync_server.records import PermissionRecord, ServiceRecord
from sync_server.service import Caller, SyncService
from sync_server.session import Session
from sync_server.storage.sqlite import SQLiteStorage
from sync_server.tokens import mint_token


@dataclass
class Outlet:
    """Records what the session asks of its front door."""

    events: list[Event] = field(default_factory=list)
    expired: list[TokenExpiredError] = field(default_factory=list)
    breaks: int = 0
    removed_services: list[ServiceNotFoundError] = field(default_factory=list)
    restarts: int = 0
    session: Session | None = None  # closed at once on restart, when set

    def restart(self) -> None:
        self.restarts += 1
        if self.session is not None:
            self.session.close()

    def send_event(self, event: Event) -> None:
        self.events.append(event)

    def token_expired(self, error: TokenExpiredError) -> None:
        self.expired.append(error)

    def broken(self) -> None:
        self.breaks += 1

    def service_removed(self, error: ServiceNotFoundError) -> None:
        self.removed_services.append(error)

    def names(self) -> list[tuple[str, int | None]]:
        return [(e.name, e.event_id) for e in self.events]


@dataclass
class Core:
    service: SyncService
    storage: SQLiteStorage
    creds: Credentials
    rest: Caller  # a trusted caller (the REST API's)

    def token(self, identity: str = "alice", ttl: int = 3600, service_sid: str = "") -> str:
        return mint_token(
            account_sid=self.creds.account_sid,
            api_key_sid=self.creds.api_key_sid,
            api_secret=self.creds.api_secret,
            service_sid=service_sid or self.creds.service_sid,
            identity=identity,
            ttl=ttl,
        )

    async def session(self, identity: str = "alice", ttl: int = 3600) -> tuple[Session, Outlet]:
        outlet = Outlet()
        session = Session(self.service, outlet)
        await session.start(self.token(identity, ttl), f"client-{identity}")
        return session, outlet

    async def new_map(self, name: str) -> str:
        obj = await self.service.open(self.rest, "map", name, "create_new", None, None)
        return obj.sid

    async def set(self, sid: str, key: str, value: int) -> None:
        await self.service.set_item(
            self.rest, sid, None, key, {"v": value}, merge=False, if_match=None, ttl=None
        )


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    storage = SQLiteStorage(tmp_path / "sync.db", event_retention=5)
    await storage.start()
    creds = load_credentials(tmp_path, env={})
    now = wire.now()
    await storage.put_service(
        ServiceRecord(
            sid=creds.service_sid, account_sid=creds.account_sid, date_created=now, date_updated=now
        )
    )
    broker = InProcessBroker(gap_timeout=0.01)
    service = SyncService(
        storage, broker, credentials=creds, limits=Limits(max_subscriptions=3, write_rate=0)
    )
    await broker.start()
    yield Core(service, storage, creds, Caller(creds.service_sid, "system", None, trusted=True))
    await broker.close()
    await storage.close()


async def test_start_checks_the_token_and_the_service(core: Core) -> None:
    session = Session(core.service, Outlet())
    forged = mint_token(
        account_sid=core.creds.account_sid,
        api_key_sid=core.creds.api_key_sid,
        api_secret="x" * 32,
        service_sid=core.creds.service_sid,
        identity="alice",
    )
    with pytest.raises(TokenSignatureError):
        await session.start(forged, "c")
    with pytest.raises(ServiceNotFoundError):
        await session.start(core.token(service_sid="IS" + "1" * 32), "c")
    assert session.caller is None
    claims = await session.start(core.token("alice"), "c")
    assert claims.identity == "alice" and session.caller is not None
    assert (session.caller.identity, session.caller.origin) == ("alice", "c")


async def test_a_token_update_keeps_identity_and_service(core: Core) -> None:
    session, _ = await core.session("alice", ttl=600)
    before = session.claims
    with pytest.raises(TokenGrantsError, match="identity"):
        session.update_token(core.token("mallory"))
    with pytest.raises(TokenGrantsError, match="another service"):
        session.update_token(core.token("alice", service_sid="IS" + "2" * 32))
    assert session.claims is before
    renewed = session.update_token(core.token("alice", ttl=3600))
    assert session.claims is renewed and renewed.expires_at > before.expires_at + 2000  # type: ignore[union-attr]
    session.close()


async def test_subscribe_replays_what_was_missed_then_goes_live(core: Core) -> None:
    sid = await core.new_map("replay")
    for n in range(3):
        await core.set(sid, f"k{n}", n)  # events 1..3
    session, outlet = await core.session()
    subscribed = await session.subscribe(sid, since=1)
    assert (subscribed.last_event_id, subscribed.replayed) == (3, 2)
    assert outlet.names() == [("item_added", 2), ("item_added", 3)]
    await core.set(sid, "k0", 10)
    assert outlet.names()[-1] == ("item_updated", 4)
    assert outlet.events[-1].record["item"]["data"] == {"v": 10}
    # since=None: from now on, nothing replayed.
    other, other_outlet = await core.session("bob")
    assert (await other.subscribe(sid, None)).replayed == 0 and other_outlet.events == []
    session.close()
    other.close()


async def test_live_events_during_catch_up_are_sent_once_after_the_replay(core: Core) -> None:
    sid = await core.new_map("race")
    await core.set(sid, "a", 1)
    session, outlet = await core.session()
    original = core.service.events_since
    writes: list[asyncio.Task[None]] = []

    async def slow_events_since(
        caller: Caller, sid: str, since: int, limit: int
    ) -> list[StoredEvent] | None:
        # Two writes land while the replay reads the log: their events reach the session as
        # live deliveries during catch-up, after what the read returned.
        result = await original(caller, sid, since, limit)
        if not writes:
            writes.append(asyncio.create_task(core.set(sid, "b", 2)))
            await writes[0]
            await core.set(sid, "c", 3)
        return result

    core.service.events_since = slow_events_since  # type: ignore[method-assign]
    await session.subscribe(sid, since=0)
    assert outlet.names() == [("item_added", 1), ("item_added", 2), ("item_added", 3)]
    session.close()


async def test_a_snapshot_when_the_log_no_longer_reaches_back(core: Core) -> None:
    sid = await core.new_map("snap")
    for n in range(8):  # the log keeps the last 5 events
        await core.set(sid, f"k{n}", n)
    session, outlet = await core.session()
    await session.subscribe(sid, since=1)
    [snapshot] = outlet.events
    assert (snapshot.name, snapshot.event_id) == ("snapshot", 8)
    assert snapshot.record["object"]["sid"] == sid
    assert [i["key"] for i in snapshot.record["items"]] == [f"k{n}" for n in range(8)]
    await core.set(sid, "k9", 9)
    assert outlet.names()[-1] == ("item_added", 9)
    session.close()


async def test_losing_read_access_revokes_the_subscription(core: Core) -> None:
    svc = await core.service.get_service(core.creds.service_sid)
    svc.acl_enabled = True
    await core.service.update_service(svc)
    sid = await core.new_map("acl")
    perm = PermissionRecord(core.creds.service_sid, sid, "alice", True, False, False)
    await core.service.set_permission(core.rest, perm)
    session, outlet = await core.session("alice")
    await session.subscribe(sid, None)
    await core.service.delete_permission(core.rest, sid, "alice")
    for _ in range(100):
        if outlet.events:
            break
        await asyncio.sleep(0.01)
    [revoked] = outlet.events
    assert revoked.name == "revoked" and revoked.record["error"]["code"] == 54007
    assert sid not in session.subscriptions
    assert core.service.broker.subscriber_count(sid) == 0
    session.close()


async def test_a_missed_removal_is_reported_on_resync(core: Core) -> None:
    sid = await core.new_map("gone")
    await core.set(sid, "a", 1)
    session, outlet = await core.session()
    await session.subscribe(sid, None)
    await core.storage.remove_object(core.creds.service_sid, "map", sid, origin=None)  # unpublished
    session.resync(sid)
    for _ in range(100):
        if outlet.events:
            break
        await asyncio.sleep(0.01)
    assert outlet.names() == [("removed", 2)]
    assert outlet.events[0].final and sid not in session.subscriptions
    session.close()


async def test_subscriptions_are_limited_and_released_on_close(core: Core) -> None:
    sids = [await core.new_map(f"m{n}") for n in range(4)]
    session, _ = await core.session()
    for sid in sids[:3]:
        await session.subscribe(sid, None)
    with pytest.raises(TooManySubscriptionsError):
        await session.subscribe(sids[3], None)
    await session.subscribe(sids[0], None)  # re-subscribing does not count twice
    assert session in core.service.acl_listeners
    session.close()
    assert all(core.service.broker.subscriber_count(sid) == 0 for sid in sids)
    assert session not in core.service.acl_listeners


async def test_the_token_expires(core: Core) -> None:
    session, outlet = await core.session(ttl=1)
    for _ in range(300):
        if outlet.expired:
            break
        await asyncio.sleep(0.01)
    assert [e.code for e in outlet.expired] == [20104]
    session.close()


async def test_a_deleted_service_ends_its_sessions(core: Core) -> None:
    session, outlet = await core.session()
    sid = await core.new_map("doomed")
    await session.subscribe(sid, None)
    other_service = await core.service.get_service(core.creds.service_sid)
    await core.service.update_service(other_service)  # a change, not a removal: nothing ends
    await asyncio.sleep(0.05)
    assert outlet.removed_services == []
    await core.service.delete_service(core.creds.service_sid)
    for _ in range(100):
        if outlet.removed_services:
            break
        await asyncio.sleep(0.01)
    assert [e.code for e in outlet.removed_services] == [54050]
    with pytest.raises(ServiceNotFoundError):
        await core.service.open(session.caller, "map", "after", "open_or_create", None, None)  # type: ignore[arg-type]
    with pytest.raises(ServiceNotFoundError):
        await Session(core.service, Outlet()).start(core.token(), "c")
    session.close()


async def test_drain_restarts_every_session_and_cuts_those_that_do_not_finish(
    core: Core,
) -> None:
    quick, quick_outlet = await core.session("alice")
    quick_outlet.session = quick  # its front door closes as soon as it is asked
    slow, slow_outlet = await core.session("bob")  # never closes: a request is stuck
    left = await core.service.drain(0.2)
    assert core.service.draining
    assert (left, quick.closed, slow.closed) == (1, True, False)
    assert quick_outlet.restarts == 1 and quick_outlet.breaks == 0
    assert slow_outlet.restarts >= 1 and slow_outlet.breaks == 1  # cut after the timeout
