# Generated from spec/client.yaml, spec/entities.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""The client surface: connection states and their transition table, log levels,
client options, item classes, event payloads and typed `on()` registration."""

from __future__ import annotations

import enum
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Literal, TypeAlias, overload

from typing_extensions import TypeVar

from .errors import InvalidRequestError

JsonObject: TypeAlias = dict[str, Any]
"""Application data: an arbitrary JSON object."""

T = TypeVar("T", default=JsonObject)
"""The data type of an object's items (JsonObject unless a pydantic `data_type` is given)."""

E = TypeVar("E")

Handler: TypeAlias = Callable[[E], object]
"""An event handler: a plain or async callable taking the event payload."""

Unsubscribe: TypeAlias = Callable[[], None]
"""Returned by `on()`; call it to remove the handler."""

TokenProvider: TypeAlias = Callable[[], Awaitable[str]]
"""An async callable returning a fresh access token."""

# ---- limits (spec/entities.yaml x-limits) ----------------------------------------------

MAX_DATA_BYTES: Final = 16384
MAX_DATA_DEPTH: Final = 32
MAX_STREAM_MESSAGE_BYTES: Final = 4096
MAX_UNIQUE_NAME_LENGTH: Final = 320
MAX_MAP_KEY_LENGTH: Final = 320
MIN_TTL_SECONDS: Final = 0
MAX_TTL_SECONDS: Final = 31536000
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 100

SID_PREFIXES: Final[Mapping[str, str]] = {
    "Account": "AC",
    "ApiKey": "SK",
    "Service": "IS",
    "Document": "ET",
    "List": "ES",
    "Map": "MP",
    "Stream": "TO",
    "StreamMessage": "TZ",
}
"""Two-letter SID prefix by resource."""

# ---- connection state ------------------------------------------------------------------


class ConnectionState(enum.StrEnum):
    """State of the client's connection to the Sync service."""

    CONNECTING = "connecting"
    """Connecting (or reconnecting) to the service."""
    CONNECTED = "connected"
    """Connected; calls go through and events flow."""
    DISCONNECTING = "disconnecting"
    """Shutting down on request."""
    DISCONNECTED = "disconnected"
    """Not connected; the initial state and the state after shutdown."""
    DENIED = "denied"
    """The token was rejected or expired; supply a new one with update_token()."""
    ERROR = "error"
    """A permanent failure; create a new client."""


INITIAL_CONNECTION_STATE: Final = ConnectionState.DISCONNECTED

CONNECTION_STATE_TRANSITIONS: Final[Mapping[ConnectionState, frozenset[ConnectionState]]] = {
    ConnectionState.DISCONNECTED: frozenset({ConnectionState.CONNECTING}),
    ConnectionState.CONNECTING: frozenset(
        {
            ConnectionState.CONNECTED,
            ConnectionState.DENIED,
            ConnectionState.ERROR,
            ConnectionState.DISCONNECTING,
        }
    ),
    ConnectionState.CONNECTED: frozenset(
        {
            ConnectionState.CONNECTING,
            ConnectionState.DENIED,
            ConnectionState.ERROR,
            ConnectionState.DISCONNECTING,
        }
    ),
    ConnectionState.DENIED: frozenset({ConnectionState.CONNECTING, ConnectionState.DISCONNECTING}),
    ConnectionState.ERROR: frozenset({ConnectionState.DISCONNECTING}),
    ConnectionState.DISCONNECTING: frozenset({ConnectionState.DISCONNECTED}),
}
"""Every allowed transition: state -> the states it may move to."""


# ---- enums ----------------------------------------------------------------------------


class LogLevel(enum.StrEnum):
    """Verbosity of the sync_sdk logger; trace is below debug, silent logs nothing."""

    SILENT = "silent"
    ERROR = "error"
    WARN = "warn"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


LogLevelName: TypeAlias = Literal["silent", "error", "warn", "info", "debug", "trace"]

DEFAULT_LOG_LEVEL: Final = LogLevel.ERROR


class SubscriptionState(enum.StrEnum):
    """Whether an open object receives live events."""

    PENDING = "pending"
    ESTABLISHED = "established"
    FAILED = "failed"


SubscriptionStateName: TypeAlias = Literal["pending", "established", "failed"]


# ---- options ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Options for Client. Every field has a default.

    url: Base URL of the Sync server (http/https; the WebSocket endpoint is derived from it). Default 'http://127.0.0.1:4700'.
    urls: Base URLs of equivalent server nodes (each http(s) or ws(s), like `url`); when non-empty it takes precedence over `url`, and None or an empty list means use `url`. The client starts with the first and stays on a node while it works; after a failed attempt or a lost connection it moves to the next one in rotation, trying every node once without delay before the reconnect back-off applies between rounds. With several nodes an attempt waits at most connect_timeout / len(urls) for the socket to open (and as long for the handshake), so that one round fits in connect_timeout even if a node does not answer at all. Default None.
    verify: How to check the server's TLS certificate on https / wss URLs, as httpx's `verify`: True (the system's certificate authorities), a path to a CA bundle (PEM), an ssl.SSLContext, or False (no check: development only). Plain http / ws URLs do not use it. Default True.
    log_level: Verbosity of the sync_sdk logger. Default 'error'.
    command_timeout: Seconds a call may wait (including while reconnecting) before it raises CommandTimeoutError. Default 10.0.
    connect_timeout: Seconds `async with client` waits for the first connection. Default 10.0.
    heartbeat_interval: Seconds between pings; a ping unanswered for one more interval marks the connection dead (so a dead connection is noticed within about 2 intervals). Default 2.0.
    reconnect_initial_delay: First reconnect back-off in seconds; doubles on each failure. Default 0.2.
    reconnect_max_delay: Cap of the reconnect back-off in seconds. Default 10.0.
    reconnect_jitter: Fraction of each back-off delay that is randomised. Default 0.5.
    token_refresh_margin: Seconds before token expiry at which token_about_to_expire fires (and token_provider is called). Default 180.0.
    token_provider: Optional callable returning a fresh token; called before expiry and on denial. Default None.
    """

    url: str = "http://127.0.0.1:4700"
    urls: list[str] | tuple[str, ...] | None = None
    verify: bool | str | ssl.SSLContext = True
    log_level: LogLevel | LogLevelName = "error"
    command_timeout: float = 10.0
    connect_timeout: float = 10.0
    heartbeat_interval: float = 2.0
    reconnect_initial_delay: float = 0.2
    reconnect_max_delay: float = 10.0
    reconnect_jitter: float = 0.5
    token_refresh_margin: float = 180.0
    token_provider: TokenProvider | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(
            ("http://", "https://", "ws://", "wss://")
        ):
            raise InvalidRequestError(
                f"ClientOptions.url must be an http(s):// or ws(s):// URL, got {self.url!r}"
            )
        if self.urls is not None:
            if not isinstance(self.urls, (list, tuple)):
                raise InvalidRequestError(
                    f"ClientOptions.urls must be a list of URLs or None, got {type(self.urls).__name__}"
                )
            for i, url in enumerate(self.urls):
                if not isinstance(url, str) or not url.startswith(
                    ("http://", "https://", "ws://", "wss://")
                ):
                    raise InvalidRequestError(
                        f"ClientOptions.urls[{i}] must be an http(s):// or ws(s):// URL, got {url!r}"
                    )
        try:
            object.__setattr__(self, "log_level", LogLevel(self.log_level))
        except ValueError:
            names = ", ".join(level.value for level in LogLevel)
            raise InvalidRequestError(
                f"ClientOptions.log_level must be one of {names}, got {self.log_level!r}"
            ) from None
        if (
            not isinstance(self.command_timeout, (int, float))
            or isinstance(self.command_timeout, bool)
            or self.command_timeout <= 0
        ):
            raise InvalidRequestError(
                f"ClientOptions.command_timeout must be a number > 0, got {self.command_timeout!r}"
            )
        if (
            not isinstance(self.connect_timeout, (int, float))
            or isinstance(self.connect_timeout, bool)
            or self.connect_timeout <= 0
        ):
            raise InvalidRequestError(
                f"ClientOptions.connect_timeout must be a number > 0, got {self.connect_timeout!r}"
            )
        if (
            not isinstance(self.heartbeat_interval, (int, float))
            or isinstance(self.heartbeat_interval, bool)
            or self.heartbeat_interval <= 0
        ):
            raise InvalidRequestError(
                "ClientOptions.heartbeat_interval must be a number > 0"
                f", got {self.heartbeat_interval!r}"
            )
        if (
            not isinstance(self.reconnect_initial_delay, (int, float))
            or isinstance(self.reconnect_initial_delay, bool)
            or self.reconnect_initial_delay <= 0
        ):
            raise InvalidRequestError(
                "ClientOptions.reconnect_initial_delay must be a number > 0"
                f", got {self.reconnect_initial_delay!r}"
            )
        if (
            not isinstance(self.reconnect_max_delay, (int, float))
            or isinstance(self.reconnect_max_delay, bool)
            or self.reconnect_max_delay <= 0
        ):
            raise InvalidRequestError(
                "ClientOptions.reconnect_max_delay must be a number > 0"
                f", got {self.reconnect_max_delay!r}"
            )
        if (
            not isinstance(self.reconnect_jitter, (int, float))
            or isinstance(self.reconnect_jitter, bool)
            or self.reconnect_jitter < 0
            or self.reconnect_jitter > 1
        ):
            raise InvalidRequestError(
                "ClientOptions.reconnect_jitter must be a number >= 0 and <= 1"
                f", got {self.reconnect_jitter!r}"
            )
        if (
            not isinstance(self.token_refresh_margin, (int, float))
            or isinstance(self.token_refresh_margin, bool)
            or self.token_refresh_margin < 0
        ):
            raise InvalidRequestError(
                "ClientOptions.token_refresh_margin must be a number >= 0"
                f", got {self.token_refresh_margin!r}"
            )
        if self.token_provider is not None and not callable(self.token_provider):
            raise InvalidRequestError(
                "ClientOptions.token_provider must be an async callable or None"
            )


# ---- items -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncListItem(Generic[T]):
    """An item of a SyncList."""

    index: int
    """Stable position; never reused after removal."""
    data: T
    """The item's data."""
    revision: str
    date_updated: datetime
    date_expires: datetime | None
    last_event_id: int
    """Event id of the write that produced this revision."""


@dataclass(frozen=True, slots=True)
class SyncMapItem(Generic[T]):
    """An item of a SyncMap."""

    key: str
    data: T
    revision: str
    date_updated: datetime
    date_expires: datetime | None
    last_event_id: int


@dataclass(frozen=True, slots=True)
class SyncStreamMessage(Generic[T]):
    """A message published to a SyncStream."""

    sid: str
    data: T


# ---- event payloads --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectionRemovedEvent:
    """Payload of the CollectionRemoved event."""

    is_local: bool


@dataclass(frozen=True, slots=True)
class ConnectionErrorEvent:
    """The connection failed; terminal means the client will not retry."""

    terminal: bool
    message: str
    code: int | None
    status: int | None


@dataclass(frozen=True, slots=True)
class DocumentRemovedEvent(Generic[T]):
    """The document was removed (or expired)."""

    previous_data: T | None
    is_local: bool


@dataclass(frozen=True, slots=True)
class DocumentUpdatedEvent(Generic[T]):
    """The document's data changed."""

    data: T
    previous_data: T | None
    is_local: bool
    revision: str
    event_id: int


@dataclass(frozen=True, slots=True)
class ListItemAddedEvent(Generic[T]):
    """Payload of the ListItemAdded event."""

    item: SyncListItem[T]
    is_local: bool


@dataclass(frozen=True, slots=True)
class ListItemRemovedEvent(Generic[T]):
    """Payload of the ListItemRemoved event."""

    index: int
    previous_item_data: T | None
    is_local: bool
    event_id: int


@dataclass(frozen=True, slots=True)
class ListItemUpdatedEvent(Generic[T]):
    """Payload of the ListItemUpdated event."""

    item: SyncListItem[T]
    previous_item_data: T | None
    is_local: bool


@dataclass(frozen=True, slots=True)
class MapItemAddedEvent(Generic[T]):
    """Payload of the MapItemAdded event."""

    item: SyncMapItem[T]
    is_local: bool


@dataclass(frozen=True, slots=True)
class MapItemRemovedEvent(Generic[T]):
    """Payload of the MapItemRemoved event."""

    key: str
    previous_item_data: T | None
    is_local: bool
    event_id: int


@dataclass(frozen=True, slots=True)
class MapItemUpdatedEvent(Generic[T]):
    """Payload of the MapItemUpdated event."""

    item: SyncMapItem[T]
    previous_item_data: T | None
    is_local: bool


@dataclass(frozen=True, slots=True)
class StreamMessagePublishedEvent(Generic[T]):
    """Payload of the StreamMessagePublished event."""

    message: SyncStreamMessage[T]
    is_local: bool


@dataclass(frozen=True, slots=True)
class TokenAboutToExpireEvent:
    """The token expires soon; call update_token()."""

    expires_in: float
    """Seconds left."""


@dataclass(frozen=True, slots=True)
class TokenExpiredEvent:
    """The token expired; the client is denied until update_token()."""

    pass


# ---- typed event registration ----------------------------------------------------------

CLIENT_EVENTS: Final = frozenset(
    {"connection_state_changed", "connection_error", "token_about_to_expire", "token_expired"}
)
ClientEventName: TypeAlias = Literal[
    "connection_state_changed", "connection_error", "token_about_to_expire", "token_expired"
]


class ClientEvents:
    """Typed `on()` for Client: one overload per event, so handlers are checked."""

    __slots__ = ()

    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        raise NotImplementedError

    @overload
    def on(
        self, event: Literal["connection_state_changed"], handler: Handler[ConnectionState]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["connection_error"], handler: Handler[ConnectionErrorEvent]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["token_about_to_expire"], handler: Handler[TokenAboutToExpireEvent]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["token_expired"], handler: Handler[TokenExpiredEvent]
    ) -> Unsubscribe: ...

    def on(self, event: ClientEventName, handler: Handler[Any]) -> Unsubscribe:
        """Call `handler` on every `event` (connection_state_changed, connection_error, token_about_to_expire, token_expired); returns a callable that unsubscribes."""
        if event not in CLIENT_EVENTS:
            names = ", ".join(sorted(CLIENT_EVENTS))
            raise InvalidRequestError(f"Client has no event {event!r}; events: {names}")
        if not callable(handler):
            raise InvalidRequestError(f"handler for {event!r} must be callable")
        return self._add_listener(event, handler)


SYNC_DOCUMENT_EVENTS: Final = frozenset({"subscription_state_changed", "updated", "removed"})
SyncDocumentEventName: TypeAlias = Literal["subscription_state_changed", "updated", "removed"]


class SyncDocumentEvents(Generic[T]):
    """Typed `on()` for SyncDocument: one overload per event, so handlers are checked."""

    __slots__ = ()

    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        raise NotImplementedError

    @overload
    def on(
        self, event: Literal["subscription_state_changed"], handler: Handler[SubscriptionState]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["updated"], handler: Handler[DocumentUpdatedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["removed"], handler: Handler[DocumentRemovedEvent[T]]
    ) -> Unsubscribe: ...

    def on(self, event: SyncDocumentEventName, handler: Handler[Any]) -> Unsubscribe:
        """Call `handler` on every `event` (subscription_state_changed, updated, removed); returns a callable that unsubscribes."""
        if event not in SYNC_DOCUMENT_EVENTS:
            names = ", ".join(sorted(SYNC_DOCUMENT_EVENTS))
            raise InvalidRequestError(f"SyncDocument has no event {event!r}; events: {names}")
        if not callable(handler):
            raise InvalidRequestError(f"handler for {event!r} must be callable")
        return self._add_listener(event, handler)


SYNC_LIST_EVENTS: Final = frozenset(
    {"subscription_state_changed", "item_added", "item_updated", "item_removed", "removed"}
)
SyncListEventName: TypeAlias = Literal[
    "subscription_state_changed", "item_added", "item_updated", "item_removed", "removed"
]


class SyncListEvents(Generic[T]):
    """Typed `on()` for SyncList: one overload per event, so handlers are checked."""

    __slots__ = ()

    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        raise NotImplementedError

    @overload
    def on(
        self, event: Literal["subscription_state_changed"], handler: Handler[SubscriptionState]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["item_added"], handler: Handler[ListItemAddedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["item_updated"], handler: Handler[ListItemUpdatedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["item_removed"], handler: Handler[ListItemRemovedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["removed"], handler: Handler[CollectionRemovedEvent]
    ) -> Unsubscribe: ...

    def on(self, event: SyncListEventName, handler: Handler[Any]) -> Unsubscribe:
        """Call `handler` on every `event` (subscription_state_changed, item_added, item_updated, item_removed, removed); returns a callable that unsubscribes."""
        if event not in SYNC_LIST_EVENTS:
            names = ", ".join(sorted(SYNC_LIST_EVENTS))
            raise InvalidRequestError(f"SyncList has no event {event!r}; events: {names}")
        if not callable(handler):
            raise InvalidRequestError(f"handler for {event!r} must be callable")
        return self._add_listener(event, handler)


SYNC_MAP_EVENTS: Final = frozenset(
    {"subscription_state_changed", "item_added", "item_updated", "item_removed", "removed"}
)
SyncMapEventName: TypeAlias = Literal[
    "subscription_state_changed", "item_added", "item_updated", "item_removed", "removed"
]


class SyncMapEvents(Generic[T]):
    """Typed `on()` for SyncMap: one overload per event, so handlers are checked."""

    __slots__ = ()

    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        raise NotImplementedError

    @overload
    def on(
        self, event: Literal["subscription_state_changed"], handler: Handler[SubscriptionState]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["item_added"], handler: Handler[MapItemAddedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["item_updated"], handler: Handler[MapItemUpdatedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["item_removed"], handler: Handler[MapItemRemovedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["removed"], handler: Handler[CollectionRemovedEvent]
    ) -> Unsubscribe: ...

    def on(self, event: SyncMapEventName, handler: Handler[Any]) -> Unsubscribe:
        """Call `handler` on every `event` (subscription_state_changed, item_added, item_updated, item_removed, removed); returns a callable that unsubscribes."""
        if event not in SYNC_MAP_EVENTS:
            names = ", ".join(sorted(SYNC_MAP_EVENTS))
            raise InvalidRequestError(f"SyncMap has no event {event!r}; events: {names}")
        if not callable(handler):
            raise InvalidRequestError(f"handler for {event!r} must be callable")
        return self._add_listener(event, handler)


SYNC_STREAM_EVENTS: Final = frozenset(
    {"subscription_state_changed", "message_published", "removed"}
)
SyncStreamEventName: TypeAlias = Literal[
    "subscription_state_changed", "message_published", "removed"
]


class SyncStreamEvents(Generic[T]):
    """Typed `on()` for SyncStream: one overload per event, so handlers are checked."""

    __slots__ = ()

    def _add_listener(self, event: str, handler: Handler[Any]) -> Unsubscribe:
        raise NotImplementedError

    @overload
    def on(
        self, event: Literal["subscription_state_changed"], handler: Handler[SubscriptionState]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["message_published"], handler: Handler[StreamMessagePublishedEvent[T]]
    ) -> Unsubscribe: ...
    @overload
    def on(
        self, event: Literal["removed"], handler: Handler[CollectionRemovedEvent]
    ) -> Unsubscribe: ...

    def on(self, event: SyncStreamEventName, handler: Handler[Any]) -> Unsubscribe:
        """Call `handler` on every `event` (subscription_state_changed, message_published, removed); returns a callable that unsubscribes."""
        if event not in SYNC_STREAM_EVENTS:
            names = ", ".join(sorted(SYNC_STREAM_EVENTS))
            raise InvalidRequestError(f"SyncStream has no event {event!r}; events: {names}")
        if not callable(handler):
            raise InvalidRequestError(f"handler for {event!r} must be callable")
        return self._add_listener(event, handler)
