"""Server-side REST client for the Sync REST API v1 (Services, Documents, Lists, Maps, Streams).

    from sync_sdk.rest import SyncRestClient, mint_access_token

    async with SyncRestClient("AC…", "auth-token", base_url="http://127.0.0.1:4700") as client:
        service = client.service("IS…")  # SID or unique name
        doc = await service.documents.create(unique_name="settings", data={"theme": "dark"})
        await service.documents("settings").update({"theme": "light"}, if_match=doc.revision)
        await service.maps("presence").items.create("alice", {"online": True})
        async for item in service.lists("tasks").items.iter(page_size=50):
            print(item.index, item.data)

Resources are addressed the way Twilio's helper library does it: a collection
(`client.services`, `service.documents`, `.lists`, `.maps`, `.streams`, `.items`,
`.permissions`) has `create`, `page`, `next_page`, `iter` and `list`, and calling it with an
id gives the context of one resource (`fetch`, `update`, `delete`). Every call returns the
pydantic model of `sync_generated.rest` (generated from spec/http.yaml) and every failure
raises a typed `SyncError` (e.g. `DocumentNotFoundError`, code 54100). The low-level
generated client is available as `client.api`. The resource classes (`Documents`,
`DocumentContext`, `MapItems`, …) are generated from spec/http.yaml's `x-sdk` annotations
(`sync_generated.rest_resources`) and re-exported here; this module adds the client itself.

`mint_access_token()` makes the access token a realtime `sync_sdk.Client` connects with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx
from sync_generated.rest import (
    Document,
    DocumentPage,
    DocumentPermission,
    DocumentPermissionPage,
    Error,
    Health,
    ListItem,
    ListItemPage,
    ListPage,
    ListPermission,
    ListPermissionPage,
    Map,
    MapItem,
    MapItemPage,
    MapPage,
    MapPermission,
    MapPermissionPage,
    PageMeta,
    Permission,
    Readiness,
    Service,
    ServicePage,
    Stream,
    StreamMessage,
    StreamPage,
    SyncRestApi,
)
from sync_generated.rest import List as SyncListResource

# The resource classes, generated from spec/http.yaml's `x-sdk` annotations.
from sync_generated.rest_resources import Bounds as Bounds
from sync_generated.rest_resources import Data as Data
from sync_generated.rest_resources import (
    DocumentContext,
    Documents,
    ListContext,
    ListItemContext,
    ListItems,
    Lists,
    MapContext,
    MapItemContext,
    MapItems,
    Maps,
    ServiceContext,
    Services,
    StreamContext,
    StreamMessages,
    Streams,
)
from sync_generated.rest_resources import DocumentPermissions as DocumentPermissions
from sync_generated.rest_resources import ListPermissions as ListPermissions
from sync_generated.rest_resources import MapPermissions as MapPermissions
from sync_generated.rest_resources import Order as Order

from ._rest_base import MAX_PAGE_SIZE as MAX_PAGE_SIZE
from ._rest_base import PermissionContext, Permissions
from ._tls import ssl_context
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "Document",
    "DocumentContext",
    "DocumentPage",
    "DocumentPermission",
    "DocumentPermissionPage",
    "Documents",
    "Error",
    "Health",
    "ListContext",
    "ListItem",
    "ListItemContext",
    "ListItemPage",
    "ListItems",
    "ListPage",
    "ListPermission",
    "ListPermissionPage",
    "Lists",
    "Map",
    "MapContext",
    "MapItem",
    "MapItemContext",
    "MapItemPage",
    "MapItems",
    "MapPage",
    "MapPermission",
    "MapPermissionPage",
    "Maps",
    "PageMeta",
    "Permission",
    "PermissionContext",
    "Permissions",
    "Readiness",
    "Service",
    "ServiceContext",
    "ServicePage",
    "Services",
    "Stream",
    "StreamContext",
    "StreamMessage",
    "StreamMessages",
    "StreamPage",
    "Streams",
    "SyncListResource",
    "SyncRestApi",
    "SyncRestClient",
    "mint_access_token",
]

DEFAULT_BASE_URL = "http://127.0.0.1:4700"


# ---- access tokens ----------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def mint_access_token(
    account_sid: str,
    api_key_sid: str,
    api_secret: str,
    service_sid: str,
    identity: str,
    ttl: int = 3600,
) -> str:
    """An access token for `identity` on the Sync service `service_sid`, valid for `ttl` seconds.

    The token is the one Twilio's helper library makes with
    `AccessToken(account_sid, api_key_sid, api_secret, identity=identity, ttl=ttl)` and a
    `SyncGrant(service_sid=service_sid)`: a JWT signed with HS256 using the API secret, header
    `{"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}`, claims `jti`, `grants`
    (`data_sync.service_sid`, `identity`), `iss` (the API key), `exp`, `nbf` and `sub` (the
    account). Pass it to `sync_sdk.Client`; renew it with `client.update_token()` before `exp`.
    """
    if not identity:
        raise ValueError("identity must be a non-empty string")
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl}")
    if not api_secret:
        raise ValueError("api_secret must not be empty")
    now = int(time.time())
    header = {"alg": "HS256", "cty": "twilio-fpa;v=1", "typ": "JWT"}
    claims = {
        "jti": f"{api_key_sid}-{now}",
        "grants": {"data_sync": {"service_sid": service_sid}, "identity": identity},
        "iss": api_key_sid,
        "exp": now + int(ttl),
        "nbf": now,
        "sub": account_sid,
    }
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = hmac.new(
        api_secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256
    ).digest()
    return f"{signing_input}.{_b64url(signature)}"


# ---- the client -------------------------------------------------------------------------


class SyncRestClient:
    """The REST API v1 for servers and scripts (HTTP Basic auth, not an access token).

    Authenticate with the account SID and its auth token, or with an API key SID and
    secret (`api_key=`, `api_secret=`; then `auth_token` may be omitted). `transport` is
    handed to the underlying `httpx.AsyncClient` (e.g. `httpx.MockTransport` in tests, or an
    `httpx.AsyncHTTPTransport(retries=...)`). `verify` checks an https server's certificate as
    in httpx (True, a CA bundle path, an ssl.SSLContext, or False). Use `async with`, or call
    `aclose()`.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        if api_key is not None or api_secret is not None:
            if not api_key or not api_secret:
                raise ValueError("api_key and api_secret must be given together")
            username, password = api_key, api_secret
        elif auth_token:
            username, password = account_sid, auth_token
        else:
            raise ValueError("give auth_token, or api_key and api_secret")
        self.account_sid = account_sid
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            verify=ssl_context(verify),
            headers={"User-Agent": f"sync-sdk-python/{__version__}", "Accept": "application/json"},
        )
        self.api = SyncRestApi(self._http, base_url, auth=(username, password))
        """The generated low-level client (one method per operation of spec/http.yaml)."""
        self.services = Services(self.api)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    def service(self, sid: str) -> ServiceContext:
        """One service by SID or unique name (same as `client.services(sid)`)."""
        return self.services(sid)

    async def health(self) -> Health:
        return await self.api.health()

    async def readiness(self) -> Readiness:
        """The node's storage and broker state; a node whose storage is unreachable answers
        503, raised here as a SyncError with status 503."""
        return await self.api.readiness()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SyncRestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
