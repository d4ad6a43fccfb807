"""sync_sdk: a typed async client for real-time shared state (Documents, Lists, Maps, Streams).

from sync_sdk import Client, ClientOptions

async with Client(token, ClientOptions(url="http://127.0.0.1:4700")) as client:
    doc = await client.document("settings")
    doc.on("updated", lambda e: print(e.data, e.is_local))
    await doc.set({"theme": "dark"})
"""

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
from sync_generated.errors import *  # noqa: F403
from sync_generated.errors import __all__ as _errors_all

from ._version import __version__
from .client import Client
from .objects import Paginator, SyncDocument, SyncList, SyncMap, SyncStream

__all__ = [
    "Client",
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
    "Paginator",
    "StreamMessagePublishedEvent",
    "SubscriptionState",
    "SyncDocument",
    "SyncList",
    "SyncListItem",
    "SyncMap",
    "SyncMapItem",
    "SyncStream",
    "SyncStreamMessage",
    "TokenAboutToExpireEvent",
    "TokenExpiredEvent",
    "__version__",
    *_errors_all,
]
