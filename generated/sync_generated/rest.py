# Generated from spec/http.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""The REST API v1 of sync_server, typed: pydantic models of every response body and
`SyncRestApi`, a low-level async client with one method per operation of spec/http.yaml.

Methods take path parameters positionally and everything else as keyword arguments
(snake_case of the wire name; `None` leaves a parameter out), return the response model
(a page model for list operations, `None` for 204) and raise the `SyncError` subclass that
`error_for_code()` picks from the error body. `sync_sdk.rest.SyncRestClient` is the
ergonomic layer on top of this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import AwareDatetime, BaseModel, Field

from .errors import CommandTimeoutError, ConnectFailedError, SyncError, error_for_code


class Health(BaseModel):
    """
    Liveness; needs no credentials, so it names nothing of the deployment but its version.
    """

    status: Literal["ok"]
    version: str


class Status(StrEnum):
    ready = "ready"
    unavailable = "unavailable"


class Kind(StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"


class Storage(BaseModel):
    kind: Kind
    ok: bool
    error: str | None = None
    """
    Why the storage check failed.
    """


class Kind1(StrEnum):
    local = "local"
    redis = "redis"


class Broker(BaseModel):
    kind: Kind1
    connected: bool


class Readiness(BaseModel):
    status: Status
    storage: Storage
    broker: Broker


class Service(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    unique_name: str | None = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    friendly_name: str | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    url: str
    webhook_url: str | None = None
    webhooks_from_rest_enabled: bool = False
    reachability_webhooks_enabled: bool = False
    acl_enabled: bool = False
    reachability_debouncing_enabled: bool = False
    reachability_debouncing_window: int = 5000
    links: dict[str, str]


class Document(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    unique_name: str | None = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    url: str
    revision: str
    """
    Opaque; changes on every write. Send it back as If-Match.
    """
    data: dict[str, Any]
    links: dict[str, str]
    date_expires: AwareDatetime | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    created_by: str = "system"
    """
    Identity of the writer; `system` for REST writes.
    """


class List(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    unique_name: str | None = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    url: str
    revision: str
    """
    Opaque; changes on every write. Send it back as If-Match.
    """
    links: dict[str, str]
    date_expires: AwareDatetime | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    created_by: str = "system"
    """
    Identity of the writer; `system` for REST writes.
    """


class Map(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    unique_name: str | None = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    url: str
    revision: str
    """
    Opaque; changes on every write. Send it back as If-Match.
    """
    links: dict[str, str]
    date_expires: AwareDatetime | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    created_by: str = "system"
    """
    Identity of the writer; `system` for REST writes.
    """


class Stream(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    unique_name: str | None = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    url: str
    links: dict[str, str]
    date_expires: AwareDatetime | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    created_by: str = "system"
    """
    Identity of the writer; `system` for REST writes.
    """


class ListItem(BaseModel):
    index: Annotated[int, Field(ge=0)]
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    list_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    url: str
    revision: str
    """
    Opaque; changes on every write. Send it back as If-Match.
    """
    data: dict[str, Any]
    date_expires: AwareDatetime | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    created_by: str = "system"
    """
    Identity of the writer; `system` for REST writes.
    """


class MapItem(BaseModel):
    key: str
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    map_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    url: str
    revision: str
    """
    Opaque; changes on every write. Send it back as If-Match.
    """
    data: dict[str, Any]
    date_expires: AwareDatetime | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    created_by: str = "system"
    """
    Identity of the writer; `system` for REST writes.
    """


class StreamMessage(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    data: dict[str, Any]


class Permission(BaseModel):
    """
    What one identity may do with one object (enforced when the service has ACLs on).
    """

    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    identity: str
    read: bool
    write: bool
    manage: bool
    url: str


class DocumentPermission(Permission):
    document_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]


class ListPermission(Permission):
    list_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]


class MapPermission(Permission):
    map_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]


class PageMeta(BaseModel):
    page: Annotated[int, Field(ge=0)]
    page_size: Annotated[int, Field(ge=1)]
    first_page_url: str
    previous_page_url: str | None = None
    next_page_url: str | None = None
    """
    The next page, or null on the last page.
    """
    url: str
    """
    This page.
    """
    key: str
    """
    Name of the property that holds the records.
    """


class ServicePage(BaseModel):
    services: list[Service]
    meta: PageMeta


class DocumentPage(BaseModel):
    documents: list[Document]
    meta: PageMeta


class ListPage(BaseModel):
    lists: list[List]
    meta: PageMeta


class MapPage(BaseModel):
    maps: list[Map]
    meta: PageMeta


class StreamPage(BaseModel):
    streams: list[Stream]
    meta: PageMeta


class ListItemPage(BaseModel):
    items: list[ListItem]
    meta: PageMeta


class MapItemPage(BaseModel):
    items: list[MapItem]
    meta: PageMeta


class DocumentPermissionPage(BaseModel):
    permissions: list[DocumentPermission]
    meta: PageMeta


class ListPermissionPage(BaseModel):
    permissions: list[ListPermission]
    meta: PageMeta


class MapPermissionPage(BaseModel):
    permissions: list[MapPermission]
    meta: PageMeta


class Error(BaseModel):
    code: int
    """
    Error code from spec/errors.yaml.
    """
    message: str
    """
    What went wrong, for people.
    """
    more_info: str | None = None
    """
    A page about the code.
    """
    status: int
    """
    The HTTP status of the response.
    """


# ---- client (rendered by codegen/templates/rest.py.j2) -----------------------------------

_PageT = TypeVar("_PageT", bound=BaseModel)

_FormValue = str | int | bool | Mapping[str, Any] | None

OPERATIONS: Final[Mapping[str, tuple[str, str]]] = {
    "health": ("GET", "/healthz"),
    "readiness": ("GET", "/readyz"),
    "listServices": ("GET", "/v1/Services"),
    "createService": ("POST", "/v1/Services"),
    "fetchService": ("GET", "/v1/Services/{Sid}"),
    "updateService": ("POST", "/v1/Services/{Sid}"),
    "deleteService": ("DELETE", "/v1/Services/{Sid}"),
    "listDocuments": ("GET", "/v1/Services/{ServiceSid}/Documents"),
    "createDocument": ("POST", "/v1/Services/{ServiceSid}/Documents"),
    "fetchDocument": ("GET", "/v1/Services/{ServiceSid}/Documents/{Sid}"),
    "updateDocument": ("POST", "/v1/Services/{ServiceSid}/Documents/{Sid}"),
    "deleteDocument": ("DELETE", "/v1/Services/{ServiceSid}/Documents/{Sid}"),
    "listDocumentPermissions": (
        "GET",
        "/v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions",
    ),
    "fetchDocumentPermission": (
        "GET",
        "/v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions/{Identity}",
    ),
    "updateDocumentPermission": (
        "POST",
        "/v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions/{Identity}",
    ),
    "deleteDocumentPermission": (
        "DELETE",
        "/v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions/{Identity}",
    ),
    "listLists": ("GET", "/v1/Services/{ServiceSid}/Lists"),
    "createList": ("POST", "/v1/Services/{ServiceSid}/Lists"),
    "fetchList": ("GET", "/v1/Services/{ServiceSid}/Lists/{Sid}"),
    "updateList": ("POST", "/v1/Services/{ServiceSid}/Lists/{Sid}"),
    "deleteList": ("DELETE", "/v1/Services/{ServiceSid}/Lists/{Sid}"),
    "listListItems": ("GET", "/v1/Services/{ServiceSid}/Lists/{ListSid}/Items"),
    "createListItem": ("POST", "/v1/Services/{ServiceSid}/Lists/{ListSid}/Items"),
    "fetchListItem": ("GET", "/v1/Services/{ServiceSid}/Lists/{ListSid}/Items/{Index}"),
    "updateListItem": ("POST", "/v1/Services/{ServiceSid}/Lists/{ListSid}/Items/{Index}"),
    "deleteListItem": ("DELETE", "/v1/Services/{ServiceSid}/Lists/{ListSid}/Items/{Index}"),
    "listListPermissions": ("GET", "/v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions"),
    "fetchListPermission": (
        "GET",
        "/v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions/{Identity}",
    ),
    "updateListPermission": (
        "POST",
        "/v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions/{Identity}",
    ),
    "deleteListPermission": (
        "DELETE",
        "/v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions/{Identity}",
    ),
    "listMaps": ("GET", "/v1/Services/{ServiceSid}/Maps"),
    "createMap": ("POST", "/v1/Services/{ServiceSid}/Maps"),
    "fetchMap": ("GET", "/v1/Services/{ServiceSid}/Maps/{Sid}"),
    "updateMap": ("POST", "/v1/Services/{ServiceSid}/Maps/{Sid}"),
    "deleteMap": ("DELETE", "/v1/Services/{ServiceSid}/Maps/{Sid}"),
    "listMapItems": ("GET", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Items"),
    "createMapItem": ("POST", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Items"),
    "fetchMapItem": ("GET", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Items/{Key}"),
    "updateMapItem": ("POST", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Items/{Key}"),
    "deleteMapItem": ("DELETE", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Items/{Key}"),
    "listMapPermissions": ("GET", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions"),
    "fetchMapPermission": ("GET", "/v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions/{Identity}"),
    "updateMapPermission": (
        "POST",
        "/v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions/{Identity}",
    ),
    "deleteMapPermission": (
        "DELETE",
        "/v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions/{Identity}",
    ),
    "listStreams": ("GET", "/v1/Services/{ServiceSid}/Streams"),
    "createStream": ("POST", "/v1/Services/{ServiceSid}/Streams"),
    "fetchStream": ("GET", "/v1/Services/{ServiceSid}/Streams/{Sid}"),
    "updateStream": ("POST", "/v1/Services/{ServiceSid}/Streams/{Sid}"),
    "deleteStream": ("DELETE", "/v1/Services/{ServiceSid}/Streams/{Sid}"),
    "createStreamMessage": ("POST", "/v1/Services/{ServiceSid}/Streams/{StreamSid}/Messages"),
}
"""HTTP method and path template of every operation, by operationId."""


def _path(value: str | int) -> str:
    """One path segment: SIDs, unique names, keys and identities may hold any character."""
    return quote(str(value), safe="")


def _fields(values: Mapping[str, _FormValue]) -> dict[str, str]:
    """Wire encoding of form fields, query parameters and headers; `None` is left out."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, int | str):
            out[name] = str(value)
        else:
            out[name] = json.dumps(
                dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
    return out


def _error_from_response(response: httpx.Response) -> SyncError:
    try:
        body = Error.model_validate_json(response.content)
    except ValueError:
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        return error_for_code(
            response.status_code, f"HTTP {response.status_code}: {text}", response.status_code
        )
    return error_for_code(body.code, body.message, body.status or response.status_code)


def _transport_error(exc: httpx.TransportError, method: str, url: str) -> SyncError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectFailedError(f"{method} {url} was not sent: {type(exc).__name__}: {exc}")
    return CommandTimeoutError(
        f"{method} {url} failed after it was sent ({type(exc).__name__}: {exc}); "
        "whether it was applied is unknown"
    )


class SyncRestApi:
    """Low-level async client of the REST API v1: one method per operation of spec/http.yaml.

    `http` is any `httpx.AsyncClient` (give it a `transport=` to route requests elsewhere,
    e.g. `httpx.MockTransport` in tests); it is not closed by this class. `base_url` is the
    server's origin without `/v1` (e.g. `http://127.0.0.1:4700`). `auth` is sent with every
    operation that requires it: a `(username, password)` pair for HTTP Basic (account SID +
    auth token, or API key SID + secret) or any `httpx.Auth`; `None` uses the client's own.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._auth: httpx.Auth | None = httpx.BasicAuth(*auth) if isinstance(auth, tuple) else auth

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        secured: bool = True,
    ) -> httpx.Response:
        url = self._base_url + path
        options: dict[str, Any] = {}
        if not secured:
            options["auth"] = None
        elif self._auth is not None:
            options["auth"] = self._auth
        try:
            response = await self._http.request(
                method, url, params=params, data=form, headers=headers, **options
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, method, path) from exc
        if not response.is_success:
            raise _error_from_response(response)
        return response

    async def fetch_page(self, url: str, page_type: type[_PageT]) -> _PageT:
        """The page at `url` (a `meta.next_page_url`, `previous_page_url` or `first_page_url`).

        Only the path and query of `url` are used, on this client's `base_url`: credentials
        never go to another host, and a server behind a proxy that reports its inner address
        still pages correctly."""
        parts = urlsplit(url)
        if not parts.path.startswith("/v1/"):
            raise ValueError(f"not a REST API v1 page URL: {url!r}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = await self._request("GET", path)
        return page_type.model_validate_json(response.content)

    async def health(self) -> Health:
        """Liveness and version of the server.

        `health`: GET /healthz
        """
        response = await self._request(
            "GET",
            "/healthz",
            secured=False,
        )
        return Health.model_validate_json(response.content)

    async def readiness(self) -> Readiness:
        """Whether this node can serve requests (for load balancers).

        200 when the node's storage answers; 503 when it does not (route clients elsewhere).
        `broker.connected` is false while a Redis broker is reconnecting: the node still
        serves, and events from other nodes catch up once it is back.

        `readiness`: GET /readyz
        """
        response = await self._request(
            "GET",
            "/readyz",
            secured=False,
        )
        return Readiness.model_validate_json(response.content)

    async def list_services(
        self,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> ServicePage:
        """Page through the services of the account, oldest first.

        `listServices`: GET /v1/Services

        Args:
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            "/v1/Services",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return ServicePage.model_validate_json(response.content)

    async def create_service(
        self,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        webhook_url: str | None = None,
        webhooks_from_rest_enabled: bool | None = None,
        reachability_webhooks_enabled: bool | None = None,
        acl_enabled: bool | None = None,
        reachability_debouncing_enabled: bool | None = None,
        reachability_debouncing_window: int | None = None,
    ) -> Service:
        """Create a service; every setting left out keeps its default.

        `createService`: POST /v1/Services

        Args:
            friendly_name: `FriendlyName`. A label for people.
            unique_name: `UniqueName`. An application-chosen name usable in paths.
            webhook_url: `WebhookUrl`. http(s) URL that receives webhooks for changes; empty
                to turn them off.
            webhooks_from_rest_enabled: `WebhooksFromRestEnabled`. Also send webhooks for
                changes made through this REST API.
            reachability_webhooks_enabled: `ReachabilityWebhooksEnabled`. Send webhooks when
                an identity connects or disconnects.
            acl_enabled: `AclEnabled`. Enforce per-object permissions on realtime clients.
            reachability_debouncing_enabled: `ReachabilityDebouncingEnabled`. Delay
                disconnect webhooks to absorb short reconnects.
            reachability_debouncing_window: `ReachabilityDebouncingWindow`. The debouncing
                delay in milliseconds.
        """
        response = await self._request(
            "POST",
            "/v1/Services",
            form=_fields(
                {
                    "FriendlyName": friendly_name,
                    "UniqueName": unique_name,
                    "WebhookUrl": webhook_url,
                    "WebhooksFromRestEnabled": webhooks_from_rest_enabled,
                    "ReachabilityWebhooksEnabled": reachability_webhooks_enabled,
                    "AclEnabled": acl_enabled,
                    "ReachabilityDebouncingEnabled": reachability_debouncing_enabled,
                    "ReachabilityDebouncingWindow": reachability_debouncing_window,
                }
            ),
        )
        return Service.model_validate_json(response.content)

    async def fetch_service(self, sid: str) -> Service:
        """Read one service.

        `fetchService`: GET /v1/Services/{Sid}

        Args:
            sid: `Sid`. SID or unique name of the resource.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(sid)}",
        )
        return Service.model_validate_json(response.content)

    async def update_service(
        self,
        sid: str,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        webhook_url: str | None = None,
        webhooks_from_rest_enabled: bool | None = None,
        reachability_webhooks_enabled: bool | None = None,
        acl_enabled: bool | None = None,
        reachability_debouncing_enabled: bool | None = None,
        reachability_debouncing_window: int | None = None,
    ) -> Service:
        """Change the settings that are sent; the others stay as they are.

        `updateService`: POST /v1/Services/{Sid}

        Args:
            sid: `Sid`. SID or unique name of the resource.
            friendly_name: `FriendlyName`. A label for people.
            unique_name: `UniqueName`. An application-chosen name usable in paths.
            webhook_url: `WebhookUrl`. http(s) URL that receives webhooks for changes; empty
                to turn them off.
            webhooks_from_rest_enabled: `WebhooksFromRestEnabled`. Also send webhooks for
                changes made through this REST API.
            reachability_webhooks_enabled: `ReachabilityWebhooksEnabled`. Send webhooks when
                an identity connects or disconnects.
            acl_enabled: `AclEnabled`. Enforce per-object permissions on realtime clients.
            reachability_debouncing_enabled: `ReachabilityDebouncingEnabled`. Delay
                disconnect webhooks to absorb short reconnects.
            reachability_debouncing_window: `ReachabilityDebouncingWindow`. The debouncing
                delay in milliseconds.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(sid)}",
            form=_fields(
                {
                    "FriendlyName": friendly_name,
                    "UniqueName": unique_name,
                    "WebhookUrl": webhook_url,
                    "WebhooksFromRestEnabled": webhooks_from_rest_enabled,
                    "ReachabilityWebhooksEnabled": reachability_webhooks_enabled,
                    "AclEnabled": acl_enabled,
                    "ReachabilityDebouncingEnabled": reachability_debouncing_enabled,
                    "ReachabilityDebouncingWindow": reachability_debouncing_window,
                }
            ),
        )
        return Service.model_validate_json(response.content)

    async def delete_service(self, sid: str) -> None:
        """Delete a service and everything in it.

        `deleteService`: DELETE /v1/Services/{Sid}

        Args:
            sid: `Sid`. SID or unique name of the resource.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(sid)}",
        )

    async def list_documents(
        self,
        service_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> DocumentPage:
        """Page through the documents of a service.

        `listDocuments`: GET /v1/Services/{ServiceSid}/Documents

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Documents",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return DocumentPage.model_validate_json(response.content)

    async def create_document(
        self,
        service_sid: str,
        *,
        unique_name: str | None = None,
        data: Mapping[str, Any] | None = None,
        ttl: int | None = None,
    ) -> Document:
        """Create a document; it starts as `{}` unless Data is given.

        `createDocument`: POST /v1/Services/{ServiceSid}/Documents

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            unique_name: `UniqueName`. An application-chosen name, unique per kind within
                the service.
            data: `Data`. The JSON object to store (at most 16 KiB encoded).
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Documents",
            form=_fields({"UniqueName": unique_name, "Data": data, "Ttl": ttl}),
        )
        return Document.model_validate_json(response.content)

    async def fetch_document(self, service_sid: str, sid: str) -> Document:
        """Read one document with its data and revision.

        `fetchDocument`: GET /v1/Services/{ServiceSid}/Documents/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(sid)}",
        )
        return Document.model_validate_json(response.content)

    async def update_document(
        self,
        service_sid: str,
        sid: str,
        *,
        data: Mapping[str, Any] | None = None,
        ttl: int | None = None,
        if_match: str | None = None,
    ) -> Document:
        """Replace the data and/or change the TTL of a document.

        Data replaces the whole object (no merge). With If-Match the write happens only if
        the document is still at that revision; otherwise it fails with 54103 (HTTP 412).

        `updateDocument`: POST /v1/Services/{ServiceSid}/Documents/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
            data: `Data`. The JSON object to store (at most 16 KiB encoded).
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
            if_match: `If-Match`. Apply the change only if the target is still at this
                revision.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(sid)}",
            form=_fields({"Data": data, "Ttl": ttl}),
            headers=_fields({"If-Match": if_match}),
        )
        return Document.model_validate_json(response.content)

    async def delete_document(self, service_sid: str, sid: str) -> None:
        """Delete a document.

        `deleteDocument`: DELETE /v1/Services/{ServiceSid}/Documents/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(sid)}",
        )

    async def list_document_permissions(
        self,
        service_sid: str,
        document_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> DocumentPermissionPage:
        """Page through the per-identity permissions of a document.

        `listDocumentPermissions`: GET /v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            document_sid: `DocumentSid`. SID or unique name of the document.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(document_sid)}/Permissions",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return DocumentPermissionPage.model_validate_json(response.content)

    async def fetch_document_permission(
        self, service_sid: str, document_sid: str, identity: str
    ) -> DocumentPermission:
        """Read the permission of one identity on a document.

        `fetchDocumentPermission`: GET /v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            document_sid: `DocumentSid`. SID or unique name of the document.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(document_sid)}/Permissions/{_path(identity)}",
        )
        return DocumentPermission.model_validate_json(response.content)

    async def update_document_permission(
        self,
        service_sid: str,
        document_sid: str,
        identity: str,
        *,
        read: bool,
        write: bool,
        manage: bool,
    ) -> DocumentPermission:
        """Set (create or overwrite) the permission of one identity on a document.

        `updateDocumentPermission`: POST /v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            document_sid: `DocumentSid`. SID or unique name of the document.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
            read: `Read`. The identity may read the object and subscribe to it.
            write: `Write`. The identity may change the object's data or items.
            manage: `Manage`. The identity may delete the object.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(document_sid)}/Permissions/{_path(identity)}",
            form=_fields({"Read": read, "Write": write, "Manage": manage}),
        )
        return DocumentPermission.model_validate_json(response.content)

    async def delete_document_permission(
        self, service_sid: str, document_sid: str, identity: str
    ) -> None:
        """Remove the permission of one identity on a document.

        `deleteDocumentPermission`: DELETE /v1/Services/{ServiceSid}/Documents/{DocumentSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            document_sid: `DocumentSid`. SID or unique name of the document.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Documents/{_path(document_sid)}/Permissions/{_path(identity)}",
        )

    async def list_lists(
        self,
        service_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> ListPage:
        """Page through the lists of a service.

        `listLists`: GET /v1/Services/{ServiceSid}/Lists

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Lists",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return ListPage.model_validate_json(response.content)

    async def create_list(
        self,
        service_sid: str,
        *,
        unique_name: str | None = None,
        ttl: int | None = None,
        collection_ttl: int | None = None,
    ) -> List:
        """Create an empty list.

        `createList`: POST /v1/Services/{ServiceSid}/Lists

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            unique_name: `UniqueName`. An application-chosen name, unique per kind within
                the service.
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
            collection_ttl: `CollectionTtl`. Same as Ttl (seconds until the collection
                expires); Ttl wins if both are sent.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Lists",
            form=_fields({"UniqueName": unique_name, "Ttl": ttl, "CollectionTtl": collection_ttl}),
        )
        return List.model_validate_json(response.content)

    async def fetch_list(self, service_sid: str, sid: str) -> List:
        """Read one list (not its items).

        `fetchList`: GET /v1/Services/{ServiceSid}/Lists/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(sid)}",
        )
        return List.model_validate_json(response.content)

    async def update_list(
        self,
        service_sid: str,
        sid: str,
        *,
        ttl: int | None = None,
        collection_ttl: int | None = None,
    ) -> List:
        """Change the TTL of a list.

        `updateList`: POST /v1/Services/{ServiceSid}/Lists/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
            collection_ttl: `CollectionTtl`. Same as Ttl (seconds until the collection
                expires); Ttl wins if both are sent.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(sid)}",
            form=_fields({"Ttl": ttl, "CollectionTtl": collection_ttl}),
        )
        return List.model_validate_json(response.content)

    async def delete_list(self, service_sid: str, sid: str) -> None:
        """Delete a list and its items.

        `deleteList`: DELETE /v1/Services/{ServiceSid}/Lists/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(sid)}",
        )

    async def list_list_items(
        self,
        service_sid: str,
        list_sid: str,
        *,
        order: Literal["asc", "desc"] | None = None,
        from_: int | None = None,
        bounds: Literal["inclusive", "exclusive"] | None = None,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> ListItemPage:
        """Page through the items of a list by index.

        `listListItems`: GET /v1/Services/{ServiceSid}/Lists/{ListSid}/Items

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            order: `Order`. Ascending (default) or descending by index or key.
            from_: `From`. Start at this index.
            bounds: `Bounds`. Whether the item named by From is included (default) or
                skipped.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Items",
            params=_fields(
                {
                    "Order": order,
                    "From": from_,
                    "Bounds": bounds,
                    "PageSize": page_size,
                    "Page": page,
                    "PageToken": page_token,
                }
            ),
        )
        return ListItemPage.model_validate_json(response.content)

    async def create_list_item(
        self,
        service_sid: str,
        list_sid: str,
        *,
        data: Mapping[str, Any],
        ttl: int | None = None,
        item_ttl: int | None = None,
        collection_ttl: int | None = None,
    ) -> ListItem:
        """Append an item; it gets the next index, which is never reused.

        `createListItem`: POST /v1/Services/{ServiceSid}/Lists/{ListSid}/Items

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            data: `Data`. The JSON object to store (at most 16 KiB encoded).
            ttl: `Ttl`. Seconds until the item expires; 0 means never.
            item_ttl: `ItemTtl`. Same as Ttl; ItemTtl wins if both are sent.
            collection_ttl: `CollectionTtl`. Also set the TTL of the whole collection, in
                seconds.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Items",
            form=_fields(
                {"Data": data, "Ttl": ttl, "ItemTtl": item_ttl, "CollectionTtl": collection_ttl}
            ),
        )
        return ListItem.model_validate_json(response.content)

    async def fetch_list_item(self, service_sid: str, list_sid: str, index: int) -> ListItem:
        """Read one list item.

        `fetchListItem`: GET /v1/Services/{ServiceSid}/Lists/{ListSid}/Items/{Index}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            index: `Index`. Index of the list item.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Items/{_path(index)}",
        )
        return ListItem.model_validate_json(response.content)

    async def update_list_item(
        self,
        service_sid: str,
        list_sid: str,
        index: int,
        *,
        data: Mapping[str, Any] | None = None,
        ttl: int | None = None,
        item_ttl: int | None = None,
        collection_ttl: int | None = None,
        if_match: str | None = None,
    ) -> ListItem:
        """Replace the data and/or change the TTL of a list item.

        With If-Match the write happens only at that item revision (else 54155, HTTP 412).

        `updateListItem`: POST /v1/Services/{ServiceSid}/Lists/{ListSid}/Items/{Index}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            index: `Index`. Index of the list item.
            data: `Data`. The JSON object to store (at most 16 KiB encoded).
            ttl: `Ttl`. Seconds until the item expires; 0 means never.
            item_ttl: `ItemTtl`. Same as Ttl; ItemTtl wins if both are sent.
            collection_ttl: `CollectionTtl`. Also set the TTL of the whole collection, in
                seconds.
            if_match: `If-Match`. Apply the change only if the target is still at this
                revision.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Items/{_path(index)}",
            form=_fields(
                {"Data": data, "Ttl": ttl, "ItemTtl": item_ttl, "CollectionTtl": collection_ttl}
            ),
            headers=_fields({"If-Match": if_match}),
        )
        return ListItem.model_validate_json(response.content)

    async def delete_list_item(
        self, service_sid: str, list_sid: str, index: int, *, if_match: str | None = None
    ) -> None:
        """Remove a list item; its index is not reused.

        `deleteListItem`: DELETE /v1/Services/{ServiceSid}/Lists/{ListSid}/Items/{Index}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            index: `Index`. Index of the list item.
            if_match: `If-Match`. Apply the change only if the target is still at this
                revision.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Items/{_path(index)}",
            headers=_fields({"If-Match": if_match}),
        )

    async def list_list_permissions(
        self,
        service_sid: str,
        list_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> ListPermissionPage:
        """Page through the per-identity permissions of a list.

        `listListPermissions`: GET /v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Permissions",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return ListPermissionPage.model_validate_json(response.content)

    async def fetch_list_permission(
        self, service_sid: str, list_sid: str, identity: str
    ) -> ListPermission:
        """Read the permission of one identity on a list.

        `fetchListPermission`: GET /v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Permissions/{_path(identity)}",
        )
        return ListPermission.model_validate_json(response.content)

    async def update_list_permission(
        self,
        service_sid: str,
        list_sid: str,
        identity: str,
        *,
        read: bool,
        write: bool,
        manage: bool,
    ) -> ListPermission:
        """Set (create or overwrite) the permission of one identity on a list.

        `updateListPermission`: POST /v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
            read: `Read`. The identity may read the object and subscribe to it.
            write: `Write`. The identity may change the object's data or items.
            manage: `Manage`. The identity may delete the object.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Permissions/{_path(identity)}",
            form=_fields({"Read": read, "Write": write, "Manage": manage}),
        )
        return ListPermission.model_validate_json(response.content)

    async def delete_list_permission(self, service_sid: str, list_sid: str, identity: str) -> None:
        """Remove the permission of one identity on a list.

        `deleteListPermission`: DELETE /v1/Services/{ServiceSid}/Lists/{ListSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            list_sid: `ListSid`. SID or unique name of the list.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Lists/{_path(list_sid)}/Permissions/{_path(identity)}",
        )

    async def list_maps(
        self,
        service_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> MapPage:
        """Page through the maps of a service.

        `listMaps`: GET /v1/Services/{ServiceSid}/Maps

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Maps",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return MapPage.model_validate_json(response.content)

    async def create_map(
        self,
        service_sid: str,
        *,
        unique_name: str | None = None,
        ttl: int | None = None,
        collection_ttl: int | None = None,
    ) -> Map:
        """Create an empty map.

        `createMap`: POST /v1/Services/{ServiceSid}/Maps

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            unique_name: `UniqueName`. An application-chosen name, unique per kind within
                the service.
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
            collection_ttl: `CollectionTtl`. Same as Ttl (seconds until the collection
                expires); Ttl wins if both are sent.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Maps",
            form=_fields({"UniqueName": unique_name, "Ttl": ttl, "CollectionTtl": collection_ttl}),
        )
        return Map.model_validate_json(response.content)

    async def fetch_map(self, service_sid: str, sid: str) -> Map:
        """Read one map (not its items).

        `fetchMap`: GET /v1/Services/{ServiceSid}/Maps/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(sid)}",
        )
        return Map.model_validate_json(response.content)

    async def update_map(
        self,
        service_sid: str,
        sid: str,
        *,
        ttl: int | None = None,
        collection_ttl: int | None = None,
    ) -> Map:
        """Change the TTL of a map.

        `updateMap`: POST /v1/Services/{ServiceSid}/Maps/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
            collection_ttl: `CollectionTtl`. Same as Ttl (seconds until the collection
                expires); Ttl wins if both are sent.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(sid)}",
            form=_fields({"Ttl": ttl, "CollectionTtl": collection_ttl}),
        )
        return Map.model_validate_json(response.content)

    async def delete_map(self, service_sid: str, sid: str) -> None:
        """Delete a map and its items.

        `deleteMap`: DELETE /v1/Services/{ServiceSid}/Maps/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(sid)}",
        )

    async def list_map_items(
        self,
        service_sid: str,
        map_sid: str,
        *,
        order: Literal["asc", "desc"] | None = None,
        from_: str | None = None,
        bounds: Literal["inclusive", "exclusive"] | None = None,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> MapItemPage:
        """Page through the items of a map, ordered by key.

        `listMapItems`: GET /v1/Services/{ServiceSid}/Maps/{MapSid}/Items

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            order: `Order`. Ascending (default) or descending by index or key.
            from_: `From`. Start at this key.
            bounds: `Bounds`. Whether the item named by From is included (default) or
                skipped.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Items",
            params=_fields(
                {
                    "Order": order,
                    "From": from_,
                    "Bounds": bounds,
                    "PageSize": page_size,
                    "Page": page,
                    "PageToken": page_token,
                }
            ),
        )
        return MapItemPage.model_validate_json(response.content)

    async def create_map_item(
        self,
        service_sid: str,
        map_sid: str,
        *,
        key: str,
        data: Mapping[str, Any],
        ttl: int | None = None,
        item_ttl: int | None = None,
        collection_ttl: int | None = None,
    ) -> MapItem:
        """Add an item under a new key; an existing key fails with 54208 (HTTP 409).

        `createMapItem`: POST /v1/Services/{ServiceSid}/Maps/{MapSid}/Items

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            key: `Key`. The new item's key.
            data: `Data`. The JSON object to store (at most 16 KiB encoded).
            ttl: `Ttl`. Seconds until the item expires; 0 means never.
            item_ttl: `ItemTtl`. Same as Ttl; ItemTtl wins if both are sent.
            collection_ttl: `CollectionTtl`. Also set the TTL of the whole collection, in
                seconds.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Items",
            form=_fields(
                {
                    "Key": key,
                    "Data": data,
                    "Ttl": ttl,
                    "ItemTtl": item_ttl,
                    "CollectionTtl": collection_ttl,
                }
            ),
        )
        return MapItem.model_validate_json(response.content)

    async def fetch_map_item(self, service_sid: str, map_sid: str, key: str) -> MapItem:
        """Read one map item.

        `fetchMapItem`: GET /v1/Services/{ServiceSid}/Maps/{MapSid}/Items/{Key}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            key: `Key`. Key of the map item (percent-encoded in the path).
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Items/{_path(key)}",
        )
        return MapItem.model_validate_json(response.content)

    async def update_map_item(
        self,
        service_sid: str,
        map_sid: str,
        key: str,
        *,
        data: Mapping[str, Any] | None = None,
        ttl: int | None = None,
        item_ttl: int | None = None,
        collection_ttl: int | None = None,
        if_match: str | None = None,
    ) -> MapItem:
        """Replace the data and/or change the TTL of an existing map item.

        With If-Match the write happens only at that item revision (else 54205, HTTP 412).

        `updateMapItem`: POST /v1/Services/{ServiceSid}/Maps/{MapSid}/Items/{Key}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            key: `Key`. Key of the map item (percent-encoded in the path).
            data: `Data`. The JSON object to store (at most 16 KiB encoded).
            ttl: `Ttl`. Seconds until the item expires; 0 means never.
            item_ttl: `ItemTtl`. Same as Ttl; ItemTtl wins if both are sent.
            collection_ttl: `CollectionTtl`. Also set the TTL of the whole collection, in
                seconds.
            if_match: `If-Match`. Apply the change only if the target is still at this
                revision.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Items/{_path(key)}",
            form=_fields(
                {"Data": data, "Ttl": ttl, "ItemTtl": item_ttl, "CollectionTtl": collection_ttl}
            ),
            headers=_fields({"If-Match": if_match}),
        )
        return MapItem.model_validate_json(response.content)

    async def delete_map_item(
        self, service_sid: str, map_sid: str, key: str, *, if_match: str | None = None
    ) -> None:
        """Remove a map item.

        `deleteMapItem`: DELETE /v1/Services/{ServiceSid}/Maps/{MapSid}/Items/{Key}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            key: `Key`. Key of the map item (percent-encoded in the path).
            if_match: `If-Match`. Apply the change only if the target is still at this
                revision.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Items/{_path(key)}",
            headers=_fields({"If-Match": if_match}),
        )

    async def list_map_permissions(
        self,
        service_sid: str,
        map_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> MapPermissionPage:
        """Page through the per-identity permissions of a map.

        `listMapPermissions`: GET /v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Permissions",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return MapPermissionPage.model_validate_json(response.content)

    async def fetch_map_permission(
        self, service_sid: str, map_sid: str, identity: str
    ) -> MapPermission:
        """Read the permission of one identity on a map.

        `fetchMapPermission`: GET /v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Permissions/{_path(identity)}",
        )
        return MapPermission.model_validate_json(response.content)

    async def update_map_permission(
        self,
        service_sid: str,
        map_sid: str,
        identity: str,
        *,
        read: bool,
        write: bool,
        manage: bool,
    ) -> MapPermission:
        """Set (create or overwrite) the permission of one identity on a map.

        `updateMapPermission`: POST /v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
            read: `Read`. The identity may read the object and subscribe to it.
            write: `Write`. The identity may change the object's data or items.
            manage: `Manage`. The identity may delete the object.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Permissions/{_path(identity)}",
            form=_fields({"Read": read, "Write": write, "Manage": manage}),
        )
        return MapPermission.model_validate_json(response.content)

    async def delete_map_permission(self, service_sid: str, map_sid: str, identity: str) -> None:
        """Remove the permission of one identity on a map.

        `deleteMapPermission`: DELETE /v1/Services/{ServiceSid}/Maps/{MapSid}/Permissions/{Identity}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            map_sid: `MapSid`. SID or unique name of the map.
            identity: `Identity`. The identity (as in access tokens) the permission applies
                to.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Maps/{_path(map_sid)}/Permissions/{_path(identity)}",
        )

    async def list_streams(
        self,
        service_sid: str,
        *,
        page_size: int | None = None,
        page: int | None = None,
        page_token: str | None = None,
    ) -> StreamPage:
        """Page through the streams of a service.

        `listStreams`: GET /v1/Services/{ServiceSid}/Streams

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            page_size: `PageSize`. Records per page (default 50).
            page: `Page`. Zero-based page number, echoed in `meta.page`.
            page_token: `PageToken`. Opaque cursor taken from `meta.next_page_url`.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Streams",
            params=_fields({"PageSize": page_size, "Page": page, "PageToken": page_token}),
        )
        return StreamPage.model_validate_json(response.content)

    async def create_stream(
        self, service_sid: str, *, unique_name: str | None = None, ttl: int | None = None
    ) -> Stream:
        """Create a stream.

        `createStream`: POST /v1/Services/{ServiceSid}/Streams

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            unique_name: `UniqueName`. An application-chosen name, unique per kind within
                the service.
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Streams",
            form=_fields({"UniqueName": unique_name, "Ttl": ttl}),
        )
        return Stream.model_validate_json(response.content)

    async def fetch_stream(self, service_sid: str, sid: str) -> Stream:
        """Read one stream.

        `fetchStream`: GET /v1/Services/{ServiceSid}/Streams/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        response = await self._request(
            "GET",
            f"/v1/Services/{_path(service_sid)}/Streams/{_path(sid)}",
        )
        return Stream.model_validate_json(response.content)

    async def update_stream(self, service_sid: str, sid: str, *, ttl: int | None = None) -> Stream:
        """Change the TTL of a stream.

        `updateStream`: POST /v1/Services/{ServiceSid}/Streams/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
            ttl: `Ttl`. Seconds until the object expires; 0 means never.
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Streams/{_path(sid)}",
            form=_fields({"Ttl": ttl}),
        )
        return Stream.model_validate_json(response.content)

    async def delete_stream(self, service_sid: str, sid: str) -> None:
        """Delete a stream.

        `deleteStream`: DELETE /v1/Services/{ServiceSid}/Streams/{Sid}

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            sid: `Sid`. SID or unique name of the resource.
        """
        await self._request(
            "DELETE",
            f"/v1/Services/{_path(service_sid)}/Streams/{_path(sid)}",
        )

    async def create_stream_message(
        self, service_sid: str, stream_sid: str, *, data: Mapping[str, Any]
    ) -> StreamMessage:
        """Publish a message to the current subscribers of a stream (at most 4 KiB of JSON).

        `createStreamMessage`: POST /v1/Services/{ServiceSid}/Streams/{StreamSid}/Messages

        Args:
            service_sid: `ServiceSid`. SID or unique name of the service.
            stream_sid: `StreamSid`. SID or unique name of the stream.
            data: `Data`. The JSON object to publish (at most 4 KiB encoded).
        """
        response = await self._request(
            "POST",
            f"/v1/Services/{_path(service_sid)}/Streams/{_path(stream_sid)}/Messages",
            form=_fields({"Data": data}),
        )
        return StreamMessage.model_validate_json(response.content)


__all__ = [
    "OPERATIONS",
    "SyncRestApi",
    "Health",
    "Status",
    "Kind",
    "Storage",
    "Kind1",
    "Broker",
    "Readiness",
    "Service",
    "Document",
    "List",
    "Map",
    "Stream",
    "ListItem",
    "MapItem",
    "StreamMessage",
    "Permission",
    "DocumentPermission",
    "ListPermission",
    "MapPermission",
    "PageMeta",
    "ServicePage",
    "DocumentPage",
    "ListPage",
    "MapPage",
    "StreamPage",
    "ListItemPage",
    "MapItemPage",
    "DocumentPermissionPage",
    "ListPermissionPage",
    "MapPermissionPage",
    "Error",
]
