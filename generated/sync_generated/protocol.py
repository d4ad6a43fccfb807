# Generated from spec/protocol.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ObjectKind(StrEnum):
    document = "document"
    list = "list"
    map = "map"
    stream = "stream"


class OpenMode(StrEnum):
    open_or_create = "open_or_create"
    open_existing = "open_existing"
    create_new = "create_new"


class ItemOrder(StrEnum):
    asc = "asc"
    desc = "desc"


class EventName(StrEnum):
    updated = "updated"
    removed = "removed"
    item_added = "item_added"
    item_updated = "item_updated"
    item_removed = "item_removed"
    message_published = "message_published"
    snapshot = "snapshot"
    revoked = "revoked"


class HelloRequest(BaseModel):
    """
    First frame of a connection. `client_id` is stable across reconnects and marks the client's own events (is_local).
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["hello"]
    token: Annotated[str, Field(max_length=8192)]
    client_id: Annotated[str, Field(max_length=64, min_length=1)]
    protocol: int = 1
    """
    The protocol version the client speaks (info.x-protocol-version); the server refuses another with 51000.
    """


class UpdateTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["update_token"]
    token: Annotated[str, Field(max_length=8192)]


class PingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["ping"]


class OpenRequest(BaseModel):
    """
    Open (and maybe create) an object by SID or unique name; no id creates an anonymous object.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["open"]
    kind: ObjectKind
    object_id: Annotated[str | None, Field(max_length=1024)] = None
    mode: OpenMode = OpenMode.open_or_create
    ttl: Annotated[int | None, Field(ge=0, le=31536000)] = None
    data: dict[str, Any] | None = None


class SubscribeRequest(BaseModel):
    """
    Receive the object's events; `since` replays every stored event with a larger id first.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["subscribe"]
    sid: Annotated[str, Field(max_length=64)]
    since: Annotated[int | None, Field(ge=0)] = None


class UnsubscribeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["unsubscribe"]
    sid: Annotated[str, Field(max_length=64)]


class DocumentSetRequest(BaseModel):
    """
    Overwrite (merge=false) or shallow-merge (merge=true) a document's data.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["document_set"]
    sid: Annotated[str, Field(max_length=64)]
    data: dict[str, Any]
    merge: bool = False
    if_match: Annotated[str | None, Field(max_length=64)] = None
    ttl: Annotated[int | None, Field(ge=0, le=31536000)] = None


class SetTtlRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["set_ttl"]
    sid: Annotated[str, Field(max_length=64)]
    ttl: Annotated[int, Field(ge=0, le=31536000)]


class RemoveRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["remove"]
    sid: Annotated[str, Field(max_length=64)]


class ListPushRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["list_push"]
    sid: Annotated[str, Field(max_length=64)]
    data: dict[str, Any]
    ttl: Annotated[int | None, Field(ge=0, le=31536000)] = None


class ItemGetRequest(BaseModel):
    """
    Fetch one item; `index` for lists, `key` for maps.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["item_get"]
    sid: Annotated[str, Field(max_length=64)]
    index: Annotated[int | None, Field(ge=0, le=9223372036854775807)] = None
    key: str | None = None


class ItemSetRequest(BaseModel):
    """
    Write an item. Lists require the item to exist; maps upsert. merge=true shallow-merges.
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["item_set"]
    sid: Annotated[str, Field(max_length=64)]
    index: Annotated[int | None, Field(ge=0, le=9223372036854775807)] = None
    key: str | None = None
    data: dict[str, Any]
    merge: bool = False
    if_match: Annotated[str | None, Field(max_length=64)] = None
    if_absent: bool = False
    """
    Create only: 54208 if the map item exists.
    """
    ttl: Annotated[int | None, Field(ge=0, le=31536000)] = None


class ItemSetTtlRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["item_set_ttl"]
    sid: Annotated[str, Field(max_length=64)]
    index: Annotated[int | None, Field(ge=0, le=9223372036854775807)] = None
    key: str | None = None
    ttl: Annotated[int, Field(ge=0, le=31536000)]


class ItemRemoveRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["item_remove"]
    sid: Annotated[str, Field(max_length=64)]
    index: Annotated[int | None, Field(ge=0, le=9223372036854775807)] = None
    key: str | None = None
    if_match: Annotated[str | None, Field(max_length=64)] = None


class ItemsPageRequest(BaseModel):
    """
    A page of items in index/key order, starting at `from_index`/`from_key` (inclusive unless `inclusive` is false).
    """

    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["items_page"]
    sid: Annotated[str, Field(max_length=64)]
    from_index: Annotated[int | None, Field(ge=0, le=9223372036854775807)] = None
    from_key: str | None = None
    inclusive: bool = True
    page_size: Annotated[int, Field(ge=1, le=100)] = 50
    order: ItemOrder = ItemOrder.asc


class StreamPublishRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
    )
    id: Annotated[int, Field(ge=0, le=9007199254740991)]
    type: Literal["stream_publish"]
    sid: Annotated[str, Field(max_length=64)]
    data: dict[str, Any]


class ErrorBody(BaseModel):
    code: int
    status: int
    message: str


class Reply(BaseModel):
    type: Literal["reply"]
    id: int | None
    """
    null when the request's id could not be read
    """
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None


class HelloResult(BaseModel):
    connection_id: str
    identity: str
    account_sid: str
    service_sid: str
    token_expires_at: float
    """
    Unix time
    """
    heartbeat_interval: float
    """
    Seconds between server pings the client may expect.
    """
    server_version: str | None = None
    protocol: int | None = None
    """
    The protocol version the server speaks.
    """


class ObjectSnapshot(BaseModel):
    """
    An object's metadata (and a document's data) as of last_event_id.
    """

    kind: ObjectKind
    sid: str
    unique_name: str | None = None
    revision: str
    data: dict[str, Any] | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str | None = None
    last_event_id: int


class ItemSnapshot(BaseModel):
    index: int | None = None
    key: str | None = None
    revision: str
    data: dict[str, Any]
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str | None = None
    last_event_id: int


class ItemsPageResult(BaseModel):
    items: list[ItemSnapshot]
    has_next: bool
    has_prev: bool


class SubscribeResult(BaseModel):
    last_event_id: int
    """
    The object's last event id when the subscription was established.
    """
    replayed: int
    """
    Number of stored events replayed; they are sent just before this reply, live events after it.
    """


class StreamMessageResult(BaseModel):
    sid: str
    data: dict[str, Any]


class UpdatedFrame(BaseModel):
    """
    A document's data changed (set, update, or a TTL given with them).
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document"]
    name: Literal["updated"]
    event_id: int
    origin: str | None
    data: dict[str, Any]
    previous_data: dict[str, Any]
    revision: str
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None


class RemovedFrame(BaseModel):
    """
    The object was removed (or expired); its last event. `previous_data` is a document's last data, null for lists, maps and streams and when the removal was noticed late.
    """

    type: Literal["event"]
    sid: str
    kind: ObjectKind
    name: Literal["removed"]
    event_id: int
    origin: str | None
    previous_data: dict[str, Any] | None


class ItemAddedFrame(BaseModel):
    """
    A list or map item was created; `event_id` is the item's last_event_id.
    """

    type: Literal["event"]
    sid: str
    kind: ObjectKind
    name: Literal["item_added"]
    event_id: int
    origin: str | None
    item: ItemSnapshot
    previous_data: None


class ItemUpdatedFrame(BaseModel):
    """
    A list or map item was overwritten or merged; `previous_data` is its data before.
    """

    type: Literal["event"]
    sid: str
    kind: ObjectKind
    name: Literal["item_updated"]
    event_id: int
    origin: str | None
    item: ItemSnapshot
    previous_data: dict[str, Any]


class ItemRemovedFrame(BaseModel):
    """
    A list or map item was removed (or expired). Exactly one of `index` (lists) and `key` (maps) names it; `previous_data` is its last data.
    """

    type: Literal["event"]
    sid: str
    kind: ObjectKind
    name: Literal["item_removed"]
    event_id: int
    origin: str | None
    index: Annotated[int | None, Field(ge=0)] = None
    key: str | None = None
    previous_data: dict[str, Any]


class MessagePublishedFrame(BaseModel):
    """
    A message was published to a stream (streams keep no history, so no event_id).
    """

    type: Literal["event"]
    sid: str
    kind: Literal["stream"]
    name: Literal["message_published"]
    event_id: None
    origin: str | None
    message: StreamMessageResult


class SnapshotFrame(BaseModel):
    """
    Sent instead of the replay when the history needed to catch up is gone: the object's full current state, `items` holding every item of a list or map (empty otherwise). `event_id` is the object's last_event_id.
    """

    type: Literal["event"]
    sid: str
    kind: ObjectKind
    name: Literal["snapshot"]
    event_id: int
    origin: None
    object: ObjectSnapshot
    items: list[ItemSnapshot]


class RevokedFrame(BaseModel):
    """
    The identity lost read access (ACL); the subscription ended and `error` says why.
    """

    type: Literal["event"]
    sid: str
    kind: ObjectKind
    name: Literal["revoked"]
    event_id: None
    origin: None
    error: ErrorBody


# ---- discriminated unions (rendered by codegen/templates/protocol_union.py.j2) ----------
from typing import Annotated as _Annotated  # noqa: E402

from pydantic import Field as _Field  # noqa: E402
from pydantic import TypeAdapter as _TypeAdapter  # noqa: E402

PROTOCOL_VERSION = 1
"""The protocol version this description defines (info.x-protocol-version): a client sends
it in `hello`, and a server refuses any other."""

Request = _Annotated[
    HelloRequest
    | UpdateTokenRequest
    | PingRequest
    | OpenRequest
    | SubscribeRequest
    | UnsubscribeRequest
    | DocumentSetRequest
    | SetTtlRequest
    | RemoveRequest
    | ListPushRequest
    | ItemGetRequest
    | ItemSetRequest
    | ItemSetTtlRequest
    | ItemRemoveRequest
    | ItemsPageRequest
    | StreamPublishRequest,
    _Field(discriminator="type"),
]
"""Any client -> server request, discriminated by its `type`."""

REQUEST_ADAPTER: _TypeAdapter[Request] = _TypeAdapter(Request)
"""Parses one Request (`validate_json(text)`) into the model of its `type`."""

REQUEST_TYPES: dict[str, type[BaseModel]] = {
    "hello": HelloRequest,
    "update_token": UpdateTokenRequest,
    "ping": PingRequest,
    "open": OpenRequest,
    "subscribe": SubscribeRequest,
    "unsubscribe": UnsubscribeRequest,
    "document_set": DocumentSetRequest,
    "set_ttl": SetTtlRequest,
    "remove": RemoveRequest,
    "list_push": ListPushRequest,
    "item_get": ItemGetRequest,
    "item_set": ItemSetRequest,
    "item_set_ttl": ItemSetTtlRequest,
    "item_remove": ItemRemoveRequest,
    "items_page": ItemsPageRequest,
    "stream_publish": StreamPublishRequest,
}
"""Request model by its `type`."""

EventFrame = _Annotated[
    UpdatedFrame
    | RemovedFrame
    | ItemAddedFrame
    | ItemUpdatedFrame
    | ItemRemovedFrame
    | MessagePublishedFrame
    | SnapshotFrame
    | RevokedFrame,
    _Field(discriminator="name"),
]
"""A change pushed to subscribers, discriminated by its `name`."""

EVENT_FRAME_ADAPTER: _TypeAdapter[EventFrame] = _TypeAdapter(EventFrame)
"""Parses one EventFrame (`validate_json(text)`) into the model of its `name`."""

EVENT_FRAME_TYPES: dict[str, type[BaseModel]] = {
    "updated": UpdatedFrame,
    "removed": RemovedFrame,
    "item_added": ItemAddedFrame,
    "item_updated": ItemUpdatedFrame,
    "item_removed": ItemRemovedFrame,
    "message_published": MessagePublishedFrame,
    "snapshot": SnapshotFrame,
    "revoked": RevokedFrame,
}
"""EventFrame model by its `name`."""
