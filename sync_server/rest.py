"""Twilio-compatible REST API v1 (`/v1/Services/...`) on the same port as the realtime endpoint.

Shapes follow Twilio's Sync v1: form-encoded PascalCase parameters (`Data` is a JSON string),
HTTP Basic auth with the account SID + auth token or an API key SID + secret, snake_case JSON
responses with `url` and `links`, dates as `%Y-%m-%dT%H:%M:%SZ`, 201 on create, 204 on delete,
list pages `{<key>: [...], "meta": {...}}` and errors `{code, message, more_info, status}`.
A path id is a SID or a unique name. Writes go through `SyncService`, so realtime subscribers
get the same events as for SDK writes (`is_local` false)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from sync_generated.client import MAX_PAGE_SIZE
from sync_generated.errors import (
    AuthenticationError,
    FrameTooLargeError,
    InternalServerError,
    InvalidDocumentDataError,
    InvalidRequestError,
    InvalidTtlError,
    ResourceNotFoundError,
    SyncError,
)

from . import wire
from .credentials import Credentials
from .records import ItemRecord, ObjectKind, ObjectRecord, PermissionRecord, ServiceRecord
from .service import Caller, SyncService, check_unique_name

log = logging.getLogger("sync_server.rest")

JsonObject = dict[str, Any]
Form = dict[str, str]
Handler = Callable[[Request], Awaitable[Response]]

COLLECTION: dict[ObjectKind, str] = {
    "document": "Documents",
    "list": "Lists",
    "map": "Maps",
    "stream": "Streams",
}
LIST_KEY: dict[ObjectKind, str] = {
    "document": "documents",
    "list": "lists",
    "map": "maps",
    "stream": "streams",
}
SYSTEM = "system"
_MAX_INDEX = 2**63 - 1  # list indexes are 64-bit
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _path_segment(value: str) -> str:
    """Percent-encode a key or identity for a URL path, dots too (`.` and `..` are dot-segments)."""
    return quote(value, safe="").replace(".", "%2E")


# ---- request parsing --------------------------------------------------------------------


def error_response(err: SyncError) -> JSONResponse:
    body = {
        "code": err.code,
        "message": err.message,
        "more_info": f"https://www.twilio.com/docs/errors/{err.code}",
        "status": err.status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Sync"'} if err.status == 401 else None
    return JSONResponse(body, status_code=err.status or 400, headers=headers)


def _int(
    form: Form, name: str, *, low: int, high: int, error: type[SyncError] = InvalidRequestError
) -> int | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not (digits.isascii() and digits.isdigit()):  # int() would also take "１２" or " 7_0"
        raise error(f"{name} must be an integer, got {raw!r:.40}")
    value = int(raw)
    if not low <= value <= high:
        raise error(f"{name} must be between {low} and {high}, got {value}")
    return value


def _ttl(form: Form, *names: str) -> int | None:
    for name in names:
        value = _int(form, name, low=0, high=31_536_000, error=InvalidTtlError)
        if value is not None:
            return value
    return None


def _bool(form: Form, name: str, default: bool | None = None) -> bool | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequestError(f"{name} must be true or false, got {raw!r:.40}")


def _data(form: Form, name: str = "Data", *, required: bool = False) -> JsonObject | None:
    raw = form.get(name)
    if raw is None:
        if required:
            raise InvalidDocumentDataError(f"{name} is required (a JSON object)")
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidDocumentDataError(
            f"{name} must be a JSON object; it is not valid JSON"
        ) from None
    if not isinstance(value, dict):
        raise InvalidDocumentDataError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


class RestApi:
    """The REST routes, bound to one SyncService and the server's credentials."""

    def __init__(self, service: SyncService, credentials: Credentials) -> None:
        self.service = service
        self.credentials = credentials

    # ---- plumbing ----------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """One Route per path (so a 405 lists every allowed method in `Allow`)."""
        s = "/v1/Services"
        routes = [
            self._route(s, GET=self.list_services, POST=self.create_service),
            self._route(
                s + "/{Sid}",
                GET=self.fetch_service,
                POST=self.update_service,
                DELETE=self.delete_service,
            ),
        ]
        for kind, coll in COLLECTION.items():
            base = f"{s}/{{ServiceSid}}/{coll}"
            routes += [
                self._route(base, GET=self._list_objects(kind), POST=self._create_object(kind)),
                self._route(
                    base + "/{Sid}",
                    GET=self._fetch_object(kind),
                    POST=self._update_object(kind),
                    DELETE=self._delete_object(kind),
                ),
            ]
            if kind in ("list", "map"):
                items = base + "/{ObjectSid}/Items"
                routes += [
                    self._route(items, GET=self._list_items(kind), POST=self._create_item(kind)),
                    self._route(
                        items + "/{Item:path}",
                        GET=self._fetch_item(kind),
                        POST=self._update_item(kind),
                        DELETE=self._delete_item(kind),
                    ),
                ]
            if kind != "stream":
                perms = base + "/{ObjectSid}/Permissions"
                routes += [
                    self._route(perms, GET=self._list_permissions(kind)),
                    self._route(
                        perms + "/{Identity:path}",
                        GET=self._fetch_permission(kind),
                        POST=self._update_permission(kind),
                        DELETE=self._delete_permission(kind),
                    ),
                ]
            else:
                routes.append(
                    self._route(base + "/{ObjectSid}/Messages", POST=self.publish_message)
                )
        return routes

    def _route(self, path: str, **handlers: Handler) -> Route:
        wrapped = {method: self._wrap(handler) for method, handler in handlers.items()}

        async def endpoint(request: Request) -> Response:
            return await wrapped[request.method](request)

        return Route(path, endpoint, methods=list(wrapped))

    def _wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self.authenticate(request)
                return await handler(request)
            except SyncError as err:
                return error_response(err)
            except Exception:
                log.exception("REST %s %s failed", request.method, request.url.path)
                return error_response(InternalServerError("internal error"))

        return endpoint

    def authenticate(self, request: Request) -> None:
        """AuthenticationError (20003, 401) unless the request carries the REST credentials."""
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            raise AuthenticationError(
                "HTTP Basic authentication required (account SID + auth token or API key + secret)"
            )
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic authorization header") from None
        c = self.credentials
        given = password.encode()  # bytes: compare_digest refuses non-ASCII str
        valid = (
            user == c.account_sid
            and c.auth_token
            and hmac.compare_digest(given, c.auth_token.encode())
        ) or (user == c.api_key_sid and hmac.compare_digest(given, c.api_secret.encode()))
        if not valid:
            raise AuthenticationError("invalid username or password")

    async def _form(self, request: Request) -> Form:
        """The form body, read up to the size limit (413 beyond); a body that is not valid
        form encoding (bad %-escapes, not UTF-8) is a 400, never silently repaired."""
        limit = self.service.limits.max_request_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FrameTooLargeError(f"request body of {declared} bytes exceeds {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FrameTooLargeError(f"request body exceeds {limit} bytes")
            chunks.append(chunk)
        try:
            body = b"".join(chunks).decode("ascii")
            if _BAD_ESCAPE.search(body):
                raise ValueError("a % not followed by two hex digits")
            return dict(parse_qsl(body, keep_blank_values=True, errors="strict"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidRequestError(f"the form body is not valid form encoding: {exc}") from None

    @staticmethod
    def _base(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}/v1"

    async def _service(self, sid_or_name: str) -> ServiceRecord:
        return await self.service.get_service(sid_or_name)

    async def _object(self, service_sid: str, kind: ObjectKind, sid_or_name: str) -> ObjectRecord:
        return await self.service.find_object(self._caller(service_sid), kind, sid_or_name)

    @staticmethod
    def _caller(service_sid: str) -> Caller:
        return Caller(service_sid, SYSTEM, None, trusted=True)

    # ---- representations ---------------------------------------------------------------
    def _service_json(self, base: str, svc: ServiceRecord) -> JsonObject:
        url = f"{base}/Services/{svc.sid}"
        return {
            "sid": svc.sid,
            "unique_name": svc.unique_name,
            "account_sid": svc.account_sid,
            "friendly_name": svc.friendly_name,
            "date_created": wire.iso(svc.date_created),
            "date_updated": wire.iso(svc.date_updated),
            "url": url,
            "webhook_url": svc.webhook_url,
            "webhooks_from_rest_enabled": svc.webhooks_from_rest_enabled,
            "reachability_webhooks_enabled": svc.reachability_webhooks_enabled,
            "acl_enabled": svc.acl_enabled,
            "reachability_debouncing_enabled": svc.reachability_debouncing_enabled,
            "reachability_debouncing_window": svc.reachability_debouncing_window,
            "links": {
                k: f"{url}/{v}"
                for k, v in (
                    ("documents", "Documents"),
                    ("lists", "Lists"),
                    ("maps", "Maps"),
                    ("streams", "Streams"),
                )
            },
        }

    def _object_json(self, base: str, obj: ObjectRecord) -> JsonObject:
        url = f"{base}/Services/{obj.service_sid}/{COLLECTION[obj.kind]}/{obj.sid}"
        out: JsonObject = {
            "sid": obj.sid,
            "unique_name": obj.unique_name,
            "account_sid": self.credentials.account_sid,
            "service_sid": obj.service_sid,
            "url": url,
        }
        if obj.kind == "document":
            out.update(
                revision=obj.revision,
                data=obj.data or {},
                links={"permissions": f"{url}/Permissions"},
            )
        elif obj.kind in ("list", "map"):
            out.update(
                revision=obj.revision,
                links={"items": f"{url}/Items", "permissions": f"{url}/Permissions"},
            )
        else:
            out["links"] = {"messages": f"{url}/Messages"}
        out.update(
            date_expires=wire.iso(obj.date_expires),
            date_created=wire.iso(obj.date_created),
            date_updated=wire.iso(obj.date_updated),
            created_by=obj.created_by,
        )
        return out

    def _item_json(self, base: str, obj: ObjectRecord, item: ItemRecord) -> JsonObject:
        coll = f"{base}/Services/{obj.service_sid}/{COLLECTION[obj.kind]}/{obj.sid}/Items"
        if obj.kind == "list":
            head: JsonObject = {"index": item.index}
            url = f"{coll}/{item.index}"
        else:
            head = {"key": item.key}
            url = f"{coll}/{_path_segment(str(item.key))}"
        return {
            **head,
            "account_sid": self.credentials.account_sid,
            "service_sid": obj.service_sid,
            f"{obj.kind}_sid": obj.sid,
            "url": url,
            "revision": item.revision,
            "data": item.data,
            "date_expires": wire.iso(item.date_expires),
            "date_created": wire.iso(item.date_created),
            "date_updated": wire.iso(item.date_updated),
            "created_by": item.created_by,
        }

    def _permission_json(self, base: str, obj: ObjectRecord, perm: PermissionRecord) -> JsonObject:
        return {
            "account_sid": self.credentials.account_sid,
            "service_sid": obj.service_sid,
            f"{obj.kind}_sid": obj.sid,
            "identity": perm.identity,
            "read": perm.read,
            "write": perm.write,
            "manage": perm.manage,
            "url": f"{base}/Services/{obj.service_sid}/{COLLECTION[obj.kind]}/{obj.sid}/Permissions/{_path_segment(perm.identity)}",
        }

    # ---- paging ------------------------------------------------------------------------
    @staticmethod
    def _page_params(request: Request) -> tuple[int, int, JsonObject]:
        q = dict(request.query_params)
        size = _int(q, "PageSize", low=1, high=MAX_PAGE_SIZE) or 50
        page = _int(q, "Page", low=0, high=1_000_000) or 0
        token = q.get("PageToken")
        cursor: JsonObject = {}
        if token:
            try:
                decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            except (binascii.Error, ValueError, orjson.JSONDecodeError):
                raise InvalidRequestError("PageToken is not valid") from None
            after = decoded.get("after") if isinstance(decoded, dict) else None
            if not isinstance(decoded, dict) or not (
                after is None
                or isinstance(after, str)
                or (type(after) is int and 0 <= after <= _MAX_INDEX)
            ):
                raise InvalidRequestError("PageToken is not valid")
            cursor = decoded
        return size, page, cursor

    @staticmethod
    def _token(cursor: JsonObject) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(cursor)).decode().rstrip("=")

    def _page(
        self,
        request: Request,
        key: str,
        records: list[JsonObject],
        *,
        size: int,
        page: int,
        next_cursor: JsonObject | None,
        prev_cursor: JsonObject | None = None,
        extra: dict[str, str] | None = None,
    ) -> JSONResponse:
        url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        params = dict(extra or {})

        def link(**more: Any) -> str:
            return f"{url}?{urlencode({**params, 'PageSize': size, **more})}"

        meta = {
            "page": page,
            "page_size": size,
            "first_page_url": link(Page=0),
            "previous_page_url": link(Page=page - 1, PageToken=self._token(prev_cursor))
            if prev_cursor and page > 0
            else None,
            "url": link(
                Page=page,
                **(
                    {"PageToken": request.query_params["PageToken"]}
                    if "PageToken" in request.query_params
                    else {}
                ),
            ),
            "next_page_url": link(Page=page + 1, PageToken=self._token(next_cursor))
            if next_cursor
            else None,
            "key": key,
        }
        return JSONResponse({key: records, "meta": meta})

    # ---- services ----------------------------------------------------------------------
    def _apply_service_form(self, svc: ServiceRecord, form: Form) -> None:
        if "FriendlyName" in form:
            svc.friendly_name = form["FriendlyName"][:64] or None
        if "UniqueName" in form:
            svc.unique_name = form["UniqueName"] or None
        if "WebhookUrl" in form:
            url = form["WebhookUrl"].strip()
            if url and not url.startswith(("http://", "https://")):
                raise InvalidRequestError("WebhookUrl must be an http(s) URL")
            svc.webhook_url = url or None
        for name, attr in (
            ("WebhooksFromRestEnabled", "webhooks_from_rest_enabled"),
            ("ReachabilityWebhooksEnabled", "reachability_webhooks_enabled"),
            ("AclEnabled", "acl_enabled"),
            ("ReachabilityDebouncingEnabled", "reachability_debouncing_enabled"),
        ):
            value = _bool(form, name)
            if value is not None:
                setattr(svc, attr, value)
        window = _int(form, "ReachabilityDebouncingWindow", low=1000, high=3_600_000)
        if window is not None:
            svc.reachability_debouncing_window = window

    async def list_services(self, request: Request) -> Response:
        size, page, cursor = self._page_params(request)
        rows = await self.service.list_services(after_sid=cursor.get("after"), limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        base = self._base(request)
        return self._page(
            request,
            "services",
            [self._service_json(base, r) for r in rows],
            size=size,
            page=page,
            next_cursor={"after": rows[-1].sid} if more and rows else None,
        )

    async def create_service(self, request: Request) -> Response:
        form = await self._form(request)
        t = wire.now()
        svc = ServiceRecord(
            sid=wire.new_sid("IS"),
            account_sid=self.credentials.account_sid,
            date_created=t,
            date_updated=t,
        )
        self._apply_service_form(svc, form)
        await self.service.create_service(svc)
        return JSONResponse(self._service_json(self._base(request), svc), status_code=201)

    async def fetch_service(self, request: Request) -> Response:
        svc = await self._service(request.path_params["Sid"])
        return JSONResponse(self._service_json(self._base(request), svc))

    async def update_service(self, request: Request) -> Response:
        svc = await self._service(request.path_params["Sid"])
        self._apply_service_form(svc, await self._form(request))
        await self.service.update_service(svc)
        return JSONResponse(self._service_json(self._base(request), svc))

    async def delete_service(self, request: Request) -> Response:
        svc = await self._service(request.path_params["Sid"])
        await self.service.delete_service(svc.sid)
        return Response(status_code=204)

    # ---- objects -----------------------------------------------------------------------
    def _list_objects(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            svc = await self._service(request.path_params["ServiceSid"])
            size, page, cursor = self._page_params(request)
            rows = await self.service.list_objects(
                self._caller(svc.sid), kind, after_sid=cursor.get("after"), limit=size + 1
            )
            more = len(rows) > size
            rows = rows[:size]
            base = self._base(request)
            return self._page(
                request,
                LIST_KEY[kind],
                [self._object_json(base, r) for r in rows],
                size=size,
                page=page,
                next_cursor={"after": rows[-1].sid} if more and rows else None,
            )

        return handler

    def _create_object(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            svc = await self._service(request.path_params["ServiceSid"])
            form = await self._form(request)
            name = form.get("UniqueName") or None
            if name is not None:
                check_unique_name(kind, name)
            ttl = _ttl(form, "Ttl", "CollectionTtl")
            data = _data(form) if kind == "document" else None
            obj = await self.service.open(
                self._caller(svc.sid),
                kind,
                name,
                "create_new",
                ttl,
                data if data is not None else ({} if kind == "document" else None),
            )
            return JSONResponse(self._object_json(self._base(request), obj), status_code=201)

        return handler

    def _fetch_object(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            svc = await self._service(request.path_params["ServiceSid"])
            obj = await self._object(svc.sid, kind, request.path_params["Sid"])
            return JSONResponse(self._object_json(self._base(request), obj))

        return handler

    def _update_object(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            svc = await self._service(request.path_params["ServiceSid"])
            obj = await self._object(svc.sid, kind, request.path_params["Sid"])
            form = await self._form(request)
            caller = self._caller(svc.sid)
            ttl = _ttl(form, "Ttl", "CollectionTtl")
            if kind == "document":
                data = _data(form)
                if_match = request.headers.get("if-match")
                if data is not None:
                    obj = await self.service.set_document(
                        caller, obj.sid, data, merge=False, if_match=if_match, ttl=ttl
                    )
                    ttl = None
            if ttl is not None:
                obj = await self.service.set_ttl(caller, obj.sid, ttl)
            return JSONResponse(self._object_json(self._base(request), obj))

        return handler

    def _delete_object(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            svc = await self._service(request.path_params["ServiceSid"])
            obj = await self._object(svc.sid, kind, request.path_params["Sid"])
            await self.service.remove(self._caller(svc.sid), obj.sid)
            return Response(status_code=204)

        return handler

    # ---- items -------------------------------------------------------------------------
    @staticmethod
    def _item_ref(kind: ObjectKind, raw: str) -> int | str:
        if kind == "list":
            try:
                index = int(raw)
            except ValueError:
                raise InvalidRequestError(
                    f"list item index must be an integer, got {raw!r:.40}"
                ) from None
            if index < 0:
                raise InvalidRequestError("list item index must be >= 0")
            if index > _MAX_INDEX:
                raise InvalidRequestError(f"list item index must be <= {_MAX_INDEX}")
            return index
        return raw

    async def _collection(self, request: Request, kind: ObjectKind) -> ObjectRecord:
        svc = await self._service(request.path_params["ServiceSid"])
        return await self._object(svc.sid, kind, request.path_params["ObjectSid"])

    def _list_items(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            size, page, cursor = self._page_params(request)
            q = request.query_params
            order: Literal["asc", "desc"] = (
                "desc" if q.get("Order", "asc").lower() == "desc" else "asc"
            )
            if q.get("Order", "asc").lower() not in ("asc", "desc"):
                raise InvalidRequestError("Order must be asc or desc")
            bounds = q.get("Bounds", "inclusive").lower()
            if bounds not in ("inclusive", "exclusive"):
                raise InvalidRequestError("Bounds must be inclusive or exclusive")
            if "after" in cursor:
                start: int | str | None = cursor["after"]
                inclusive = False
            elif q.get("From") not in (None, ""):
                start = self._item_ref(kind, q["From"])
                inclusive = bounds == "inclusive"
            else:
                start, inclusive = None, True
            caller = self._caller(obj.service_sid)
            result = await self.service.items_page(
                caller, obj.sid, start, inclusive=inclusive, page_size=size, order=order
            )
            base = self._base(request)
            extra = {
                k: v
                for k, v in (
                    ("Order", q.get("Order")),
                    ("From", q.get("From")),
                    ("Bounds", q.get("Bounds")),
                )
                if v
            }
            last = result.items[-1] if result.items else None
            next_cursor = (
                {"after": last.index if kind == "list" else last.key}
                if result.has_next and last is not None
                else None
            )
            return self._page(
                request,
                "items",
                [self._item_json(base, obj, i) for i in result.items],
                size=size,
                page=page,
                next_cursor=next_cursor,
                extra=extra,
            )

        return handler

    def _create_item(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            form = await self._form(request)
            caller = self._caller(obj.service_sid)
            data = _data(form, required=True)
            assert data is not None
            item_ttl = _ttl(form, "ItemTtl", "Ttl")
            collection_ttl = _ttl(form, "CollectionTtl")
            if kind == "list":
                item = await self.service.list_push(caller, obj.sid, data, item_ttl)
            else:
                key = form.get("Key")
                if key is None:
                    raise InvalidRequestError("Key is required")
                item = await self.service.set_item(
                    caller,
                    obj.sid,
                    None,
                    key,
                    data,
                    merge=False,
                    if_match=None,
                    ttl=item_ttl,
                    if_absent=True,
                )
            if collection_ttl is not None:
                obj = await self.service.set_ttl(caller, obj.sid, collection_ttl)
            return JSONResponse(self._item_json(self._base(request), obj, item), status_code=201)

        return handler

    def _fetch_item(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            ref = self._item_ref(kind, request.path_params["Item"])
            index, key = (ref, None) if isinstance(ref, int) else (None, ref)
            item = await self.service.get_item(self._caller(obj.service_sid), obj.sid, index, key)
            return JSONResponse(self._item_json(self._base(request), obj, item))

        return handler

    def _update_item(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            ref = self._item_ref(kind, request.path_params["Item"])
            form = await self._form(request)
            caller = self._caller(obj.service_sid)
            data = _data(form)
            item_ttl = _ttl(form, "ItemTtl", "Ttl")
            collection_ttl = _ttl(form, "CollectionTtl")
            if_match = request.headers.get("if-match")
            index, key = (ref, None) if isinstance(ref, int) else (None, ref)
            item = await self.service.get_item(caller, obj.sid, index, key)  # 404 if missing
            if data is not None:
                item = await self.service.set_item(
                    caller, obj.sid, index, key, data, merge=False, if_match=if_match, ttl=item_ttl
                )
            elif item_ttl is not None:
                item = await self.service.set_item_ttl(caller, obj.sid, index, key, item_ttl)
            if collection_ttl is not None:
                obj = await self.service.set_ttl(caller, obj.sid, collection_ttl)
            return JSONResponse(self._item_json(self._base(request), obj, item))

        return handler

    def _delete_item(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            ref = self._item_ref(kind, request.path_params["Item"])
            index, key = (ref, None) if isinstance(ref, int) else (None, ref)
            await self.service.remove_item(
                self._caller(obj.service_sid), obj.sid, index, key, request.headers.get("if-match")
            )
            return Response(status_code=204)

        return handler

    # ---- permissions -------------------------------------------------------------------
    def _list_permissions(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            size, page, cursor = self._page_params(request)
            rows = await self.service.list_permissions(
                self._caller(obj.service_sid),
                obj.sid,
                after_identity=cursor.get("after"),
                limit=size + 1,
            )
            more = len(rows) > size
            rows = rows[:size]
            base = self._base(request)
            return self._page(
                request,
                "permissions",
                [self._permission_json(base, obj, p) for p in rows],
                size=size,
                page=page,
                next_cursor={"after": rows[-1].identity} if more and rows else None,
            )

        return handler

    def _fetch_permission(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            identity = request.path_params["Identity"]
            perm = await self.service.get_permission(
                self._caller(obj.service_sid), obj.sid, identity
            )
            return JSONResponse(self._permission_json(self._base(request), obj, perm))

        return handler

    def _update_permission(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            identity = request.path_params["Identity"]
            form = await self._form(request)
            flags = {name: _bool(form, name) for name in ("Read", "Write", "Manage")}
            missing = [name for name, value in flags.items() if value is None]
            if missing:
                raise InvalidRequestError(f"{', '.join(missing)} required (true or false)")
            perm = PermissionRecord(
                obj.service_sid,
                obj.sid,
                identity,
                bool(flags["Read"]),
                bool(flags["Write"]),
                bool(flags["Manage"]),
            )
            await self.service.set_permission(self._caller(obj.service_sid), perm)
            return JSONResponse(self._permission_json(self._base(request), obj, perm))

        return handler

    def _delete_permission(self, kind: ObjectKind) -> Handler:
        async def handler(request: Request) -> Response:
            obj = await self._collection(request, kind)
            identity = request.path_params["Identity"]
            await self.service.delete_permission(self._caller(obj.service_sid), obj.sid, identity)
            return Response(status_code=204)

        return handler

    # ---- streams -----------------------------------------------------------------------
    async def publish_message(self, request: Request) -> Response:
        obj = await self._collection(request, "stream")
        form = await self._form(request)
        data = _data(form, required=True)
        assert data is not None
        message = await self.service.publish_message(self._caller(obj.service_sid), obj.sid, data)
        return JSONResponse(message, status_code=201)


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(
        ResourceNotFoundError(f"the requested resource {request.url.path} was not found")
    )


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    err = InvalidRequestError(
        f"method {request.method} is not allowed on {request.url.path}", status=405
    )
    response = error_response(err)
    allow = getattr(exc, "headers", None) or {}
    if "Allow" in allow:
        response.headers["Allow"] = allow["Allow"]
    return response
