"""One home for the server's settings and their defaults.

`Limits` are the rules the core and every front door apply (frame size, subscriptions,
outgoing queue, rates, timeouts); `ServerConfig` is everything `create_app` needs. The
command line (`sync-server serve --help`) takes its defaults from here, so the CLI, the app,
the core and the tests cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .credentials import Credentials


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 256 * 1024  # over it: 51001; over twice it the socket is closed
    max_request_bytes: int = 1024 * 1024  # a REST request body (413 over it)
    max_subscriptions: int = 1000  # per connection (51002)
    max_outbox_frames: int = 10_000  # queued for a slow client before it is disconnected
    max_outbox_bytes: int = 8 * 1024 * 1024  # the same in bytes; reading pauses at half
    max_requests_in_flight: int = 32  # per connection; reading pauses at the limit
    hello_timeout: float = 10.0  # seconds a new connection has to authenticate
    max_connections: int = 10_000  # per node, HTTP and WebSocket; more get a 503
    head_timeout: float = 10.0  # seconds to send a request's headers (idle and dribbling sockets)
    heartbeat_interval: float = 5.0  # seconds between WebSocket pings
    replay_batch: int = 1000  # events read from the log at a time during catch-up
    write_rate: float = 100.0  # sustained writes/s per object, 0 = unlimited (Twilio: 20)
    write_burst: int = 200  # burst of writes per object above the rate
    create_rate: float = 20.0  # objects created/s per identity and per connection, 0 = unlimited
    create_burst: int = 200  # burst of creations above the rate
    event_retention: int = 10_000  # events kept per object for catch-up
    webhook_max_pending: int = 20_000  # webhook outbox rows in all; a write beyond: none
    webhook_max_per_object: int = 10_000  # waiting per object; beyond: the oldest dropped
    webhook_attempts: int = 5  # attempts per webhook delivery (exponential back-off)
    webhook_lease: float = 10.0  # seconds a node's claim on a delivery lasts unless renewed


DEFAULT_LIMITS = Limits()

# Defaults of ServerConfig that the command line shows too.
DATABASE_POOL_SIZE = 10  # PostgreSQL connections per node
DATABASE_STATEMENT_CACHE_SIZE = 100  # prepared statements per connection; 0 for pgbouncer
DRAIN_TIMEOUT = 10.0  # seconds from SIGTERM to exit (sync_server/drain.py)


@dataclass(slots=True)
class ServerConfig:
    data_dir: Path
    credentials: Credentials
    limits: Limits = field(default_factory=Limits)
    sqlite_synchronous: str = "NORMAL"
    expiry_interval: float = 1.0
    storage: Literal["sqlite", "postgres"] = "sqlite"
    database_url: str | None = None
    database_pool_size: int = DATABASE_POOL_SIZE
    database_statement_cache_size: int = DATABASE_STATEMENT_CACHE_SIZE
    broker: Literal["local", "redis"] = "local"
    redis_url: str | None = None
    redis_prefix: str = "sync"
    audit_interval: float = 2.0
    metrics_auth: bool = False  # /metrics needs the REST credentials
    drain_timeout: float = DRAIN_TIMEOUT

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file of the embedded storage."""
        return self.data_dir / "sync.db"
