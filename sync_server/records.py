"""The core's records: what storage keeps and every part of the server passes around
(services, objects, items, permissions, pages). Plain data, no behaviour beyond revisions
and copies."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal, Self

ObjectKind = Literal["document", "list", "map", "stream"]
JsonObject = dict[str, Any]


@dataclass(slots=True)
class ServiceRecord:
    sid: str
    account_sid: str
    unique_name: str | None = None
    friendly_name: str | None = None
    webhook_url: str | None = None
    webhooks_from_rest_enabled: bool = False
    reachability_webhooks_enabled: bool = False
    acl_enabled: bool = False
    reachability_debouncing_enabled: bool = False
    reachability_debouncing_window: int = 5000
    date_created: float = 0.0
    date_updated: float = 0.0


class _Copyable:
    __slots__ = ()

    def copy(self) -> Self:
        """A shallow copy (data is shared: a write replaces it, never changes it in place)."""
        cls = type(self)
        fields = _FIELDS.get(cls)
        if fields is None:
            names: tuple[str, ...] = vars(cls)["__slots__"]  # its fields, in order
            fields = _FIELDS[cls] = attrgetter(*names)
        return cls(*fields(self))


_FIELDS: dict[type, attrgetter[Any]] = {}


@dataclass(slots=True)
class ObjectRecord(_Copyable):
    kind: ObjectKind
    sid: str
    service_sid: str
    unique_name: str | None
    data: JsonObject | None  # documents only
    last_event_id: int
    date_created: float
    date_updated: float
    date_expires: float | None
    created_by: str

    @property
    def revision(self) -> str:
        return str(self.last_event_id)


@dataclass(slots=True)
class ItemRecord(_Copyable):
    index: int | None  # lists
    key: str | None  # maps
    data: JsonObject
    last_event_id: int
    date_created: float
    date_updated: float
    date_expires: float | None
    created_by: str

    @property
    def revision(self) -> str:
        return str(self.last_event_id)


@dataclass(slots=True)
class PermissionRecord:
    """Per-identity access to one document, list or map (services with acl_enabled)."""

    service_sid: str
    object_sid: str
    identity: str
    read: bool
    write: bool
    manage: bool


@dataclass(slots=True)
class PageResult:
    items: list[ItemRecord]
    has_next: bool
    has_prev: bool
