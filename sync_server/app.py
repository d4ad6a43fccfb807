"""The ASGI application: realtime WebSocket endpoints and HTTP on one port (the realtime
endpoints are also served off ASGI, by sync_server.ws_server, through `app.state.realtime_doors`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from sync_generated.errors import SyncError

from sync_sdk import __version__

from . import wire
from .broker import Broker, InProcessBroker
from .cds import ClientApi
from .config import ServerConfig
from .metrics import CONTENT_TYPE_LATEST
from .realtime import realtime_endpoint
from .rest import RestApi, error_response, method_not_allowed, not_found
from .service import SyncService
from .storage.base import ServiceRecord, Storage
from .storage.sqlite import SQLiteStorage
from .twilsock import twilsock_endpoint
from .webhooks import WebhookDispatcher
from .ws import Door, RealtimeSocket, asgi_door

log = logging.getLogger("sync_server")
access_log = logging.getLogger("sync_server.access")


_CLUSTER_EXTRA = "the cluster extra (asyncpg, redis): pip install 'sync-sdk[cluster]'"


def make_storage(config: ServerConfig) -> Storage:
    if config.storage not in ("sqlite", "postgres"):  # e.g. a typo in SYNC_STORAGE
        raise ValueError(f"storage must be sqlite or postgres, got {config.storage!r}")
    if config.storage == "postgres":
        if not config.database_url:
            raise ValueError("--storage postgres needs --database-url (or SYNC_DATABASE_URL)")
        try:
            from .storage.postgres import PostgresStorage
        except ImportError as exc:
            raise ValueError(f"--storage postgres needs {_CLUSTER_EXTRA} ({exc})") from None

        return PostgresStorage(
            config.database_url,
            event_retention=config.limits.event_retention,
            max_pool=config.database_pool_size,
            statement_cache_size=config.database_statement_cache_size,
        )
    return SQLiteStorage(
        config.sqlite_path,
        synchronous=config.sqlite_synchronous,
        event_retention=config.limits.event_retention,
    )


def make_broker(config: ServerConfig) -> Broker:
    if config.broker not in ("local", "redis"):  # e.g. a typo in SYNC_BROKER
        raise ValueError(f"broker must be local or redis, got {config.broker!r}")
    if config.broker == "redis":
        if not config.redis_url:
            raise ValueError("--broker redis needs --redis-url (or SYNC_REDIS_URL)")
        if config.storage == "sqlite":
            raise ValueError(
                "--broker redis shares events between nodes, which must share their storage: "
                "use it with --storage postgres"
            )
        try:
            from .redis_broker import RedisBroker
        except ImportError as exc:
            raise ValueError(f"--broker redis needs {_CLUSTER_EXTRA} ({exc})") from None

        return RedisBroker(
            config.redis_url, prefix=config.redis_prefix, audit_interval=config.audit_interval
        )
    return InProcessBroker()


class AccessLog:
    """One log line per HTTP request (sync_server.access, info): method, path, status and
    duration, also as JSON fields. WebSocket connections pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method, path = scope["method"], scope["path"]
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                path,
                status,
                duration_ms,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )


def create_app(
    config: ServerConfig, *, storage: Storage | None = None, broker: Broker | None = None
) -> Starlette:
    creds = config.credentials
    store = storage or make_storage(config)
    hub = broker or make_broker(config)
    limits = config.limits
    webhooks = WebhookDispatcher(
        auth_token=creds.auth_token,
        storage=store,
        max_attempts=limits.webhook_attempts,
        max_pending=limits.webhook_max_pending,
        max_queue_per_object=limits.webhook_max_per_object,
        lease=limits.webhook_lease,
    )
    service = SyncService(store, hub, credentials=creds, limits=config.limits, webhooks=webhooks)

    async def expiry_loop() -> None:
        while True:
            await asyncio.sleep(config.expiry_interval)
            try:
                await service.expire()
            except Exception:
                log.exception("expiry sweep failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        await hub.start()
        webhooks.start()
        if await store.get_service(creds.service_sid) is None:
            t = wire.now()
            await store.put_service(
                ServiceRecord(
                    sid=creds.service_sid,
                    account_sid=creds.account_sid,
                    friendly_name="default",
                    date_created=t,
                    date_updated=t,
                )
            )
        task = asyncio.create_task(expiry_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await webhooks.close()
            await hub.close()
            await store.close()

    async def realtime(ws: RealtimeSocket) -> None:
        await realtime_endpoint(ws, service)

    client_api = ClientApi(service)

    async def twilsock(ws: RealtimeSocket) -> None:
        await twilsock_endpoint(ws, service, client_api)

    # The realtime paths: served by sync_server.ws_server straight from the transport when the
    # server runs with the guarded httptools protocol (cli.py), by these ASGI routes otherwise.
    doors: dict[str, Door] = {"/v1/realtime": realtime, "/v3/wsconnect": twilsock}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readiness(request: Request) -> JSONResponse:
        storage_state: dict[str, object] = {"kind": config.storage, "ok": True}
        try:
            await store.ping()
        except Exception as exc:
            storage_state.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
        ready = bool(storage_state["ok"]) and not service.draining
        status = "draining" if service.draining else "ready" if ready else "unavailable"
        return JSONResponse(
            {
                "status": status,
                "storage": storage_state,
                "broker": {"kind": config.broker, "connected": hub.healthy},
            },
            status_code=200 if ready else 503,
        )

    rest = RestApi(service, creds)

    async def metrics(request: Request) -> Response:
        if config.metrics_auth:
            try:
                rest.authenticate(request)
            except SyncError as err:
                return error_response(err)
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            *(WebSocketRoute(path, asgi_door(door)) for path, door in doors.items()),
            Route("/healthz", health),
            Route("/readyz", readiness),
            Route("/metrics", metrics),
            *rest.routes(),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
        middleware=[Middleware(AccessLog)],
    )
    app.state.service = service
    app.state.realtime_doors = doors
    return app
