"""The Twilio-compatible REST API v1 (`/v1/Services/...`) on a real sync-server.

Three angles:
* the OFFICIAL `twilio` package (twilio.rest.Client), with its HTTP client rewriting
  https://sync.twilio.com to our server, runs every Sync v1 operation;
* raw HTTP (httpx): auth, error codes and bodies, status codes, paging, ids;
* REST <-> realtime: REST writes reach subscribed SDK clients as remote events, and the REST
  view of SDK writes is identical.
Objects live in services created per test (or uniquely named objects of the default service
for the realtime tests, since SDK tokens are bound to it), so tests do not see each other."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response as TwilioResponse  # type: ignore[import-untyped]
from twilio.rest import Client as TwilioClient  # type: ignore[import-untyped]

from sync_sdk import (
    DocumentRemovedEvent,
    DocumentUpdatedEvent,
    ListItemAddedEvent,
    ListItemRemovedEvent,
    ListItemUpdatedEvent,
    MapItemAddedEvent,
    MapItemRemovedEvent,
    MapItemUpdatedEvent,
    StreamMessagePublishedEvent,
)
from tests.conftest import ServerProcess, next_event

TWILIO_SYNC_BASE = "https://sync.twilio.com"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ERROR_KEYS = {"code", "message", "more_info", "status"}
META_KEYS = {
    "key",
    "page",
    "page_size",
    "first_page_url",
    "previous_page_url",
    "next_page_url",
    "url",
}
KINDS = ("document", "list", "map", "stream")
COLLECTION = {"document": "Documents", "list": "Lists", "map": "Maps", "stream": "Streams"}
LIST_KEY = {"document": "documents", "list": "lists", "map": "maps", "stream": "streams"}
SID_PREFIX = {"document": "ET", "list": "ES", "map": "MP", "stream": "TO"}
NOT_FOUND_CODE = {"document": 54100, "list": 54150, "map": 54200, "stream": 54250}
BIG_DATA = {"blob": "x" * (16 * 1024 + 1)}


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_sid(value: object, prefix: str) -> None:
    assert isinstance(value, str), value
    assert re.fullmatch(rf"{prefix}[0-9a-f]{{32}}", value), value


def assert_date(value: object) -> datetime:
    """A date the twilio package parsed from `%Y-%m-%dT%H:%M:%SZ` (it keeps the raw string
    when the format does not match)."""
    assert isinstance(value, datetime), f"{value!r} is not in {DATE_FORMAT}"
    assert value.tzinfo is not None
    assert abs(value - datetime.now(UTC)) < timedelta(days=1), value
    return value


def assert_raw_date(value: object) -> datetime:
    assert isinstance(value, str) and DATE_RE.match(value), value
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)


def assert_twilio_error(exc: BaseException, status: int, code: int) -> None:
    assert isinstance(exc, TwilioRestException), repr(exc)
    assert exc.status == status, (exc.status, exc.code, exc.msg)
    assert exc.code == code, (exc.status, exc.code, exc.msg)


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The twilio package's own HTTP client, sending https://sync.twilio.com/... to our server.
    Records (method, url, params, headers) of every request."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=15)
        self.base_url = base_url.rstrip("/")
        self.calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        if url.startswith(TWILIO_SYNC_BASE):
            url = self.base_url + url[len(TWILIO_SYNC_BASE) :]
        self.calls.append((method.upper(), url, dict(params or {}), dict(headers or {})))
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )

    def gets(self, fragment: str) -> list[str]:
        return [url for method, url, _, _ in self.calls if method == "GET" and fragment in url]


def twilio_client(
    server: ServerProcess, *, account_auth: bool = False
) -> tuple[Any, RewritingHttpClient]:
    creds = server.credentials
    assert creds is not None
    http = RewritingHttpClient(server.url)
    if account_auth:
        assert creds.auth_token, "the test server has no auth token"
        client = TwilioClient(creds.account_sid, creds.auth_token, http_client=http)
    else:
        client = TwilioClient(
            creds.api_key_sid, creds.api_secret, creds.account_sid, http_client=http
        )
    return client, http


@pytest.fixture
def tw(server: ServerProcess) -> tuple[Any, RewritingHttpClient]:
    return twilio_client(server)


@pytest.fixture
def sync(tw: tuple[Any, RewritingHttpClient]) -> Any:
    """client.sync.v1 of the official package."""
    return tw[0].sync.v1


@pytest.fixture
def service(sync: Any) -> Iterator[Any]:
    """A service of this test's own (a ServiceContext), deleted afterwards."""
    svc = sync.services.create(friendly_name=uniq("rest-test"))
    yield sync.services(svc.sid)
    try:
        sync.services(svc.sid).delete()
    except TwilioRestException:
        pass


# ---- official twilio package: services -------------------------------------------------


def test_twilio_services_create_fetch_update_list_delete(
    sync: Any, tw: tuple[Any, RewritingHttpClient], server: ServerProcess
) -> None:
    creds = server.credentials
    assert creds is not None
    name = uniq("svc")
    created = sync.services.create(friendly_name=name, acl_enabled=False)
    assert_sid(created.sid, "IS")
    assert created.friendly_name == name
    assert created.account_sid == creds.account_sid
    assert created.acl_enabled is False
    assert created.webhook_url is None
    assert assert_date(created.date_created) == assert_date(created.date_updated)
    assert created.url == f"{server.url}/v1/Services/{created.sid}"
    assert created.links == {
        "documents": f"{created.url}/Documents",
        "lists": f"{created.url}/Lists",
        "maps": f"{created.url}/Maps",
        "streams": f"{created.url}/Streams",
    }

    fetched = sync.services(created.sid).fetch()
    assert (fetched.sid, fetched.friendly_name, fetched.url) == (created.sid, name, created.url)
    assert fetched.date_created == created.date_created

    updated = sync.services(created.sid).update(
        friendly_name=name + "-2",
        webhook_url="https://example.com/hook",
        acl_enabled=True,
        reachability_webhooks_enabled=True,
        webhooks_from_rest_enabled=False,
        reachability_debouncing_enabled=True,
        reachability_debouncing_window=5000,
    )
    assert updated.sid == created.sid
    assert updated.friendly_name == name + "-2"
    assert updated.webhook_url == "https://example.com/hook"
    assert updated.acl_enabled is True
    assert updated.reachability_webhooks_enabled is True
    assert updated.webhooks_from_rest_enabled is False
    assert updated.reachability_debouncing_enabled is True
    assert updated.reachability_debouncing_window == 5000
    assert assert_date(updated.date_updated) >= created.date_updated
    assert sync.services(created.sid).fetch().friendly_name == name + "-2"

    more = [sync.services.create(friendly_name=uniq("svc")).sid for _ in range(3)]
    http = tw[1]
    before = len(http.gets("/v1/Services"))
    listed = [s.sid for s in sync.services.list(page_size=2)]
    assert len(http.gets("/v1/Services")) - before >= 3, "page_size=2 must take several pages"
    assert len(listed) == len(set(listed)), "a service was listed twice"
    assert {created.sid, *more} <= set(listed)
    assert creds.service_sid in listed

    for sid in (created.sid, *more):
        assert sync.services(sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        sync.services(created.sid).fetch()
    assert_twilio_error(err.value, 404, 54050)
    assert created.sid not in {s.sid for s in sync.services.list(page_size=100)}


# ---- official twilio package: documents ------------------------------------------------


def test_twilio_documents_create_fetch_update_list_delete(
    service: Any, tw: tuple[Any, RewritingHttpClient], server: ServerProcess
) -> None:
    creds = server.credentials
    assert creds is not None
    name = uniq("doc")
    doc = service.documents.create(unique_name=name, data={"a": 1, "s": "é"}, ttl=3600)
    assert_sid(doc.sid, "ET")
    assert doc.unique_name == name
    assert doc.data == {"a": 1, "s": "é"}
    assert doc.account_sid == creds.account_sid
    assert doc.service_sid == service._solution["sid"]
    assert isinstance(doc.revision, str) and doc.revision
    created = assert_date(doc.date_created)
    expires = assert_date(doc.date_expires)
    assert timedelta(seconds=3590) <= expires - created <= timedelta(seconds=3610)
    assert doc.url.endswith(f"/v1/Services/{doc.service_sid}/Documents/{doc.sid}")
    assert doc.url.startswith(server.url)
    assert doc.links == {"permissions": f"{doc.url}/Permissions"}
    assert doc.created_by == "system"

    by_sid = service.documents(doc.sid).fetch()
    by_name = service.documents(name).fetch()
    for got in (by_sid, by_name):
        assert (got.sid, got.unique_name, got.data, got.revision) == (
            doc.sid,
            name,
            doc.data,
            doc.revision,
        )

    updated = service.documents(doc.sid).update(data={"a": 2})
    assert updated.data == {"a": 2}
    assert updated.revision != doc.revision
    assert assert_date(updated.date_updated) >= created

    guarded = service.documents(name).update(data={"a": 3}, if_match=updated.revision)
    assert guarded.data == {"a": 3}
    assert guarded.revision not in (doc.revision, updated.revision)
    sent = tw[1].calls[-1]
    assert sent[0] == "POST" and sent[3].get("If-Match") == updated.revision

    with pytest.raises(TwilioRestException) as err:
        service.documents(doc.sid).update(data={"a": 4}, if_match=updated.revision)
    assert_twilio_error(err.value, 412, 54103)
    assert service.documents(doc.sid).fetch().data == {"a": 3}

    others = [service.documents.create(data={"n": n}).sid for n in range(4)]
    for sid in others:
        assert_sid(sid, "ET")
        assert service.documents(sid).fetch().unique_name is None
    http = tw[1]
    before = len(http.gets("/Documents"))
    listed = service.documents.list(page_size=2)
    assert len(http.gets("/Documents")) - before == 3
    assert sorted(d.sid for d in listed) == sorted([doc.sid, *others])
    assert {d.sid: d.data for d in listed}[doc.sid] == {"a": 3}
    assert service.documents.list(limit=3, page_size=2)[2].sid in {doc.sid, *others}

    assert service.documents(name).delete() is True
    with pytest.raises(TwilioRestException) as err:
        service.documents(doc.sid).fetch()
    assert_twilio_error(err.value, 404, 54100)
    assert sorted(d.sid for d in service.documents.list()) == sorted(others)


# ---- official twilio package: permissions (documents, lists, maps) ----------------------


def _permissions(service: Any, kind: str, sid: str) -> Any:
    if kind == "document":
        return service.documents(sid).document_permissions
    if kind == "list":
        return service.sync_lists(sid).sync_list_permissions
    return service.sync_maps(sid).sync_map_permissions


def _create_object(service: Any, kind: str, **kwargs: Any) -> Any:
    return {
        "document": service.documents,
        "list": service.sync_lists,
        "map": service.sync_maps,
        "stream": service.sync_streams,
    }[kind].create(**kwargs)


@pytest.mark.parametrize("kind", ["document", "list", "map"])
def test_twilio_permissions_update_fetch_list_delete(
    service: Any, kind: str, tw: tuple[Any, RewritingHttpClient], server: ServerProcess
) -> None:
    creds = server.credentials
    assert creds is not None
    obj = _create_object(service, kind, unique_name=uniq(kind))
    perms = _permissions(service, kind, obj.sid)

    alice = perms("alice").update(read=True, write=False, manage=False)
    assert alice.identity == "alice"
    assert (alice.read, alice.write, alice.manage) == (True, False, False)
    assert alice.account_sid == creds.account_sid
    assert alice.service_sid == obj.service_sid
    assert getattr(alice, f"{kind}_sid") == obj.sid
    assert alice.url == f"{obj.url}/Permissions/alice"

    changed = perms("alice").update(read=True, write=True, manage=True)
    assert (changed.read, changed.write, changed.manage) == (True, True, True)
    fetched = perms("alice").fetch()
    assert (fetched.identity, fetched.read, fetched.write, fetched.manage) == (
        "alice",
        True,
        True,
        True,
    )

    identities = ["bob", "carol", "dave"]
    for who in identities:
        perms(who).update(read=True, write=who == "bob", manage=False)
    # The object's unique name works as the path id too.
    by_name = _permissions(service, kind, obj.unique_name)("bob").fetch()
    assert (by_name.identity, by_name.write) == ("bob", True)

    http = tw[1]
    before = len(http.gets("/Permissions"))
    listed = perms.list(page_size=1)
    assert len(http.gets("/Permissions")) - before >= 4
    assert sorted(p.identity for p in listed) == sorted(["alice", *identities])

    assert perms("alice").delete() is True
    with pytest.raises(TwilioRestException) as err:
        perms("alice").fetch()
    assert_twilio_error(err.value, 404, 54354)
    with pytest.raises(TwilioRestException) as err:
        perms("alice").delete()
    assert_twilio_error(err.value, 404, 54354)
    assert sorted(p.identity for p in perms.list()) == identities


# ---- official twilio package: lists and list items -------------------------------------


def test_twilio_lists_create_fetch_update_list_delete(
    service: Any, tw: tuple[Any, RewritingHttpClient]
) -> None:
    name = uniq("list")
    lst = service.sync_lists.create(unique_name=name)
    assert_sid(lst.sid, "ES")
    assert lst.unique_name == name
    assert isinstance(lst.revision, str)
    assert lst.date_expires is None
    assert_date(lst.date_created)
    assert lst.url.endswith(f"/Lists/{lst.sid}")
    assert lst.links == {"items": f"{lst.url}/Items", "permissions": f"{lst.url}/Permissions"}

    for got in (service.sync_lists(lst.sid).fetch(), service.sync_lists(name).fetch()):
        assert (got.sid, got.unique_name, got.url) == (lst.sid, name, lst.url)

    updated = service.sync_lists(name).update(ttl=600)
    assert updated.sid == lst.sid
    expires = assert_date(updated.date_expires)
    assert timedelta(seconds=590) <= expires - datetime.now(UTC) <= timedelta(seconds=610)
    again = service.sync_lists(lst.sid).update(collection_ttl=7200)
    assert assert_date(again.date_expires) - expires >= timedelta(seconds=6500)
    assert service.sync_lists(lst.sid).fetch().date_expires == again.date_expires

    with_ttl = service.sync_lists.create(ttl=60)
    assert_date(with_ttl.date_expires)
    assert with_ttl.unique_name is None
    others = [with_ttl.sid, *(service.sync_lists.create().sid for _ in range(3))]
    http = tw[1]
    before = len(http.gets("/Lists"))
    listed = service.sync_lists.list(page_size=3)
    assert len(http.gets("/Lists")) - before == 2
    assert sorted(x.sid for x in listed) == sorted([lst.sid, *others])

    assert service.sync_lists(name).delete() is True
    with pytest.raises(TwilioRestException) as err:
        service.sync_lists(lst.sid).fetch()
    assert_twilio_error(err.value, 404, 54150)
    assert sorted(x.sid for x in service.sync_lists.list()) == sorted(others)


def test_twilio_list_items_create_fetch_update_list_delete(
    service: Any, tw: tuple[Any, RewritingHttpClient]
) -> None:
    lst = service.sync_lists.create(unique_name=uniq("list"))
    items = service.sync_lists(lst.sid).sync_list_items

    created = [items.create(data={"n": n}) for n in range(10)]
    assert [it.index for it in created] == list(range(10))
    first = created[0]
    assert first.data == {"n": 0}
    assert first.list_sid == lst.sid
    assert first.service_sid == lst.service_sid
    assert first.url == f"{lst.url}/Items/0"
    assert first.date_expires is None
    assert_date(first.date_created)
    assert isinstance(first.revision, str)

    with_ttl = items.create(data={"n": 10}, ttl=300)
    assert with_ttl.index == 10
    assert_date(with_ttl.date_expires)
    created.append(with_ttl)

    fetched = items(3).fetch()
    assert (fetched.index, fetched.data, fetched.revision) == (3, {"n": 3}, created[3].revision)
    # The list's unique name works as the path id.
    assert service.sync_lists(lst.unique_name).sync_list_items(3).fetch().data == {"n": 3}

    updated = items(3).update(data={"n": 33})
    assert (updated.index, updated.data) == (3, {"n": 33})
    assert updated.revision != created[3].revision
    guarded = items(3).update(data={"n": 333}, if_match=updated.revision)
    assert guarded.data == {"n": 333}
    with pytest.raises(TwilioRestException) as err:
        items(3).update(data={"n": 0}, if_match=updated.revision)
    assert_twilio_error(err.value, 412, 54155)
    assert items(3).fetch().data == {"n": 333}
    ttl_only = items(4).update(item_ttl=900)
    assert ttl_only.data == {"n": 4}
    assert_date(ttl_only.date_expires)

    http = tw[1]
    before = len(http.gets("/Items"))
    asc = items.list(page_size=3)
    assert len(http.gets("/Items")) - before == 4, "11 items, page_size=3: four pages"
    assert [it.index for it in asc] == list(range(11))
    assert [it.data["n"] for it in asc][:5] == [0, 1, 2, 333, 4]

    desc = items.list(order="desc", page_size=4)
    assert [it.index for it in desc] == list(range(10, -1, -1))

    def indexes(**kwargs: Any) -> list[int]:
        return [it.index for it in items.list(page_size=2, **kwargs)]

    assert indexes(from_="5") == list(range(5, 11))
    assert indexes(from_="5", bounds="inclusive") == list(range(5, 11))
    assert indexes(from_="5", bounds="exclusive") == list(range(6, 11))
    assert indexes(from_="5", order="desc") == [5, 4, 3, 2, 1, 0]
    assert indexes(from_="5", order="desc", bounds="exclusive") == [4, 3, 2, 1, 0]
    assert [it.index for it in items.list(limit=4, page_size=3)] == [0, 1, 2, 3]
    page = items.page(page_size=5)
    assert [it.index for it in page] == [0, 1, 2, 3, 4]
    assert [it.index for it in page.next_page()] == [5, 6, 7, 8, 9]

    assert items(5).delete() is True
    with pytest.raises(TwilioRestException) as err:
        items(5).fetch()
    assert_twilio_error(err.value, 404, 54151)
    # twilio 9.13.0 drops `if_match` on delete (its _delete() resets the headers), so a
    # conditional delete cannot be expressed with it; test_if_match_mismatch_is_412 covers it.
    assert items(6).delete(if_match=items(6).fetch().revision) is True
    assert [it.index for it in items.list()] == [0, 1, 2, 3, 4, 7, 8, 9, 10]
    assert items.create(data={"n": 11}).index == 11, "indexes are never reused"


# ---- official twilio package: maps and map items ---------------------------------------


def test_twilio_maps_create_fetch_update_list_delete(
    service: Any, tw: tuple[Any, RewritingHttpClient]
) -> None:
    name = uniq("map")
    mp = service.sync_maps.create(unique_name=name, ttl=3600)
    assert_sid(mp.sid, "MP")
    assert mp.unique_name == name
    assert isinstance(mp.revision, str)
    assert_date(mp.date_expires)
    assert mp.links == {"items": f"{mp.url}/Items", "permissions": f"{mp.url}/Permissions"}
    for got in (service.sync_maps(mp.sid).fetch(), service.sync_maps(name).fetch()):
        assert (got.sid, got.unique_name, got.date_expires) == (mp.sid, name, mp.date_expires)

    updated = service.sync_maps(name).update(ttl=60)
    assert updated.sid == mp.sid
    assert assert_date(updated.date_expires) < mp.date_expires

    others = [service.sync_maps.create().sid for _ in range(4)]
    http = tw[1]
    before = len(http.gets("/Maps"))
    listed = service.sync_maps.list(page_size=2)
    assert len(http.gets("/Maps")) - before == 3
    assert sorted(m.sid for m in listed) == sorted([mp.sid, *others])

    assert service.sync_maps(mp.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        service.sync_maps(name).fetch()
    assert_twilio_error(err.value, 404, 54200)
    assert sorted(m.sid for m in service.sync_maps.list()) == sorted(others)


def test_twilio_map_items_create_fetch_update_list_delete(
    service: Any, tw: tuple[Any, RewritingHttpClient]
) -> None:
    mp = service.sync_maps.create(unique_name=uniq("map"))
    items = service.sync_maps(mp.sid).sync_map_items
    keys = [f"k{n:02d}" for n in range(9)]
    created = {k: items.create(key=k, data={"k": k}) for k in reversed(keys)}
    first = created["k00"]
    assert first.key == "k00"
    assert first.data == {"k": "k00"}
    assert first.map_sid == mp.sid
    assert first.url == f"{mp.url}/Items/k00"
    assert isinstance(first.revision, str)
    assert_date(first.date_created)
    assert first.date_expires is None

    with pytest.raises(TwilioRestException) as err:
        items.create(key="k00", data={"again": True})
    assert_twilio_error(err.value, 409, 54208)
    assert items("k00").fetch().data == {"k": "k00"}

    odd = items.create(key="a key/with spaces & slash", data={"odd": True}, item_ttl=600)
    assert odd.key == "a key/with spaces & slash"
    assert_date(odd.date_expires)
    assert items("a key/with spaces & slash").fetch().data == {"odd": True}
    assert items("a key/with spaces & slash").delete() is True

    fetched = service.sync_maps(mp.unique_name).sync_map_items("k03").fetch()
    assert (fetched.key, fetched.data, fetched.revision) == (
        "k03",
        {"k": "k03"},
        created["k03"].revision,
    )
    updated = items("k03").update(data={"k": "new"})
    assert (updated.key, updated.data) == ("k03", {"k": "new"})
    assert updated.revision != created["k03"].revision
    guarded = items("k03").update(data={"k": "newer"}, if_match=updated.revision)
    assert guarded.data == {"k": "newer"}
    with pytest.raises(TwilioRestException) as err:
        items("k03").update(data={"k": "lost"}, if_match=updated.revision)
    assert_twilio_error(err.value, 412, 54205)
    assert items("k03").fetch().data == {"k": "newer"}

    http = tw[1]
    before = len(http.gets("/Items"))
    asc = items.list(page_size=2)
    assert len(http.gets("/Items")) - before == 5
    assert [it.key for it in asc] == keys
    assert [it.key for it in items.list(order="desc", page_size=4)] == keys[::-1]

    def listed(**kwargs: Any) -> list[str]:
        return [it.key for it in items.list(page_size=2, **kwargs)]

    assert listed(from_="k04") == keys[4:]
    assert listed(from_="k04", bounds="exclusive") == keys[5:]
    assert listed(from_="k04", order="desc") == keys[4::-1]
    assert listed(from_="k04", order="desc", bounds="exclusive") == keys[3::-1]

    # (twilio 9.13.0 does not send If-Match on delete; see the list item test.)
    assert items("k05").delete(if_match=items("k05").fetch().revision) is True
    assert items("k06").delete() is True
    with pytest.raises(TwilioRestException) as err:
        items("k06").fetch()
    assert_twilio_error(err.value, 404, 54201)
    assert [it.key for it in items.list()] == [k for k in keys if k not in ("k05", "k06")]


# ---- official twilio package: streams --------------------------------------------------


def test_twilio_streams_and_messages(service: Any, tw: tuple[Any, RewritingHttpClient]) -> None:
    name = uniq("stream")
    st = service.sync_streams.create(unique_name=name)
    assert_sid(st.sid, "TO")
    assert st.unique_name == name
    assert st.date_expires is None
    assert_date(st.date_created)
    assert st.url.endswith(f"/Streams/{st.sid}")
    assert st.links == {"messages": f"{st.url}/Messages"}
    for got in (service.sync_streams(st.sid).fetch(), service.sync_streams(name).fetch()):
        assert (got.sid, got.unique_name) == (st.sid, name)

    updated = service.sync_streams(name).update(ttl=900)
    assert updated.sid == st.sid
    assert_date(updated.date_expires)
    assert service.sync_streams(st.sid).fetch().date_expires == updated.date_expires

    message = service.sync_streams(st.sid).stream_messages.create(data={"hello": "world"})
    assert_sid(message.sid, "TZ")
    assert message.data == {"hello": "world"}
    by_name = service.sync_streams(name).stream_messages.create(data={"n": 2})
    assert by_name.sid != message.sid

    others = [service.sync_streams.create(ttl=60).sid for _ in range(2)]
    http = tw[1]
    before = len(http.gets("/Streams"))
    listed = service.sync_streams.list(page_size=1)
    assert len(http.gets("/Streams")) - before == 3
    assert sorted(s.sid for s in listed) == sorted([st.sid, *others])

    assert service.sync_streams(st.sid).delete() is True
    with pytest.raises(TwilioRestException) as err:
        service.sync_streams(name).fetch()
    assert err.value.status == 404
    with pytest.raises(TwilioRestException) as err:
        service.sync_streams(st.sid).stream_messages.create(data={"late": True})
    assert err.value.status == 404


def test_twilio_account_sid_and_auth_token(server: ServerProcess) -> None:
    client, http = twilio_client(server, account_auth=True)
    sync = client.sync.v1
    creds = server.credentials
    assert creds is not None
    svc = sync.services.create(friendly_name=uniq("acct"))
    try:
        assert svc.account_sid == creds.account_sid
        service = sync.services(svc.sid)
        doc = service.documents.create(unique_name=uniq("doc"), data={"via": "auth token"})
        assert service.documents(doc.unique_name).fetch().data == {"via": "auth token"}
        item = service.sync_maps.create().sync_map_items.create(key="k", data={"v": 1})
        assert item.key == "k"
        assert creds.service_sid in {s.sid for s in sync.services.list()}
        assert all(call[1].startswith(server.url) for call in http.calls)
    finally:
        sync.services(svc.sid).delete()
    wrong = TwilioClient(
        creds.account_sid, "0" * 32, http_client=RewritingHttpClient(server.url)
    ).sync.v1
    with pytest.raises(TwilioRestException) as err:
        wrong.services(creds.service_sid).fetch()
    assert_twilio_error(err.value, 401, 20003)


# ---- raw HTTP --------------------------------------------------------------------------


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    creds = server.credentials
    assert creds is not None
    with httpx.Client(
        base_url=server.url, auth=(creds.api_key_sid, creds.api_secret), timeout=15
    ) as client:
        yield client


@pytest.fixture
def base(http: httpx.Client) -> Iterator[str]:
    """`/v1/Services/<sid>` of a service of this test's own."""
    response = http.post("/v1/Services", data={"FriendlyName": uniq("raw")})
    assert response.status_code == 201, response.text
    sid = response.json()["sid"]
    yield f"/v1/Services/{sid}"
    http.delete(f"/v1/Services/{sid}")


def expect_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}", body
    return body


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


def json_data(value: object) -> str:
    return orjson.dumps(value).decode()


def test_authentication_required(server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    path = f"/v1/Services/{creds.service_sid}/Documents"
    attempts: list[dict[str, Any]] = [
        {},
        {"auth": (creds.api_key_sid, creds.api_secret + "x")},
        {"auth": (creds.account_sid, "wrong")},
        {"auth": ("SK" + "0" * 32, creds.api_secret)},
        {"headers": {"Authorization": "Bearer " + server.token()}},
        {"headers": {"Authorization": "Basic !!!not-base64"}},
    ]
    with httpx.Client(base_url=server.url, timeout=15) as client:
        for kwargs in attempts:
            for method, url in (("GET", path), ("POST", path), ("GET", "/v1/Services")):
                response = client.request(method, url, **kwargs)
                expect_error(response, 401, 20003)
                assert response.headers["www-authenticate"].lower().startswith("basic")
        assert client.get(path, auth=(creds.api_key_sid, creds.api_secret)).status_code == 200
        assert client.get(path, auth=(creds.account_sid, creds.auth_token)).status_code == 200


def test_status_codes_create_fetch_update_delete(
    http: httpx.Client, base: str, server: ServerProcess
) -> None:
    for kind in KINDS:
        coll = f"{base}/{COLLECTION[kind]}"
        obj = created(http.post(coll, data={"UniqueName": uniq(kind)}))
        assert_sid(obj["sid"], SID_PREFIX[kind])
        for key in ("date_created", "date_updated"):
            assert_raw_date(obj[key])
        assert obj["date_expires"] is None
        assert obj["url"] == f"{server.url}{coll}/{obj['sid']}"
        assert isinstance(obj["links"], dict) and obj["links"]
        assert ok(http.get(f"{coll}/{obj['sid']}"))["sid"] == obj["sid"]
        assert ok(http.post(f"{coll}/{obj['sid']}", data={"Ttl": "60"}))["sid"] == obj["sid"]
        deleted = http.delete(f"{coll}/{obj['sid']}")
        assert deleted.status_code == 204 and deleted.content == b""
        expect_error(http.get(f"{coll}/{obj['sid']}"), 404, NOT_FOUND_CODE[kind])

    lst = created(http.post(f"{base}/Lists"))
    item = created(http.post(f"{base}/Lists/{lst['sid']}/Items", data={"Data": '{"a":1}'}))
    assert item["index"] == 0
    assert ok(http.get(f"{base}/Lists/{lst['sid']}/Items/0"))["data"] == {"a": 1}
    assert ok(http.post(f"{base}/Lists/{lst['sid']}/Items/0", data={"Data": "{}"}))["data"] == {}
    assert http.delete(f"{base}/Lists/{lst['sid']}/Items/0").status_code == 204

    mp = created(http.post(f"{base}/Maps"))
    item = created(http.post(f"{base}/Maps/{mp['sid']}/Items", data={"Key": "k", "Data": "{}"}))
    assert item["key"] == "k"
    assert ok(http.get(f"{base}/Maps/{mp['sid']}/Items/k"))["key"] == "k"
    assert ok(http.post(f"{base}/Maps/{mp['sid']}/Items/k", data={"Data": '{"b":2}'}))["data"] == {
        "b": 2
    }
    assert http.delete(f"{base}/Maps/{mp['sid']}/Items/k").status_code == 204

    perm_url = f"{base}/Maps/{mp['sid']}/Permissions/someone"
    flags = {"Read": "true", "Write": "false", "Manage": "false"}
    assert ok(http.post(perm_url, data=flags))["read"] is True
    assert ok(http.get(perm_url))["identity"] == "someone"
    assert http.delete(perm_url).status_code == 204

    st = created(http.post(f"{base}/Streams"))
    message = created(http.post(f"{base}/Streams/{st['sid']}/Messages", data={"Data": "{}"}))
    assert_sid(message["sid"], "TZ")
    assert message["data"] == {}

    svc = created(http.post("/v1/Services", data={"FriendlyName": "codes"}))
    assert ok(http.get(f"/v1/Services/{svc['sid']}"))["sid"] == svc["sid"]
    assert (
        ok(http.post(f"/v1/Services/{svc['sid']}", data={"FriendlyName": "x"}))["friendly_name"]
        == "x"
    )
    assert http.delete(f"/v1/Services/{svc['sid']}").status_code == 204


def test_unsupported_method_is_405(http: httpx.Client, base: str) -> None:
    doc = created(http.post(f"{base}/Documents"))["sid"]
    for method, url in (
        ("PUT", "/v1/Services"),
        ("PATCH", base),
        ("DELETE", f"{base}/Documents"),
        ("PUT", f"{base}/Documents/{doc}"),
        ("GET", f"{base}/Streams/x/Messages"),
        ("POST", f"{base}/Lists/x/Permissions"),
    ):
        response = http.request(method, url)
        assert response.status_code == 405, (method, url, response.text)
        body = response.json()
        assert set(body) == ERROR_KEYS and body["status"] == 405, body
    expect_error(http.get(f"{base}/NoSuchCollection"), 404, 20404)


def test_not_found_codes(http: httpx.Client, base: str) -> None:
    missing_service = "/v1/Services/IS" + "0" * 32
    expect_error(http.get(missing_service), 404, 54050)
    expect_error(http.post(missing_service, data={"FriendlyName": "x"}), 404, 54050)
    expect_error(http.delete(missing_service), 404, 54050)
    expect_error(http.get(missing_service + "/Documents"), 404, 54050)
    expect_error(http.post(missing_service + "/Lists"), 404, 54050)
    expect_error(http.get("/v1/Services/no-such-unique-name"), 404, 54050)

    for kind in KINDS:
        coll = f"{base}/{COLLECTION[kind]}"
        for ident in (SID_PREFIX[kind] + "0" * 32, "no-such-name"):
            expect_error(http.get(f"{coll}/{ident}"), 404, NOT_FOUND_CODE[kind])
            expect_error(http.post(f"{coll}/{ident}", data={"Ttl": "5"}), 404, NOT_FOUND_CODE[kind])
            expect_error(http.delete(f"{coll}/{ident}"), 404, NOT_FOUND_CODE[kind])
    expect_error(http.get(f"{base}/Documents/nope/Permissions"), 404, 54100)
    expect_error(http.get(f"{base}/Lists/nope/Items"), 404, 54150)
    expect_error(http.post(f"{base}/Lists/nope/Items", data={"Data": "{}"}), 404, 54150)
    expect_error(http.get(f"{base}/Lists/nope/Items/0"), 404, 54150)
    expect_error(http.get(f"{base}/Maps/nope/Items"), 404, 54200)
    expect_error(http.get(f"{base}/Maps/nope/Items/k"), 404, 54200)
    expect_error(http.post(f"{base}/Maps/nope/Items", data={"Key": "k", "Data": "{}"}), 404, 54200)

    lst = created(http.post(f"{base}/Lists"))["sid"]
    mp = created(http.post(f"{base}/Maps"))["sid"]
    doc = created(http.post(f"{base}/Documents"))["sid"]
    expect_error(http.get(f"{base}/Lists/{lst}/Items/0"), 404, 54151)
    expect_error(http.post(f"{base}/Lists/{lst}/Items/7", data={"Data": "{}"}), 404, 54151)
    expect_error(http.delete(f"{base}/Lists/{lst}/Items/3"), 404, 54151)
    expect_error(http.get(f"{base}/Maps/{mp}/Items/absent"), 404, 54201)
    expect_error(http.post(f"{base}/Maps/{mp}/Items/absent", data={"Data": "{}"}), 404, 54201)
    expect_error(http.delete(f"{base}/Maps/{mp}/Items/absent"), 404, 54201)
    for coll, sid in (("Documents", doc), ("Lists", lst), ("Maps", mp)):
        expect_error(http.get(f"{base}/{coll}/{sid}/Permissions/nobody"), 404, 54354)
        expect_error(http.delete(f"{base}/{coll}/{sid}/Permissions/nobody"), 404, 54354)


def test_if_match_mismatch_is_412(http: httpx.Client, base: str) -> None:
    doc = created(http.post(f"{base}/Documents", data={"Data": '{"v":1}'}))
    url = f"{base}/Documents/{doc['sid']}"
    stale = {"If-Match": doc["revision"] + "-stale"}
    expect_error(http.post(url, data={"Data": '{"v":2}'}, headers=stale), 412, 54103)
    assert ok(http.get(url))["data"] == {"v": 1}
    fresh = ok(http.post(url, data={"Data": '{"v":3}'}, headers={"If-Match": doc["revision"]}))
    assert fresh["data"] == {"v": 3} and fresh["revision"] != doc["revision"]
    expect_error(
        http.post(url, data={"Data": '{"v":4}'}, headers={"If-Match": doc["revision"]}), 412, 54103
    )

    lst = created(http.post(f"{base}/Lists"))["sid"]
    item = created(http.post(f"{base}/Lists/{lst}/Items", data={"Data": '{"v":1}'}))
    item_url = f"{base}/Lists/{lst}/Items/{item['index']}"
    stale = {"If-Match": item["revision"] + "-stale"}
    expect_error(http.post(item_url, data={"Data": '{"v":2}'}, headers=stale), 412, 54155)
    expect_error(http.delete(item_url, headers=stale), 412, 54155)
    assert ok(http.get(item_url))["data"] == {"v": 1}
    assert http.delete(item_url, headers={"If-Match": item["revision"]}).status_code == 204

    mp = created(http.post(f"{base}/Maps"))["sid"]
    item = created(http.post(f"{base}/Maps/{mp}/Items", data={"Key": "k", "Data": '{"v":1}'}))
    item_url = f"{base}/Maps/{mp}/Items/k"
    stale = {"If-Match": item["revision"] + "-stale"}
    expect_error(http.post(item_url, data={"Data": '{"v":2}'}, headers=stale), 412, 54205)
    expect_error(http.delete(item_url, headers=stale), 412, 54205)
    assert ok(http.get(item_url))["data"] == {"v": 1}
    assert http.delete(item_url, headers={"If-Match": item["revision"]}).status_code == 204


def test_conflicts_are_409(http: httpx.Client, base: str) -> None:
    for kind in KINDS:
        coll = f"{base}/{COLLECTION[kind]}"
        name = uniq(kind)
        first = created(http.post(coll, data={"UniqueName": name}))
        expect_error(http.post(coll, data={"UniqueName": name}), 409, 54301)
        assert [ok(http.get(f"{coll}/{name}"))["sid"]] == [first["sid"]]
    mp = created(http.post(f"{base}/Maps"))["sid"]
    created(http.post(f"{base}/Maps/{mp}/Items", data={"Key": "dup", "Data": '{"v":1}'}))
    expect_error(
        http.post(f"{base}/Maps/{mp}/Items", data={"Key": "dup", "Data": '{"v":2}'}), 409, 54208
    )
    assert ok(http.get(f"{base}/Maps/{mp}/Items/dup"))["data"] == {"v": 1}


def test_data_over_16_kib_is_413(http: httpx.Client, base: str) -> None:
    big = json_data(BIG_DATA)
    doc = created(http.post(f"{base}/Documents", data={"Data": '{"v":1}'}))["sid"]
    lst = created(http.post(f"{base}/Lists"))["sid"]
    created(http.post(f"{base}/Lists/{lst}/Items", data={"Data": '{"v":1}'}))
    mp = created(http.post(f"{base}/Maps"))["sid"]
    created(http.post(f"{base}/Maps/{mp}/Items", data={"Key": "k", "Data": '{"v":1}'}))
    st = created(http.post(f"{base}/Streams"))["sid"]
    for url, form in (
        (f"{base}/Documents", {"Data": big}),
        (f"{base}/Documents/{doc}", {"Data": big}),
        (f"{base}/Lists/{lst}/Items", {"Data": big}),
        (f"{base}/Lists/{lst}/Items/0", {"Data": big}),
        (f"{base}/Maps/{mp}/Items", {"Key": "big", "Data": big}),
        (f"{base}/Maps/{mp}/Items/k", {"Data": big}),
        (f"{base}/Streams/{st}/Messages", {"Data": big}),
    ):
        expect_error(http.post(url, data=form), 413, 54006)
    assert ok(http.get(f"{base}/Documents/{doc}"))["data"] == {"v": 1}
    assert ok(http.get(f"{base}/Lists/{lst}/Items/0"))["data"] == {"v": 1}
    assert ok(http.get(f"{base}/Maps/{mp}/Items/k"))["data"] == {"v": 1}
    expect_error(http.get(f"{base}/Maps/{mp}/Items/big"), 404, 54201)
    assert [d["sid"] for d in ok(http.get(f"{base}/Documents"))["documents"]] == [doc]


def test_negative_ttl_is_400(http: httpx.Client, base: str) -> None:
    doc = created(http.post(f"{base}/Documents"))["sid"]
    lst = created(http.post(f"{base}/Lists"))["sid"]
    created(http.post(f"{base}/Lists/{lst}/Items", data={"Data": "{}"}))
    mp = created(http.post(f"{base}/Maps"))["sid"]
    st = created(http.post(f"{base}/Streams"))["sid"]
    for url, form in (
        (f"{base}/Documents", {"Ttl": "-1"}),
        (f"{base}/Lists", {"Ttl": "-1"}),
        (f"{base}/Lists", {"CollectionTtl": "-1"}),
        (f"{base}/Maps", {"Ttl": "-1"}),
        (f"{base}/Streams", {"Ttl": "-1"}),
        (f"{base}/Documents/{doc}", {"Ttl": "-1"}),
        (f"{base}/Lists/{lst}", {"Ttl": "-1"}),
        (f"{base}/Maps/{mp}", {"CollectionTtl": "-1"}),
        (f"{base}/Streams/{st}", {"Ttl": "-1"}),
        (f"{base}/Lists/{lst}/Items", {"Data": "{}", "Ttl": "-1"}),
        (f"{base}/Lists/{lst}/Items", {"Data": "{}", "ItemTtl": "-1"}),
        (f"{base}/Lists/{lst}/Items/0", {"ItemTtl": "-1"}),
        (f"{base}/Maps/{mp}/Items", {"Key": "k", "Data": "{}", "CollectionTtl": "-1"}),
    ):
        expect_error(http.post(url, data=form), 400, 54011)
    assert [d["sid"] for d in ok(http.get(f"{base}/Documents"))["documents"]] == [doc]
    assert ok(http.get(f"{base}/Maps/{mp}/Items"))["items"] == []


def _collect(http: httpx.Client, first_url: str, key: str, page_size: int) -> list[dict[str, Any]]:
    """Every record from `first_url` on, following next_page_url exactly as given."""
    records: list[dict[str, Any]] = []
    url: str | None = first_url
    page_no = 0
    while url is not None:
        body = ok(http.get(url))
        assert set(body) == {key, "meta"}, body.keys()
        meta = body["meta"]
        assert set(meta) == META_KEYS, meta
        assert meta["key"] == key
        assert meta["page"] == page_no
        assert meta["page_size"] == page_size
        assert isinstance(meta["first_page_url"], str)
        assert meta["first_page_url"].startswith(str(http.base_url).rstrip("/") + "/v1/")
        assert isinstance(meta["url"], str) and f"PageSize={page_size}" in meta["url"]
        page = body[key]
        assert isinstance(page, list) and len(page) <= page_size
        records.extend(page)
        url = meta["next_page_url"]
        if url is not None:
            assert url.startswith("http"), url
            assert len(page) == page_size, "only a full page may have a next page"
        page_no += 1
        assert page_no < 100, "paging does not end"
    return records


def test_list_pages_visit_every_record_once(http: httpx.Client, base: str) -> None:
    n = 7
    docs = [created(http.post(f"{base}/Documents", data={"Data": "{}"}))["sid"] for _ in range(n)]
    lists = [created(http.post(f"{base}/Lists"))["sid"] for _ in range(n)]
    maps = [created(http.post(f"{base}/Maps"))["sid"] for _ in range(n)]
    streams = [created(http.post(f"{base}/Streams"))["sid"] for _ in range(n)]
    for _ in range(n):
        created(http.post(f"{base}/Lists/{lists[0]}/Items", data={"Data": "{}"}))
    keys = [f"key {i}" for i in range(n)]
    for key in keys:
        created(http.post(f"{base}/Maps/{maps[0]}/Items", data={"Key": key, "Data": "{}"}))
    identities = [f"user{i}@example.com" for i in range(n)]
    flags = {"Read": "true", "Write": "true", "Manage": "false"}
    for who in identities:
        ok(http.post(f"{base}/Documents/{docs[0]}/Permissions/{who}", data=flags))

    cases: list[tuple[str, str, Callable[[dict[str, Any]], Any], list[Any]]] = [
        (f"{base}/Documents", "documents", lambda r: r["sid"], docs),
        (f"{base}/Lists", "lists", lambda r: r["sid"], lists),
        (f"{base}/Maps", "maps", lambda r: r["sid"], maps),
        (f"{base}/Streams", "streams", lambda r: r["sid"], streams),
        (f"{base}/Lists/{lists[0]}/Items", "items", lambda r: r["index"], list(range(n))),
        (f"{base}/Maps/{maps[0]}/Items", "items", lambda r: r["key"], keys),
        (
            f"{base}/Documents/{docs[0]}/Permissions",
            "permissions",
            lambda r: r["identity"],
            identities,
        ),
    ]
    for page_size in (1, 3, 7, 100):
        for url, key, ident, expected in cases:
            records = _collect(http, f"{url}?PageSize={page_size}", key, page_size)
            seen = [ident(r) for r in records]
            assert len(seen) == len(set(seen)), f"{url}: a record was listed twice: {seen}"
            assert sorted(seen) == sorted(expected), url
    desc = _collect(http, f"{base}/Lists/{lists[0]}/Items?PageSize=2&Order=desc", "items", 2)
    assert [r["index"] for r in desc] == list(range(n - 1, -1, -1))
    desc = _collect(http, f"{base}/Maps/{maps[0]}/Items?PageSize=2&Order=desc", "items", 2)
    assert [r["key"] for r in desc] == keys[::-1]
    bounded = _collect(
        http, f"{base}/Lists/{lists[0]}/Items?PageSize=2&From=2&Bounds=exclusive", "items", 2
    )
    assert [r["index"] for r in bounded] == list(range(3, n))

    services = _collect(http, "/v1/Services?PageSize=2", "services", 2)
    service_sids = [s["sid"] for s in services]
    assert len(service_sids) == len(set(service_sids))
    assert base.rsplit("/", 1)[1] in service_sids

    body = ok(http.get(f"{base}/Documents?PageSize=100"))
    assert body["meta"]["next_page_url"] is None
    assert body["meta"]["previous_page_url"] is None
    assert body["meta"]["page_size"] == 100
    default = ok(http.get(f"{base}/Documents"))
    assert default["meta"]["page_size"] == 50
    for bad in ("101", "0", "-1", "abc"):
        response = http.get(f"{base}/Documents?PageSize={bad}")
        assert response.status_code == 400, (bad, response.text)
        assert set(response.json()) == ERROR_KEYS


def test_path_id_may_be_sid_or_unique_name(http: httpx.Client, base: str) -> None:
    svc_name = uniq("svc-name")
    svc = ok(http.post(base, data={"UniqueName": svc_name}))
    assert svc["unique_name"] == svc_name
    assert ok(http.get(f"/v1/Services/{svc_name}"))["sid"] == svc["sid"]
    by_name_base = f"/v1/Services/{svc_name}"
    for kind in KINDS:
        name = uniq(kind)
        obj = created(http.post(f"{by_name_base}/{COLLECTION[kind]}", data={"UniqueName": name}))
        assert obj["service_sid"] == svc["sid"]
        for ident in (obj["sid"], name):
            got = ok(http.get(f"{base}/{COLLECTION[kind]}/{ident}"))
            assert (got["sid"], got["unique_name"]) == (obj["sid"], name)
        assert ok(http.post(f"{base}/{COLLECTION[kind]}/{name}", data={"Ttl": "3600"}))[
            "date_expires"
        ]
        if kind == "list":
            created(http.post(f"{base}/Lists/{name}/Items", data={"Data": '{"x":1}'}))
            assert ok(http.get(f"{base}/Lists/{name}/Items/0"))["list_sid"] == obj["sid"]
        if kind == "map":
            created(http.post(f"{base}/Maps/{name}/Items", data={"Key": "k", "Data": "{}"}))
            assert ok(http.get(f"{base}/Maps/{name}/Items/k"))["map_sid"] == obj["sid"]
        if kind == "stream":
            created(http.post(f"{base}/Streams/{name}/Messages", data={"Data": "{}"}))
        assert http.delete(f"{base}/{COLLECTION[kind]}/{name}").status_code == 204
        expect_error(http.get(f"{base}/{COLLECTION[kind]}/{obj['sid']}"), 404, NOT_FOUND_CODE[kind])


def test_representations(http: httpx.Client, base: str, server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    service_sid = base.rsplit("/", 1)[1]
    root = f"{server.url}/v1/Services/{service_sid}"
    doc = created(
        http.post(
            f"{base}/Documents", data={"UniqueName": "rep", "Data": '{"a":[1,2]}', "Ttl": "60"}
        )
    )
    assert doc == {
        "sid": doc["sid"],
        "unique_name": "rep",
        "account_sid": creds.account_sid,
        "service_sid": service_sid,
        "url": f"{root}/Documents/{doc['sid']}",
        "revision": doc["revision"],
        "data": {"a": [1, 2]},
        "links": {"permissions": f"{root}/Documents/{doc['sid']}/Permissions"},
        "date_expires": doc["date_expires"],
        "date_created": doc["date_created"],
        "date_updated": doc["date_updated"],
        "created_by": "system",
    }
    for key in ("date_expires", "date_created", "date_updated"):
        assert_raw_date(doc[key])
    assert isinstance(doc["revision"], str)

    lst = created(http.post(f"{base}/Lists"))
    item = created(http.post(f"{base}/Lists/{lst['sid']}/Items", data={"Data": '{"b":1}'}))
    assert item == {
        "index": 0,
        "account_sid": creds.account_sid,
        "service_sid": service_sid,
        "list_sid": lst["sid"],
        "url": f"{root}/Lists/{lst['sid']}/Items/0",
        "revision": item["revision"],
        "data": {"b": 1},
        "date_expires": None,
        "date_created": item["date_created"],
        "date_updated": item["date_updated"],
        "created_by": "system",
    }
    mp = created(http.post(f"{base}/Maps"))
    mitem = created(
        http.post(f"{base}/Maps/{mp['sid']}/Items", data={"Key": "a/b c", "Data": "{}"})
    )
    assert mitem["key"] == "a/b c"
    assert mitem["map_sid"] == mp["sid"]
    assert mitem["url"] == f"{root}/Maps/{mp['sid']}/Items/a%2Fb%20c"
    assert ok(http.get(mitem["url"]))["key"] == "a/b c"
    st = created(http.post(f"{base}/Streams"))
    assert st["links"] == {"messages": f"{root}/Streams/{st['sid']}/Messages"}
    assert "revision" not in st and "data" not in st
    perm = ok(
        http.post(
            f"{base}/Lists/{lst['sid']}/Permissions/bob",
            data={"Read": "true", "Write": "false", "Manage": "true"},
        )
    )
    assert perm == {
        "account_sid": creds.account_sid,
        "service_sid": service_sid,
        "list_sid": lst["sid"],
        "identity": "bob",
        "read": True,
        "write": False,
        "manage": True,
        "url": f"{root}/Lists/{lst['sid']}/Permissions/bob",
    }


# ---- REST <-> realtime -------------------------------------------------------------------


def listen(handle: Any, event: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    handle.on(event, queue.put_nowait)
    return queue


@pytest.fixture
def default_service(server: ServerProcess) -> Any:
    """The default service (the one SDK tokens are bound to), via the official package."""
    creds = server.credentials
    assert creds is not None
    client, _ = twilio_client(server)
    return client.sync.v1.services(creds.service_sid)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def assert_quiet(queue: asyncio.Queue[Any], wait: float = 0.2) -> None:
    await asyncio.sleep(wait)
    assert queue.empty(), f"unexpected event {queue.get_nowait()!r}"


async def test_rest_document_update_reaches_sdk_subscribers(
    server: ServerProcess, default_service: Any
) -> None:
    name = uniq("rt-doc")
    rest_doc = await call(default_service.documents.create, unique_name=name, data={"v": 0})
    async with server.client("alice") as alice:
        doc = await alice.document(name)
        assert doc.sid == rest_doc.sid
        assert doc.data == {"v": 0}
        updates = listen(doc, "updated")
        rest = await call(default_service.documents(name).update, data={"v": 1, "by": "rest"})
        ev = await next_event(updates)
        assert isinstance(ev, DocumentUpdatedEvent)
        assert ev.is_local is False
        assert ev.data == {"v": 1, "by": "rest"}
        assert ev.previous_data == {"v": 0}
        assert ev.revision == rest.revision
        assert doc.data == {"v": 1, "by": "rest"}
        assert doc.revision == rest.revision
        rest2 = await call(
            default_service.documents(rest_doc.sid).update, data={"v": 2}, if_match=rest.revision
        )
        ev = await next_event(updates)
        assert (ev.data, ev.revision, ev.is_local) == ({"v": 2}, rest2.revision, False)
        with pytest.raises(TwilioRestException):
            await call(default_service.documents(name).update, data={"v": 9}, if_match="0" * 8)
        await assert_quiet(updates)

        removed = listen(doc, "removed")
        assert await call(default_service.documents(name).delete) is True
        gone = await next_event(removed)
        assert isinstance(gone, DocumentRemovedEvent)
        assert gone.is_local is False
        assert gone.previous_data == {"v": 2}


async def test_rest_list_item_writes_reach_sdk_subscribers(
    server: ServerProcess, default_service: Any
) -> None:
    name = uniq("rt-list")
    await call(default_service.sync_lists.create, unique_name=name)
    items = default_service.sync_lists(name).sync_list_items
    async with server.client("alice") as alice:
        lst = await alice.list(name)
        added = listen(lst, "item_added")
        updated = listen(lst, "item_updated")
        removed = listen(lst, "item_removed")

        rest = await call(items.create, data={"n": 1})
        ev = await next_event(added)
        assert isinstance(ev, ListItemAddedEvent)
        assert ev.is_local is False
        assert (ev.item.index, ev.item.data, ev.item.revision) == (
            rest.index,
            {"n": 1},
            rest.revision,
        )

        rest = await call(items(rest.index).update, data={"n": 2})
        ev = await next_event(updated)
        assert isinstance(ev, ListItemUpdatedEvent)
        assert ev.is_local is False
        assert (ev.item.index, ev.item.data, ev.item.revision) == (
            rest.index,
            {"n": 2},
            rest.revision,
        )
        assert ev.previous_item_data == {"n": 1}

        assert await call(items(rest.index).delete) is True
        ev = await next_event(removed)
        assert isinstance(ev, ListItemRemovedEvent)
        assert ev.is_local is False
        assert ev.index == rest.index
        assert ev.previous_item_data == {"n": 2}
        await assert_quiet(added)
        assert updated.empty() and removed.empty()


async def test_rest_map_item_writes_reach_sdk_subscribers(
    server: ServerProcess, default_service: Any
) -> None:
    name = uniq("rt-map")
    await call(default_service.sync_maps.create, unique_name=name)
    items = default_service.sync_maps(name).sync_map_items
    async with server.client("alice") as alice:
        mp = await alice.map(name)
        added = listen(mp, "item_added")
        updated = listen(mp, "item_updated")
        removed = listen(mp, "item_removed")

        rest = await call(items.create, key="color", data={"v": "red"})
        ev = await next_event(added)
        assert isinstance(ev, MapItemAddedEvent)
        assert ev.is_local is False
        assert (ev.item.key, ev.item.data, ev.item.revision) == (
            "color",
            {"v": "red"},
            rest.revision,
        )

        rest = await call(items("color").update, data={"v": "blue"})
        ev = await next_event(updated)
        assert isinstance(ev, MapItemUpdatedEvent)
        assert ev.is_local is False
        assert (ev.item.key, ev.item.data, ev.item.revision) == (
            "color",
            {"v": "blue"},
            rest.revision,
        )
        assert ev.previous_item_data == {"v": "red"}

        assert await call(items("color").delete) is True
        ev = await next_event(removed)
        assert isinstance(ev, MapItemRemovedEvent)
        assert ev.is_local is False
        assert ev.key == "color"
        assert ev.previous_item_data == {"v": "blue"}
        await assert_quiet(added)
        assert updated.empty() and removed.empty()


async def test_rest_stream_message_reaches_sdk_subscribers(
    server: ServerProcess, default_service: Any
) -> None:
    name = uniq("rt-stream")
    await call(default_service.sync_streams.create, unique_name=name)
    async with server.client("alice") as alice, server.client("bob") as bob:
        streams = [await alice.stream(name), await bob.stream(name)]
        queues = [listen(s, "message_published") for s in streams]
        rest = await call(
            default_service.sync_streams(name).stream_messages.create, data={"text": "hi"}
        )
        for queue in queues:
            ev = await next_event(queue)
            assert isinstance(ev, StreamMessagePublishedEvent)
            assert ev.is_local is False
            assert ev.message.sid == rest.sid
            assert ev.message.data == {"text": "hi"}


def _close_to(rest_date: datetime, sdk_date: datetime) -> bool:
    return abs(rest_date - sdk_date) <= timedelta(seconds=1)


async def test_rest_view_of_sdk_writes_is_identical(
    server: ServerProcess, default_service: Any
) -> None:
    async with server.client("alice") as alice:
        doc = await alice.document(uniq("sdk-doc"))
        await doc.set({"title": "from sdk", "n": [1, 2, 3]})
        rest_doc = await call(default_service.documents(doc.sid).fetch)
        assert rest_doc.unique_name == doc.unique_name
        assert rest_doc.data == doc.data == {"title": "from sdk", "n": [1, 2, 3]}
        assert rest_doc.revision == doc.revision
        assert rest_doc.created_by == "alice"
        assert _close_to(rest_doc.date_updated, doc.date_updated)
        assert (await call(default_service.documents(doc.unique_name).fetch)).sid == doc.sid

        lst = await alice.list(uniq("sdk-list"))
        pushed = [await lst.push({"n": n}) for n in range(3)]
        await lst.set(1, {"n": "one"})
        sdk_items = [await lst.get(i) for i in range(3)]
        rest_items = await call(default_service.sync_lists(lst.sid).sync_list_items.list)
        assert [(i.index, i.data, i.revision) for i in rest_items] == [
            (i.index, i.data, i.revision) for i in sdk_items
        ]
        assert [i.index for i in pushed] == [0, 1, 2]
        rest_item = await call(default_service.sync_lists(lst.unique_name).sync_list_items(1).fetch)
        assert (rest_item.data, rest_item.revision) == ({"n": "one"}, sdk_items[1].revision)
        assert rest_item.created_by == "alice"
        assert _close_to(rest_item.date_updated, sdk_items[1].date_updated)

        mp = await alice.map(uniq("sdk-map"))
        await mp.set("a", {"v": 1})
        await mp.set("b", {"v": 2})
        await mp.set("a", {"v": 3})
        sdk_map_items = [await mp.get(k) for k in ("a", "b")]
        rest_map_items = await call(default_service.sync_maps(mp.sid).sync_map_items.list)
        assert [(i.key, i.data, i.revision) for i in rest_map_items] == [
            (i.key, i.data, i.revision) for i in sdk_map_items
        ]
        await mp.remove("b")
        with pytest.raises(TwilioRestException) as err:
            await call(default_service.sync_maps(mp.sid).sync_map_items("b").fetch)
        assert_twilio_error(err.value, 404, 54201)

        rest_list = await call(default_service.sync_lists(lst.sid).fetch)
        assert rest_list.revision == lst.revision
        rest_map = await call(default_service.sync_maps(mp.unique_name).fetch)
        assert rest_map.revision == mp.revision


# ---- regressions of server bugs found by these tests ----------------------------------


def test_list_item_index_beyond_int64_is_a_client_error(http: httpx.Client, base: str) -> None:
    lst = created(http.post(f"{base}/Lists"))["sid"]
    created(http.post(f"{base}/Lists/{lst}/Items", data={"Data": "{}"}))
    huge = str(2**63)
    responses = [
        http.get(f"{base}/Lists/{lst}/Items/{huge}"),
        http.post(f"{base}/Lists/{lst}/Items/{huge}", data={"Data": "{}"}),
        http.delete(f"{base}/Lists/{lst}/Items/{huge}"),
        http.get(f"{base}/Lists/{lst}/Items", params={"From": huge}),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert set(response.json()) == ERROR_KEYS


def test_page_token_with_a_non_scalar_cursor_is_400(http: httpx.Client, base: str) -> None:
    doc = created(http.post(f"{base}/Documents"))["sid"]
    for after in ([1], {"a": 1}):
        token = base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")
        for url in (f"{base}/Documents", "/v1/Services", f"{base}/Documents/{doc}/Permissions"):
            response = http.get(url, params={"PageToken": token})
            assert response.status_code == 400, (url, after, response.text)


def test_duplicate_service_unique_name_is_409(http: httpx.Client) -> None:
    name = uniq("svc-unique")
    first = created(http.post("/v1/Services", data={"UniqueName": name}))
    try:
        expect_error(http.post("/v1/Services", data={"UniqueName": name}), 409, 54301)
    finally:
        http.delete(f"/v1/Services/{first['sid']}")
        for svc in ok(http.get("/v1/Services?PageSize=100"))["services"]:
            if svc["unique_name"] == name:
                http.delete(f"/v1/Services/{svc['sid']}")


def test_map_item_url_of_a_dot_key_addresses_the_item(http: httpx.Client, base: str) -> None:
    mp = created(http.post(f"{base}/Maps"))["sid"]
    for key in ("..", "."):
        item = created(http.post(f"{base}/Maps/{mp}/Items", data={"Key": key, "Data": "{}"}))
        assert ok(http.get(item["url"])).get("key") == key, item["url"]


def test_405_names_the_allowed_methods(http: httpx.Client, base: str) -> None:
    for url, allowed in (
        ("/v1/Services", {"GET", "POST"}),
        (base, {"GET", "POST", "DELETE"}),
        (f"{base}/Streams/x/Messages", {"POST"}),
    ):
        response = http.put(url)
        assert response.status_code == 405
        names = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
        assert allowed <= names, (url, response.headers.get("allow"))
