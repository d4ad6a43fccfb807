# Generated from spec/entities.yaml by codegen/generate.py (`make generate`).
# DO NOT EDIT: change the spec or the template and regenerate.

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field


class Service(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    unique_name: str | None = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    friendly_name: str | None = None
    date_created: AwareDatetime
    date_updated: AwareDatetime
    url: str | None = None
    webhook_url: str | None = None
    webhooks_from_rest_enabled: bool = False
    reachability_webhooks_enabled: bool = False
    acl_enabled: bool = False
    reachability_debouncing_enabled: bool = False
    reachability_debouncing_window: int = 5000


class Document(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    unique_name: Annotated[str | None, Field(max_length=320)] = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    revision: str
    """
    Opaque revision; changes on every write. Sent back as If-Match.
    """
    data: dict[str, Any]
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str = "system"
    url: str | None = None


class List(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    unique_name: Annotated[str | None, Field(max_length=320)] = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    revision: str
    """
    Opaque revision; changes on every write. Sent back as If-Match.
    """
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str = "system"
    url: str | None = None


class Map(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    unique_name: Annotated[str | None, Field(max_length=320)] = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    revision: str
    """
    Opaque revision; changes on every write. Sent back as If-Match.
    """
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str = "system"
    url: str | None = None


class Stream(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    unique_name: Annotated[str | None, Field(max_length=320)] = None
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str = "system"
    url: str | None = None


class ListItem(BaseModel):
    index: Annotated[int, Field(ge=0)]
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    list_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    revision: str
    """
    Opaque revision; changes on every write. Sent back as If-Match.
    """
    data: dict[str, Any]
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str = "system"
    url: str | None = None


class MapItem(BaseModel):
    key: Annotated[str, Field(max_length=320, min_length=1)]
    account_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    service_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    map_sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    revision: str
    """
    Opaque revision; changes on every write. Sent back as If-Match.
    """
    data: dict[str, Any]
    date_created: AwareDatetime
    date_updated: AwareDatetime
    date_expires: AwareDatetime | None = None
    created_by: str = "system"
    url: str | None = None


class StreamMessage(BaseModel):
    sid: Annotated[str, Field(pattern="^[A-Z]{2}[0-9a-f]{32}$")]
    """
    Two-letter prefix followed by 32 lowercase hex digits.
    """
    data: dict[str, Any]
