"""The Sync client API (spec/cds.yaml) that Twilio's JavaScript SDK calls over Twilsock.

Each call is an HTTP request carried in a Twilsock `message`: method, percent-encoded path
and query, headers and a JSON body. `ClientApi.handle` routes it onto `SyncService` as the
session's caller and answers with an HTTP status and a JSON body shaped as the SDK reads it
(absolute `url` / `links` it reuses for later calls, `last_event_id` on the object's event
counter, `{status, code, message, more_info}` errors). `/v4/Subscriptions` is parsed here
and acted on by the front door, which owns the session and its notifications.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote

import orjson
from pydantic import BaseModel, ValidationError
from sync_generated.cds import (
    CollectionCreate,
    DocumentCreate,
    DocumentUpdate,
    ItemWrite,
    MessageCreate,
    SubscriptionRequest,
    TtlUpdate,
)
from sync_generated.cds_types import (
    CollectionResource,
    DocumentResource,
    ErrorBody,
    ItemRemoved,
    ItemResource,
    ItemsPage,
    Links,
    SubscriptionsAccepted,
)
from sync_generated.client import MAX_PAGE_SIZE
from sync_generated.errors import (
    InternalServerError,
    InvalidRequestError,
    ListItemNotFoundError,
    MapItemNotFoundError,
    ResourceNotFoundError,
    SyncError,
)

from . import wire
from .records import ItemRecord, ObjectKind, ObjectRecord
from .service import Caller, SyncService

log = logging.getLogger("sync_server.cds")

PLURAL: dict[str, ObjectKind] = {
    "Documents": "document",
    "Lists": "list",
    "Maps": "map",
    "Streams": "stream",
}
PATH_OF: dict[ObjectKind, str] = {kind: plural for plural, kind in PLURAL.items()}
SUBSCRIPTIONS_PATH = "/v4/Subscriptions"
ESTIMATED_DELIVERY_MS = 5000
MAX_BATCH_SIZE = 100
MIN_PAGE_SIZE = 1

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CarriedRequest:
    """One HTTP request of the client API as it arrived over Twilsock: `path` still
    percent-encoded, `params` decoded, and `base`, the scheme and host the SDK addresses (its
    cdsUri), for the absolute URLs in the answer."""

    base: str
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The answer to one carried request: HTTP status, JSON body (None: no body) and, for
    /v4/Subscriptions, the request the front door carries out after answering."""

    status: int
    body: object = None
    subscription: SubscriptionRequest | None = None


def error_reply(err: SyncError) -> HttpReply:
    body: ErrorBody = {
        "status": err.status,
        "code": err.code,
        "message": err.message,
        "more_info": f"https://www.twilio.com/docs/errors/{err.code}",
    }
    return HttpReply(err.status, body)


class ClientApi:
    """The client API's routes over one SyncService (see the module docstring)."""

    def __init__(self, service: SyncService) -> None:
        self.service = service

    async def handle(self, caller: Caller, request: CarriedRequest) -> HttpReply:
        """Answer one request as `caller`. Never raises."""
        try:
            return await self._route(caller, request)
        except SyncError as err:
            return error_reply(err)
        except Exception:
            log.exception("client API %s %s failed", request.method, request.path[:200])
            return error_reply(InternalServerError("internal error"))

    async def _route(self, caller: Caller, request: CarriedRequest) -> HttpReply:
        base, method, path, body = request.base, request.method, request.path, request.body
        params, headers = request.params, request.headers
        if path.split("?", 1)[0] == SUBSCRIPTIONS_PATH:
            _allow(method, "POST")
            accepted: SubscriptionsAccepted = {
                "estimated_delivery_in_ms": ESTIMATED_DELIVERY_MS,
                "max_batch_size": MAX_BATCH_SIZE,
            }
            return HttpReply(202, accepted, _body(SubscriptionRequest, body))
        segments = _segments(path)
        if len(segments) < 2 or segments[0] != "v3" or segments[1] not in PLURAL:
            raise ResourceNotFoundError(f"the requested resource {path[:200]!r} was not found")
        kind = PLURAL[segments[1]]
        rest = segments[2:]
        if_match = _if_match(headers)
        match rest:
            case []:
                _allow(method, "POST")
                return await self._create(caller, base, kind, body)
            case [object_id]:
                return await self._object(caller, base, kind, object_id, method, body, if_match)
            case [sid, "Items"] if kind in ("list", "map"):
                if method == "GET":
                    return await self._query(caller, base, kind, sid, params)
                _allow(method, "POST" if kind == "list" else "GET")  # maps: PUT Items/{key}
                return await self._push(caller, base, sid, body)
            case [sid, "Items", ref] if kind in ("list", "map"):
                return await self._item(caller, base, kind, sid, ref, method, body, if_match)
            case [sid, "Messages"] if kind == "stream":
                _allow(method, "POST")
                message = _body(MessageCreate, body)
                published = await self.service.publish_message(caller, sid, message.data)
                return HttpReply(201, published)
        raise ResourceNotFoundError(f"the requested resource {path[:200]!r} was not found")

    # ---- objects -----------------------------------------------------------------------
    async def _create(self, caller: Caller, base: str, kind: ObjectKind, body: bytes) -> HttpReply:
        if kind == "document":
            doc = _body(DocumentCreate, body)
            created = await self.service.open(
                caller, kind, doc.unique_name, "create_new", doc.ttl, doc.data or {}
            )
        else:
            coll = _body(CollectionCreate, body)
            created = await self.service.open(
                caller, kind, coll.unique_name, "create_new", coll.ttl, None
            )
        return HttpReply(201, _resource(base, created))

    async def _object(
        self,
        caller: Caller,
        base: str,
        kind: ObjectKind,
        object_id: str,
        method: str,
        body: bytes,
        if_match: str | None,
    ) -> HttpReply:
        obj = await self.service.find_object(caller, kind, object_id)
        if method == "GET":
            return HttpReply(200, _resource(base, obj))
        if method == "DELETE":
            await self.service.remove(caller, obj.sid)
            return HttpReply(204)
        _allow(method, "POST")
        if kind == "document":
            update = _body(DocumentUpdate, body)
            if update.data is not None:
                obj = await self.service.set_document(
                    caller, obj.sid, update.data, merge=False, if_match=if_match, ttl=update.ttl
                )
            elif update.ttl is not None:
                obj = await self.service.set_ttl(caller, obj.sid, update.ttl)
        else:
            obj = await self.service.set_ttl(caller, obj.sid, _body(TtlUpdate, body).ttl)
        return HttpReply(200, _resource(base, obj))

    # ---- items -------------------------------------------------------------------------
    async def _push(self, caller: Caller, base: str, sid: str, body: bytes) -> HttpReply:
        write = _body(ItemWrite, body)
        if write.data is None:
            raise InvalidRequestError("data is required")
        item = await self.service.list_push(caller, sid, write.data, write.ttl)
        return HttpReply(201, _item_resource(base, "list", sid, item))

    async def _query(
        self, caller: Caller, base: str, kind: ObjectKind, sid: str, params: dict[str, str]
    ) -> HttpReply:
        single = params.get("Index" if kind == "list" else "Key")
        if single is not None:
            ref = _item_ref(kind, single)
            try:
                found = [await self._get_item(caller, sid, ref)]
            except (ListItemNotFoundError, MapItemNotFoundError):
                found = []
            items = [_item_resource(base, kind, sid, item) for item in found]
            page: ItemsPage = {"items": items, "meta": {"previous_token": None, "next_token": None}}
            return HttpReply(200, page)
        order = params.get("Order", "asc").lower()
        if order not in ("asc", "desc"):
            raise InvalidRequestError("Order must be asc or desc")
        size = _int(params.get("PageSize", "50"), "PageSize")
        size = min(max(size, MIN_PAGE_SIZE), MAX_PAGE_SIZE)
        start = params.get("From")
        result = await self.service.items_page(
            caller,
            sid,
            _item_ref(kind, start) if start not in (None, "") else None,
            inclusive=True,
            page_size=size,
            order="desc" if order == "desc" else "asc",
        )
        page = {
            "items": [_item_resource(base, kind, sid, item) for item in result.items],
            "meta": {
                "previous_token": _token(result.items[0], "prev") if result.has_prev else None,
                "next_token": _token(result.items[-1], "next") if result.has_next else None,
            },
        }
        return HttpReply(200, page)

    async def _get_item(self, caller: Caller, sid: str, ref: int | str) -> ItemRecord:
        index, key = (ref, None) if isinstance(ref, int) else (None, ref)
        return await self.service.get_item(caller, sid, index, key)

    async def _item(
        self,
        caller: Caller,
        base: str,
        kind: ObjectKind,
        sid: str,
        raw_ref: str,
        method: str,
        body: bytes,
        if_match: str | None,
    ) -> HttpReply:
        ref = _item_ref(kind, raw_ref)
        index, key = (ref, None) if isinstance(ref, int) else (None, ref)
        if method == "GET":
            return HttpReply(
                200, _item_resource(base, kind, sid, await self._get_item(caller, sid, ref))
            )
        if method == "DELETE":
            event_id = await self.service.remove_item(caller, sid, index, key, if_match)
            removed: ItemRemoved = {"last_event_id": event_id, "date_updated": wire.iso(wire.now())}
            return HttpReply(200, removed)
        write = _body(ItemWrite, body)
        if method == "PUT" and kind == "map":
            if write.data is None:
                raise InvalidRequestError("data is required")
            absent_only = if_match == "-1"
            item, event = await self.service.upsert_item(
                caller,
                sid,
                None,
                key,
                write.data,
                merge=False,
                if_match=None if absent_only else if_match,
                ttl=write.ttl,
                if_absent=absent_only,
            )
            added = event.name == "item_added"
            return HttpReply(201 if added else 200, _item_resource(base, kind, sid, item))
        _allow(method, "POST")
        if write.data is not None:
            item = await self.service.set_item(
                caller, sid, index, key, write.data, merge=False, if_match=if_match, ttl=write.ttl
            )
        elif write.ttl is not None:
            item = await self.service.set_item_ttl(caller, sid, index, key, write.ttl)
        else:
            item = await self._get_item(caller, sid, ref)
        return HttpReply(200, _item_resource(base, kind, sid, item))


# ---- parsing ---------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    try:
        return [unquote(s, errors="strict") for s in path.split("?", 1)[0].split("/") if s]
    except UnicodeDecodeError:
        raise InvalidRequestError("the path has an invalid percent-escape") from None


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise InvalidRequestError(f"method {method} is not allowed here", status=405)


def _body(model: type[M], body: bytes) -> M:
    try:
        parsed = model.model_validate_json(body or b"{}", strict=True)
        wire.refuse_non_finite(body)
        return parsed
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequestError(f"invalid request body: {where}: {first['msg']}") from None


def _if_match(headers: dict[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() == "if-match":
            return value.strip().strip('"')
    return None


def _int(raw: str, name: str) -> int:
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        raise InvalidRequestError(f"{name} must be an integer, got {raw[:40]!r}")
    return int(raw)


def _item_ref(kind: ObjectKind, raw: str) -> int | str:
    if kind != "list":
        return raw
    index = _int(raw, "the item index")
    if index < 0:
        raise InvalidRequestError("a list item index is >= 0")
    return index


def _token(item: ItemRecord, direction: Literal["prev", "next"]) -> str:
    ref: Any = item.index if item.index is not None else item.key
    return orjson.dumps({direction: ref}).hex()


# ---- resources -------------------------------------------------------------------------


def object_url(base: str, kind: ObjectKind, sid: str) -> str:
    return f"{base}/v3/{PATH_OF[kind]}/{sid}"


def item_url(base: str, kind: ObjectKind, sid: str, ref: int | str) -> str:
    return f"{object_url(base, kind, sid)}/Items/{quote(str(ref), safe='')}"


def _resource(base: str, obj: ObjectRecord) -> DocumentResource | CollectionResource:
    url = object_url(base, obj.kind, obj.sid)
    dates = {
        "date_created": wire.iso(obj.date_created),
        "date_updated": wire.iso(obj.date_updated),
        "date_expires": wire.iso(obj.date_expires),
    }
    if obj.kind == "document":
        return {
            "sid": obj.sid,
            "unique_name": obj.unique_name,
            "url": url,
            "revision": obj.revision,
            "last_event_id": obj.last_event_id,
            "data": obj.data or {},
            "created_by": obj.created_by,
            "date_created": dates["date_created"],
            "date_updated": dates["date_updated"],
            "date_expires": dates["date_expires"],
        }
    links: Links = (
        {"messages": f"{url}/Messages"} if obj.kind == "stream" else {"items": f"{url}/Items"}
    )
    resource: CollectionResource = {
        "sid": obj.sid,
        "unique_name": obj.unique_name,
        "url": url,
        "links": links,
        "created_by": obj.created_by,
        "date_created": dates["date_created"],
        "date_updated": dates["date_updated"],
        "date_expires": dates["date_expires"],
    }
    if obj.kind != "stream":
        resource["revision"] = obj.revision
        resource["last_event_id"] = obj.last_event_id
    return resource


def _item_resource(base: str, kind: ObjectKind, sid: str, item: ItemRecord) -> ItemResource:
    ref: int | str = item.index if item.index is not None else str(item.key)
    resource: ItemResource = {
        "url": item_url(base, kind, sid, ref),
        "revision": item.revision,
        "last_event_id": item.last_event_id,
        "data": item.data,
        "created_by": item.created_by,
        "date_created": wire.iso(item.date_created),
        "date_updated": wire.iso(item.date_updated),
        "date_expires": wire.iso(item.date_expires),
    }
    if isinstance(ref, int):
        resource["index"] = ref
    else:
        resource["key"] = ref
    return resource
