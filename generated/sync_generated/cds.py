# Generated from spec/cds.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class DocumentCreate(BaseModel):
    unique_name: str | None = None
    data: dict[str, Any] | None = None
    ttl: int | None = None


class DocumentUpdate(BaseModel):
    """
    Data, TTL, or both; a body with only `ttl` leaves the data as it is.
    """

    data: dict[str, Any] | None = None
    ttl: int | None = None


class CollectionCreate(BaseModel):
    unique_name: str | None = None
    ttl: int | None = None
    purpose: str | None = None
    context: Any | None = None


class TtlUpdate(BaseModel):
    ttl: int


class ItemWrite(BaseModel):
    data: dict[str, Any] | None = None
    ttl: int | None = None


class MessageCreate(BaseModel):
    data: dict[str, Any]


class ObjectType(StrEnum):
    document = "document"
    list = "list"
    map = "map"
    stream = "stream"
    live_query = "live_query"


class SubscriptionTarget(BaseModel):
    object_sid: str
    object_type: ObjectType
    last_event_id: int | None = None


class Action(StrEnum):
    establish = "establish"
    cancel = "cancel"


class SubscriptionRequest(BaseModel):
    event_protocol_version: int | None = None
    action: Action
    correlation_id: int | None = None
    """
    Echoed in the notifications
    """
    retried_requests: int | None = None
    ttl_in_s: int | None = None
    reason: str | None = None
    requests: list[SubscriptionTarget]
