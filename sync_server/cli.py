"""`sync-server`: run the embedded Sync server, or mint a client token.

sync-server serve --host 127.0.0.1 --port 4700 --data-dir ./.sync-data
sync-server token --identity alice [--ttl 3600] [--data-dir ./.sync-data]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from . import config as defaults
from .config import DEFAULT_LIMITS, ServerConfig
from .credentials import Credentials, describe, load_credentials, redact_url
from .http_guard import guarded_http
from .storage.sqlite import FileInUseError, check_file_free
from .tokens import mint_token

DEFAULT_DATA_DIR = "./.sync-data"


def _add_credential_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("SYNC_DATA_DIR", DEFAULT_DATA_DIR),
        help="where the SQLite file and generated credentials live (default %(default)s)",
    )
    parser.add_argument("--account-sid", help="account SID (AC...); env SYNC_ACCOUNT_SID")
    parser.add_argument("--api-key", help="API key SID (SK...) that signs tokens; env SYNC_API_KEY")
    parser.add_argument("--api-secret", help="API key secret; env SYNC_API_SECRET")
    parser.add_argument(
        "--auth-token", help="account auth token (REST Basic auth); env SYNC_AUTH_TOKEN"
    )
    parser.add_argument(
        "--service-sid", help="SID of the default service (IS...); env SYNC_SERVICE_SID"
    )


def _credentials(args: argparse.Namespace, *, create: bool = True) -> Credentials:
    try:
        return load_credentials(
            Path(args.data_dir),
            account_sid=args.account_sid,
            api_key=args.api_key,
            api_secret=args.api_secret,
            auth_token=args.auth_token,
            service_sid=args.service_sid,
            create=create,
        )
    except ValueError as exc:
        raise SystemExit(f"sync-server: {exc}") from None


class _ClientFaultsAreWarnings(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 as an error with a traceback; it is the
    client's fault, so it becomes one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .config import Limits
    from .drain import DrainingServer
    from .logs import configure

    configure(args.log_level, args.log_format)
    creds = _credentials(args)
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = ServerConfig(
        data_dir=data_dir,
        credentials=creds,
        limits=Limits(
            heartbeat_interval=args.heartbeat_interval,
            max_subscriptions=args.max_subscriptions,
            max_outbox_frames=args.max_outbox_frames,
            max_outbox_bytes=args.max_outbox_bytes,
            max_frame_bytes=args.max_frame_bytes,
            event_retention=args.event_retention,
            write_rate=args.write_rate,
            write_burst=args.write_burst,
            create_rate=args.create_rate,
            create_burst=args.create_burst,
            webhook_max_pending=args.webhook_max_pending,
            webhook_max_per_object=args.webhook_max_per_object,
            webhook_attempts=args.webhook_attempts,
            webhook_lease=args.webhook_lease,
        ),
        sqlite_synchronous=args.sqlite_synchronous,
        metrics_auth=args.metrics_auth,
        storage=args.storage,
        database_url=args.database_url,
        database_pool_size=args.database_pool_size,
        database_statement_cache_size=args.database_statement_cache_size,
        drain_timeout=args.drain_timeout,
        broker=args.broker,
        redis_url=args.redis_url,
        redis_prefix=args.redis_prefix,
    )
    try:
        app = create_app(config)
    except ValueError as exc:
        raise SystemExit(f"sync-server: {exc}") from None
    if config.storage != "postgres":
        try:
            check_file_free(config.sqlite_path)
        except FileInUseError as exc:
            raise SystemExit(f"sync-server: {exc}") from None
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        raise SystemExit(f"sync-server: cannot listen on {args.host}:{args.port}: {exc}") from None
    sock.listen(2048)  # accept (queue) connections from the moment the address is printed
    port = sock.getsockname()[1]
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("sync-server: --tls-cert and --tls-key go together")
    scheme = "https" if args.tls_cert else "http"
    max_connections = _connection_limit(args.max_connections)
    server = DrainingServer(
        uvicorn.Config(
            app,
            ws="websockets-sansio",
            loop=loop,
            # With httptools, the realtime paths are served off ASGI (sync_server/ws_server.py).
            http=guarded_http(max_connections, args.head_timeout, app.state.realtime_doors)
            if _has("httptools")
            else "h11",
            # Frames up to twice the limit get a 51001 reply; larger ones close the socket (1009).
            ws_max_size=args.max_frame_bytes * 2,
            ws_ping_interval=args.heartbeat_interval,
            ws_ping_timeout=args.heartbeat_interval * 2,
            ws_per_message_deflate=False,
            log_level=args.log_level,
            log_config=None,  # sync_server.logs configured every logger
            access_log=False,  # REST requests get our own access log line (app.py)
            lifespan="on",
            ssl_certfile=args.tls_cert,
            ssl_keyfile=args.tls_key,
        ),
        app.state.service,
        timeout=config.drain_timeout,
    )
    # After uvicorn.Config, which sets up uvicorn's loggers.
    logging.getLogger("uvicorn.error").addFilter(_ClientFaultsAreWarnings())
    print(describe(creds), flush=True)
    print(
        f"sync-server {_version()} listening on {scheme}://{args.host}:{port} (data dir {data_dir})",
        flush=True,
    )
    print(f"  storage: {_describe_storage(config)}; broker: {_describe_broker(config)}", flush=True)
    server.run(sockets=[sock])
    return 0


def _describe_storage(config: ServerConfig) -> str:
    if config.storage == "postgres":
        return f"PostgreSQL {redact_url(config.database_url or '')}"
    return f"SQLite {config.sqlite_path} (synchronous={config.sqlite_synchronous})"


def _describe_broker(config: ServerConfig) -> str:
    if config.broker == "redis":
        return f"Redis {redact_url(config.redis_url or '')} (prefix {config.redis_prefix!r})"
    return "in this process"


def _connection_limit(wanted: int) -> int:
    """Raise the open-file limit as far as the OS allows (logged), and keep the connection
    cap below it, so a flood of sockets is refused with a 503 instead of exhausting files."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = wanted + 256 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logging.getLogger("sync_server").warning("cannot raise the open-file limit: %s", exc)
    limit = min(wanted, max(soft - 256, 16))
    logging.getLogger("sync_server").info(
        "open-file limit %d; at most %d connections (--max-connections %d)", soft, limit, wanted
    )
    return limit


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _version() -> str:
    from sync_sdk import __version__

    return __version__


def _token(args: argparse.Namespace) -> int:
    # Only `serve` (or --init) creates credentials: a token minted from a set made up here
    # would be refused by the running server, with nothing to say why.
    creds = _credentials(args, create=args.init)
    source = "a development set in " + str(Path(args.data_dir)) if creds.generated else "yours"
    print(
        f"sync-server: token for {args.identity!r}, service {creds.service_sid}, signed with "
        f"API key {creds.api_key_sid} ({source})",
        file=sys.stderr,
    )
    print(
        mint_token(
            account_sid=creds.account_sid,
            api_key_sid=creds.api_key_sid,
            api_secret=creds.api_secret,
            service_sid=creds.service_sid,
            identity=args.identity,
            ttl=args.ttl,
        )
    )
    return 0


def _env_int(name: str, default: int) -> int:
    """An integer from the environment; a one-line error naming the variable otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise SystemExit(f"sync-server: {name}={raw!r:.40} is not a whole number")
    return int(raw)


def _whole(kind: str) -> Callable[[str], int]:
    """An argparse type: a whole number, > 0 ("positive") or >= 0 ("non_negative")."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r:.40} is not a whole number") from None
        if value < (1 if kind == "positive" else 0):
            raise argparse.ArgumentTypeError(f"{value} is not {_RANGE[kind]}")
        return value

    return parse


def _number(kind: str) -> Callable[[str], float]:
    """An argparse type: a finite number, > 0 ("positive") or >= 0 ("non_negative")."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r:.40} is not a number") from None
        low_ok = value > 0 if kind == "positive" else value >= 0
        if not (low_ok and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{raw!r:.40} is not {_RANGE[kind]}")
        return value

    return parse


_RANGE = {"positive": "above 0", "non_negative": "0 or more"}


def _env_float(name: str, default: float) -> float:
    """A non-negative number from the environment; a one-line error naming it otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return _number("non_negative")(raw)  # the check of the flags
    except argparse.ArgumentTypeError:
        raise SystemExit(f"sync-server: {name}={raw!r:.40} is not a number of seconds") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sync-server", description="Self-hostable real-time Sync server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (embedded SQLite storage)")
    serve.add_argument("--host", default="127.0.0.1", help="(default %(default)s)")
    serve.add_argument(
        "--port",
        type=int,
        default=4700,
        help="0 picks a free port (printed at start) (default %(default)s)",
    )
    _add_credential_flags(serve)
    serve.add_argument(
        "--log-level",
        default="info",
        type=lambda level: "warning" if level == "warn" else level,  # the client says "warn"
        choices=["critical", "error", "warning", "info", "debug"],
        help="(default %(default)s; warn = warning)",
    )
    serve.add_argument(
        "--tls-cert",
        default=os.environ.get("SYNC_TLS_CERT"),
        help="PEM certificate (chain): serve HTTPS and WSS on the same port; env SYNC_TLS_CERT",
    )
    serve.add_argument(
        "--tls-key",
        default=os.environ.get("SYNC_TLS_KEY"),
        help="PEM private key of --tls-cert; env SYNC_TLS_KEY",
    )
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("SYNC_LOG_FORMAT", "text"),
        help="text lines, or one JSON object per line; env SYNC_LOG_FORMAT (default %(default)s)",
    )
    serve.add_argument(
        "--sqlite-synchronous",
        default="NORMAL",
        choices=["NORMAL", "FULL"],
        help="NORMAL survives a process crash; FULL also survives power loss (slower) "
        "(default %(default)s)",
    )
    limits = DEFAULT_LIMITS  # one home for the defaults (sync_server/config.py)
    serve.add_argument(
        "--heartbeat-interval",
        type=_number("positive"),
        default=limits.heartbeat_interval,
        help="seconds between WebSocket pings (default %(default)s)",
    )
    serve.add_argument(
        "--max-subscriptions",
        type=_whole("positive"),
        default=limits.max_subscriptions,
        help="per connection (default %(default)s)",
    )
    serve.add_argument(
        "--max-frame-bytes",
        type=_whole("positive"),
        default=limits.max_frame_bytes,
        help="UTF-8 bytes; over it: 51001, over twice it the socket closes (default %(default)s)",
    )
    serve.add_argument(
        "--write-rate",
        type=_number("non_negative"),
        default=limits.write_rate,
        help="sustained writes/s per object, 0 = unlimited (Twilio: 20); over it: 54009 "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--write-burst",
        type=_whole("non_negative"),
        default=limits.write_burst,
        help="burst of writes per object above the rate (default %(default)s)",
    )
    serve.add_argument(
        "--create-rate",
        type=_number("non_negative"),
        default=limits.create_rate,
        help="objects created/s per identity and per connection, 0 = unlimited; over it: 54009 "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--create-burst",
        type=_whole("non_negative"),
        default=limits.create_burst,
        help="burst of creations above the rate (default %(default)s)",
    )
    serve.add_argument(
        "--event-retention",
        type=_whole("positive"),
        default=limits.event_retention,
        help="events kept per object for catch-up after a reconnect (older: a snapshot is sent) "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--max-outbox-frames",
        type=_whole("positive"),
        default=limits.max_outbox_frames,
        help="frames queued for a slow client before it is disconnected (4008) to catch up later "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--metrics-auth",
        action="store_true",
        help="GET /metrics needs the REST credentials (HTTP Basic)",
    )
    serve.add_argument(
        "--head-timeout",
        type=_number("positive"),
        default=limits.head_timeout,
        help="seconds a connection has to send a request's headers (default %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=_whole("positive"),
        default=limits.max_connections,
        help="open connections per node (HTTP and WebSocket); more are refused with a 503 "
        "(kept below the open-file limit, which is raised at start as far as allowed) "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--max-outbox-bytes",
        type=_whole("positive"),
        default=limits.max_outbox_bytes,
        help="the same in bytes; requests are not read while half of it is queued "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--drain-timeout",
        type=_number("non_negative"),
        default=_env_float("SYNC_DRAIN_TIMEOUT", defaults.DRAIN_TIMEOUT),
        help="seconds from SIGTERM to exit: connections are drained (closed with 1012 once "
        "their requests are answered), then the process exits 0; env SYNC_DRAIN_TIMEOUT "
        "(default %(default)s)",
    )
    hooks = serve.add_argument_group("webhooks", "the durable outbox of webhook deliveries")
    hooks.add_argument(
        "--webhook-max-pending",
        type=_whole("positive"),
        default=limits.webhook_max_pending,
        help="deliveries pending in all; a write beyond it has none (default %(default)s)",
    )
    hooks.add_argument(
        "--webhook-max-per-object",
        type=_whole("positive"),
        default=limits.webhook_max_per_object,
        help="deliveries waiting per object; beyond it the oldest are dropped (%(default)s)",
    )
    hooks.add_argument(
        "--webhook-attempts",
        type=_whole("positive"),
        default=limits.webhook_attempts,
        help="attempts per delivery, with exponential back-off (default %(default)s)",
    )
    hooks.add_argument(
        "--webhook-lease",
        type=_number("positive"),
        default=limits.webhook_lease,
        help="seconds a node's claim on a delivery lasts unless renewed: how soon another "
        "node takes over from a dead one (default %(default)s)",
    )
    cluster = serve.add_argument_group(
        "several nodes",
        "shared PostgreSQL storage and Redis fan-out (pip install 'sync-sdk[cluster]')",
    )
    cluster.add_argument(
        "--storage",
        choices=["sqlite", "postgres"],
        default=os.environ.get("SYNC_STORAGE", "sqlite"),
        help="sqlite: one file in --data-dir (default); postgres: --database-url; env SYNC_STORAGE",
    )
    cluster.add_argument(
        "--database-url",
        default=os.environ.get("SYNC_DATABASE_URL"),
        help="postgresql://user@host:5432/db; env SYNC_DATABASE_URL",
    )
    cluster.add_argument(
        "--database-pool-size",
        type=_whole("positive"),
        default=_env_int("SYNC_DATABASE_POOL_SIZE", defaults.DATABASE_POOL_SIZE),
        help="PostgreSQL connections per node (default %(default)s)",
    )
    cluster.add_argument(
        "--database-statement-cache-size",
        type=_whole("non_negative"),
        default=_env_int(
            "SYNC_DATABASE_STATEMENT_CACHE_SIZE", defaults.DATABASE_STATEMENT_CACHE_SIZE
        ),
        help="prepared statements cached per PostgreSQL connection; 0 behind pgbouncer in "
        "transaction mode; env SYNC_DATABASE_STATEMENT_CACHE_SIZE (default %(default)s)",
    )
    cluster.add_argument(
        "--broker",
        choices=["local", "redis"],
        default=os.environ.get("SYNC_BROKER", "local"),
        help="local: this process only (default); redis: every node; env SYNC_BROKER",
    )
    cluster.add_argument(
        "--redis-url",
        default=os.environ.get("SYNC_REDIS_URL"),
        help="redis://host:6379/0; env SYNC_REDIS_URL",
    )
    cluster.add_argument(
        "--redis-prefix",
        default=os.environ.get("SYNC_REDIS_PREFIX", "sync"),
        help="channel name prefix, to share one Redis between clusters (default %(default)s)",
    )
    serve.set_defaults(func=_serve)
    token = sub.add_parser("token", help="print a client access token for the default service")
    token.add_argument("--identity", required=True)
    token.add_argument(
        "--ttl", type=_whole("positive"), default=3600, help="seconds (default %(default)s)"
    )
    token.add_argument(
        "--init",
        action="store_true",
        help="create a development set of credentials in --data-dir if there is none "
        "(otherwise only `serve` creates them)",
    )
    _add_credential_flags(token)
    token.set_defaults(func=_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
