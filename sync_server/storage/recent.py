"""The objects and items the SQLite backend last read or wrote, kept in memory so that a
request on a hot object skips the SELECTs that would fetch them again.

Sound because one process owns the SQLite file and every write goes through one storage
object, on one thread at a time:

- a write stores what it committed, as its last step: a write that fails stores nothing;
- a transaction that fails as a whole (its COMMIT, or a broken batch) clears everything;
- deletes drop what they delete (an object drops its items with it);
- lookups hand out copies (`ObjectRecord.copy`), so the records here change only when a write
  stores new ones. The records a write stores are the ones it returns: no one changes them.

A record may be past its expiry: the caller decides liveness, as the SQL does. Bounded: past
`limit` entries of a kind the oldest goes (a miss only costs the SELECT).
"""

from __future__ import annotations

from collections.abc import Collection

from .base import ItemRecord, ObjectRecord

ItemRef = int | str  # a list item's index or a map item's key


class RecentRecords:
    def __init__(self, limit: int = 4096) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._objects: dict[str, ObjectRecord] = {}
        self._names: dict[tuple[str, str, str], str] = {}  # (service, kind, unique name) -> sid
        self._items: dict[tuple[str, ItemRef], ItemRecord] = {}

    def __len__(self) -> int:
        return len(self._objects) + len(self._items)

    # ---- objects ---------------------------------------------------------------------

    def object(
        self, service_sid: str, kind: str, sid_or_name: str, *, by_sid: bool
    ) -> ObjectRecord | None:
        """The object as last committed, or None if it is not here (ask the database)."""
        sid = sid_or_name if by_sid else self._names.get((service_sid, kind, sid_or_name))
        if sid is None:
            return None
        obj = self._objects.get(sid)
        if obj is None or obj.service_sid != service_sid or obj.kind != kind:
            return None
        if not by_sid and obj.unique_name != sid_or_name:
            return None
        return obj

    def put_object(self, obj: ObjectRecord) -> None:
        objects = self._objects
        objects.pop(obj.sid, None)  # to the newest end
        objects[obj.sid] = obj
        if obj.unique_name is not None:
            self._names[(obj.service_sid, obj.kind, obj.unique_name)] = obj.sid
        if len(objects) > self.limit:
            self._forget_object(next(iter(objects)))

    def drop_objects(self, sids: Collection[str]) -> None:
        """Forget these objects and all their items (deleted, or changed outside a lookup)."""
        wanted = set(sids)
        if not wanted:
            return
        for sid in wanted:
            self._forget_object(sid)
        gone = [ref for ref in self._items if ref[0] in wanted]
        for ref in gone:
            del self._items[ref]

    def _forget_object(self, sid: str) -> None:
        obj = self._objects.pop(sid, None)
        if obj is not None and obj.unique_name is not None:
            name = (obj.service_sid, obj.kind, obj.unique_name)
            if self._names.get(name) == sid:
                del self._names[name]

    # ---- items -----------------------------------------------------------------------

    def item(self, object_sid: str, ref: ItemRef) -> ItemRecord | None:
        """The item as last committed, or None if it is not here (ask the database)."""
        return self._items.get((object_sid, ref))

    def put_item(self, object_sid: str, ref: ItemRef, item: ItemRecord) -> None:
        items = self._items
        at = (object_sid, ref)
        items.pop(at, None)
        items[at] = item
        if len(items) > self.limit:
            del items[next(iter(items))]

    def drop_item(self, object_sid: str, ref: ItemRef) -> None:
        self._items.pop((object_sid, ref), None)

    def clear(self) -> None:
        self._objects.clear()
        self._names.clear()
        self._items.clear()
