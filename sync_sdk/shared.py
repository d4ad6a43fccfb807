"""What `sync_sdk` and `sync_sdk.blocking` both export besides the errors: options, states,
events and items (the client and object classes differ: async in `sync_sdk`, blocking in
`sync_sdk.blocking`). Import them from either of those."""

from sync_generated.client import (
    ClientOptions,
    CollectionRemovedEvent,
    ConnectionErrorEvent,
    ConnectionState,
    DocumentRemovedEvent,
    DocumentUpdatedEvent,
    JsonObject,
    ListItemAddedEvent,
    ListItemRemovedEvent,
    ListItemUpdatedEvent,
    LogLevel,
    MapItemAddedEvent,
    MapItemRemovedEvent,
    MapItemUpdatedEvent,
    StreamMessagePublishedEvent,
    SubscriptionState,
    SyncListItem,
    SyncMapItem,
    SyncStreamMessage,
    TokenAboutToExpireEvent,
    TokenExpiredEvent,
)

from ._version import __version__

__all__ = [
    "ClientOptions",
    "CollectionRemovedEvent",
    "ConnectionErrorEvent",
    "ConnectionState",
    "DocumentRemovedEvent",
    "DocumentUpdatedEvent",
    "JsonObject",
    "ListItemAddedEvent",
    "ListItemRemovedEvent",
    "ListItemUpdatedEvent",
    "LogLevel",
    "MapItemAddedEvent",
    "MapItemRemovedEvent",
    "MapItemUpdatedEvent",
    "StreamMessagePublishedEvent",
    "SubscriptionState",
    "SyncListItem",
    "SyncMapItem",
    "SyncStreamMessage",
    "TokenAboutToExpireEvent",
    "TokenExpiredEvent",
    "__version__",
]
