# Generated from spec/protocol.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.
"""The frames of spec/protocol.yaml as TypedDicts: build a frame as a plain dict,
checked by the type checker against the spec, at no runtime cost. `protocol.py` has
the same payloads as pydantic models, to validate frames received."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

EventName: TypeAlias = Literal[
    "updated",
    "removed",
    "item_added",
    "item_updated",
    "item_removed",
    "message_published",
    "snapshot",
    "revoked",
]


class HelloRequest(TypedDict):
    """
    First frame of a connection. `client_id` is stable across reconnects and marks the client's own events (is_local).
    """

    id: int
    type: Literal["hello"]
    token: str
    client_id: str
    protocol: NotRequired[int]
    """
    The protocol version the client speaks (info.x-protocol-version); the server refuses another with 51000.
    """


class UpdateTokenRequest(TypedDict):
    id: int
    type: Literal["update_token"]
    token: str


class PingRequest(TypedDict):
    id: int
    type: Literal["ping"]


class OpenRequest(TypedDict):
    """
    Open (and maybe create) an object by SID or unique name; no id creates an anonymous object.
    """

    id: int
    type: Literal["open"]
    kind: Literal["document", "list", "map", "stream"]
    object_id: NotRequired[str | None]
    mode: NotRequired[Literal["open_or_create", "open_existing", "create_new"]]
    ttl: NotRequired[int | None]
    data: NotRequired[dict[str, Any] | None]


class SubscribeRequest(TypedDict):
    """
    Receive the object's events; `since` replays every stored event with a larger id first.
    """

    id: int
    type: Literal["subscribe"]
    sid: str
    since: NotRequired[int | None]


class UnsubscribeRequest(TypedDict):
    id: int
    type: Literal["unsubscribe"]
    sid: str


class DocumentSetRequest(TypedDict):
    """
    Overwrite (merge=false) or shallow-merge (merge=true) a document's data.
    """

    id: int
    type: Literal["document_set"]
    sid: str
    data: dict[str, Any]
    merge: NotRequired[bool]
    if_match: NotRequired[str | None]
    ttl: NotRequired[int | None]


class SetTtlRequest(TypedDict):
    id: int
    type: Literal["set_ttl"]
    sid: str
    ttl: int


class RemoveRequest(TypedDict):
    id: int
    type: Literal["remove"]
    sid: str


class ListPushRequest(TypedDict):
    id: int
    type: Literal["list_push"]
    sid: str
    data: dict[str, Any]
    ttl: NotRequired[int | None]


class ItemGetRequest(TypedDict):
    """
    Fetch one item; `index` for lists, `key` for maps.
    """

    id: int
    type: Literal["item_get"]
    sid: str
    index: NotRequired[int | None]
    key: NotRequired[str | None]


class ItemSetRequest(TypedDict):
    """
    Write an item. Lists require the item to exist; maps upsert. merge=true shallow-merges.
    """

    id: int
    type: Literal["item_set"]
    sid: str
    index: NotRequired[int | None]
    key: NotRequired[str | None]
    data: dict[str, Any]
    merge: NotRequired[bool]
    if_match: NotRequired[str | None]
    if_absent: NotRequired[bool]
    """
    Create only: 54208 if the map item exists.
    """
    ttl: NotRequired[int | None]


class ItemSetTtlRequest(TypedDict):
    id: int
    type: Literal["item_set_ttl"]
    sid: str
    index: NotRequired[int | None]
    key: NotRequired[str | None]
    ttl: int


class ItemRemoveRequest(TypedDict):
    id: int
    type: Literal["item_remove"]
    sid: str
    index: NotRequired[int | None]
    key: NotRequired[str | None]
    if_match: NotRequired[str | None]


class ItemsPageRequest(TypedDict):
    """
    A page of items in index/key order, starting at `from_index`/`from_key` (inclusive unless `inclusive` is false).
    """

    id: int
    type: Literal["items_page"]
    sid: str
    from_index: NotRequired[int | None]
    from_key: NotRequired[str | None]
    inclusive: NotRequired[bool]
    page_size: NotRequired[int]
    order: NotRequired[Literal["asc", "desc"]]


class StreamPublishRequest(TypedDict):
    id: int
    type: Literal["stream_publish"]
    sid: str
    data: dict[str, Any]


class ErrorBody(TypedDict):
    code: int
    status: int
    message: str


class Reply(TypedDict):
    type: Literal["reply"]
    id: int | None
    """
    null when the request's id could not be read
    """
    result: NotRequired[dict[str, Any] | None]
    error: NotRequired[ErrorBody | None]


class HelloResult(TypedDict):
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
    server_version: NotRequired[str]
    protocol: NotRequired[int]
    """
    The protocol version the server speaks.
    """


class ObjectSnapshot(TypedDict):
    """
    An object's metadata (and a document's data) as of last_event_id.
    """

    kind: Literal["document", "list", "map", "stream"]
    sid: str
    unique_name: NotRequired[str | None]
    revision: str
    data: NotRequired[dict[str, Any] | None]
    date_created: str
    date_updated: str
    date_expires: NotRequired[str | None]
    created_by: NotRequired[str]
    last_event_id: int


class ItemSnapshot(TypedDict):
    index: NotRequired[int | None]
    key: NotRequired[str | None]
    revision: str
    data: dict[str, Any]
    date_created: str
    date_updated: str
    date_expires: NotRequired[str | None]
    created_by: NotRequired[str]
    last_event_id: int


class ItemsPageResult(TypedDict):
    items: list[ItemSnapshot]
    has_next: bool
    has_prev: bool


class SubscribeResult(TypedDict):
    last_event_id: int
    """
    The object's last event id when the subscription was established.
    """
    replayed: int
    """
    Number of stored events replayed; they are sent just before this reply, live events after it.
    """


class StreamMessageResult(TypedDict):
    sid: str
    data: dict[str, Any]


class UpdatedFrame(TypedDict):
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
    date_updated: str
    date_expires: str | None


class RemovedFrame(TypedDict):
    """
    The object was removed (or expired); its last event. `previous_data` is a document's last data, null for lists, maps and streams and when the removal was noticed late.
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document", "list", "map", "stream"]
    name: Literal["removed"]
    event_id: int
    origin: str | None
    previous_data: dict[str, Any] | None


class ItemAddedFrame(TypedDict):
    """
    A list or map item was created; `event_id` is the item's last_event_id.
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document", "list", "map", "stream"]
    name: Literal["item_added"]
    event_id: int
    origin: str | None
    item: ItemSnapshot
    previous_data: None


class ItemUpdatedFrame(TypedDict):
    """
    A list or map item was overwritten or merged; `previous_data` is its data before.
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document", "list", "map", "stream"]
    name: Literal["item_updated"]
    event_id: int
    origin: str | None
    item: ItemSnapshot
    previous_data: dict[str, Any]


class ItemRemovedFrame(TypedDict):
    """
    A list or map item was removed (or expired). Exactly one of `index` (lists) and `key` (maps) names it; `previous_data` is its last data.
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document", "list", "map", "stream"]
    name: Literal["item_removed"]
    event_id: int
    origin: str | None
    index: NotRequired[int]
    key: NotRequired[str]
    previous_data: dict[str, Any]


class MessagePublishedFrame(TypedDict):
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


class SnapshotFrame(TypedDict):
    """
    Sent instead of the replay when the history needed to catch up is gone: the object's full current state, `items` holding every item of a list or map (empty otherwise). `event_id` is the object's last_event_id.
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document", "list", "map", "stream"]
    name: Literal["snapshot"]
    event_id: int
    origin: None
    object: ObjectSnapshot
    items: list[ItemSnapshot]


class RevokedFrame(TypedDict):
    """
    The identity lost read access (ACL); the subscription ended and `error` says why.
    """

    type: Literal["event"]
    sid: str
    kind: Literal["document", "list", "map", "stream"]
    name: Literal["revoked"]
    event_id: None
    origin: None
    error: ErrorBody


# ---- discriminated unions (rendered by codegen/templates/protocol_dicts_union.py.j2) ----

Request = (
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
    | StreamPublishRequest
)
"""Any client -> server request, discriminated by its `type`."""

EventFrame = (
    UpdatedFrame
    | RemovedFrame
    | ItemAddedFrame
    | ItemUpdatedFrame
    | ItemRemovedFrame
    | MessagePublishedFrame
    | SnapshotFrame
    | RevokedFrame
)
"""A change pushed to subscribers, discriminated by its `name`."""
