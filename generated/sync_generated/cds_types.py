# Generated from spec/cds.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Links(TypedDict):
    items: NotRequired[str]
    context: NotRequired[str]
    messages: NotRequired[str]


class DocumentResource(TypedDict):
    sid: str
    unique_name: str | None
    url: str
    revision: str
    last_event_id: int
    data: dict[str, Any]
    date_created: str | None
    date_updated: str | None
    date_expires: str | None
    created_by: str


class CollectionResource(TypedDict):
    """
    A list, map or stream (streams have no revision or last_event_id).
    """

    sid: str
    unique_name: str | None
    url: str
    links: Links
    revision: NotRequired[str]
    last_event_id: NotRequired[int]
    date_created: str | None
    date_updated: str | None
    date_expires: str | None
    created_by: str


class ItemResource(TypedDict):
    """
    A list item (`index`) or a map item (`key`).
    """

    index: NotRequired[int]
    key: NotRequired[str]
    url: str
    revision: str
    last_event_id: int
    data: dict[str, Any]
    date_created: str | None
    date_updated: str | None
    date_expires: str | None
    created_by: str


class PageMeta(TypedDict):
    """
    A token is non-null when items exist before (previous) or after (next) this page.
    """

    previous_token: str | None
    next_token: str | None


class ItemsPage(TypedDict):
    items: list[ItemResource]
    meta: PageMeta


class ItemRemoved(TypedDict):
    last_event_id: int
    date_updated: str | None


class MessageResource(TypedDict):
    sid: str
    data: dict[str, Any]


class SubscriptionsAccepted(TypedDict):
    estimated_delivery_in_ms: int
    max_batch_size: int


class ErrorBody(TypedDict):
    status: int
    code: int
    message: str
    more_info: str


class SyncEvent(TypedDict):
    """
    The payload of a `notification` (message_type twilio.sync.event). Object events carry `id` (the object's event id), `date_created`, the object's sid field and their own fields: document_updated (document_data, document_revision), list_item_added / _updated / _removed (item_index), map_item_* (item_key), item_data (on removals the removed data), item_revision, item_url, date_expires, list_revision / map_revision; stream_message_published (message_sid, message_data); document_removed, list_removed, map_removed, stream_removed. Subscription events carry correlation_id and `events`, each {object_sid, object_type, replay_status, last_event_id} or, for subscription_failed, an `error` (ErrorBody).

    """

    event_type: str
    event: NotRequired[dict[str, Any]]
    events: NotRequired[list[dict[str, Any]]]
    correlation_id: NotRequired[int | None]
    event_protocol_version: NotRequired[int]
