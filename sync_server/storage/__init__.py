"""Storage backends behind one interface (`Storage`); SQLite is the embedded default."""

from .base import (
    ItemRecord,
    ObjectKind,
    ObjectRecord,
    PageResult,
    PermissionRecord,
    ServiceRecord,
    Storage,
    StoredEvent,
)

__all__ = [
    "ItemRecord",
    "ObjectKind",
    "ObjectRecord",
    "PageResult",
    "PermissionRecord",
    "ServiceRecord",
    "Storage",
    "StoredEvent",
]
