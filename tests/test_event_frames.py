"""spec/protocol.yaml's EventFrame union against the frames the server builds: every frame
parses into the model of its `name`, and carries exactly that model's fields. Pure
in-memory: the server's own event builders (sync_server.events, sync_server.storage.common,
called as SyncService and Session call them), no server process."""

from __future__ import annotations

import json
from typing import Any, get_args

import orjson
import pytest
from pydantic import BaseModel, ValidationError
from sync_generated import protocol_dicts
from sync_generated.errors import ForbiddenError
from sync_generated.protocol import (
    EVENT_FRAME_ADAPTER,
    EVENT_FRAME_TYPES,
    EventName,
    ItemAddedFrame,
    ItemRemovedFrame,
    ItemUpdatedFrame,
    MessagePublishedFrame,
    RemovedFrame,
    RevokedFrame,
    SnapshotFrame,
    UpdatedFrame,
)

from sync_server import events
from sync_server.events import Event
from sync_server.records import ObjectKind, ObjectRecord
from sync_server.storage import common

SVC = "IS" + "0" * 32
AT = 1_790_000_000.0


def record(kind: ObjectKind, sid: str, data: dict[str, Any] | None = None) -> ObjectRecord:
    return ObjectRecord(
        kind=kind,
        sid=sid,
        service_sid=SVC,
        unique_name="name",
        data=data,
        last_event_id=3,
        date_created=AT,
        date_updated=AT,
        date_expires=None,
        created_by="alice",
    )


DOC_SID, LIST_SID, MAP_SID = "ET" + "1" * 32, "ES" + "1" * 32, "MP" + "1" * 32


def server_frames() -> list[tuple[type[BaseModel], bytes]]:
    """One frame of every shape the server sends, built as the server builds it."""
    doc = record("document", DOC_SID, {"a": 1})
    lst, mp = record("list", LIST_SID), record("map", MAP_SID)
    pushed, added = common.push_item(
        lst, 0, data={"t": 1}, ttl=None, origin="c1", created_by="alice", at=AT
    )
    new_item, map_added = common.write_item(
        "map",
        mp,
        None,
        "k",
        data={"v": 1},
        merge=False,
        if_match=None,
        ttl=None,
        origin=None,
        created_by="alice",
        if_absent=False,
        at=AT,
    )
    _, map_updated = common.write_item(
        "map",
        mp,
        new_item,
        "k",
        data={"v": 2},
        merge=True,
        if_match=None,
        ttl=5,
        origin="c1",
        created_by="alice",
        if_absent=False,
        at=AT,
    )
    expired, _ = common.expired_item_events(
        [(mp.sid, None, "k", '{"v": 2}', "map", SVC, mp.last_event_id)]
    )
    return [
        (
            UpdatedFrame,
            common.update_document(
                doc, data={"b": 2}, merge=True, if_match=None, ttl=60, origin="c1", at=AT
            ),
        ),
        (
            UpdatedFrame,
            common.update_document(
                doc, data={}, merge=False, if_match=None, ttl=None, origin=None, at=AT
            ),
        ),
        (
            RemovedFrame,
            common.object_removed_event("document", SVC, doc.sid, 5, {"b": 2}, "c1").frame,
        ),
        (RemovedFrame, common.object_removed_event("list", SVC, lst.sid, 5, None, None).frame),
        (RemovedFrame, common.expired_object_event((mp.sid, SVC, "map", None, 7)).frame),
        (  # a removal noticed late (Session)
            RemovedFrame,
            Event.of(SVC, events.object_removed("map", mp.sid, 8, None, None), final=True).frame,
        ),
        (ItemAddedFrame, added),
        (ItemAddedFrame, map_added),
        (ItemUpdatedFrame, map_updated),
        (
            ItemRemovedFrame,
            common.remove_item("list", lst, pushed, 0, if_match=None, origin="c1", at=AT),
        ),
        (ItemRemovedFrame, expired[0].frame),
        (
            MessagePublishedFrame,
            orjson.dumps(
                events.message_published(
                    "TO" + "1" * 32, {"sid": "TZ" + "1" * 32, "data": {"m": 1}}, "c1"
                )
            ),
        ),
        (
            SnapshotFrame,
            orjson.dumps(events.snapshot(mp, [new_item])),
        ),
        (
            SnapshotFrame,
            orjson.dumps(events.snapshot(doc, [])),
        ),
        (
            RevokedFrame,
            orjson.dumps(events.revoked("map", mp.sid, ForbiddenError("no read access"))),
        ),
    ]


FRAMES = server_frames()


@pytest.mark.parametrize(
    ("model", "raw"), FRAMES, ids=[f"{model.__name__}-{i}" for i, (model, _) in enumerate(FRAMES)]
)
def test_server_frame_parses_into_the_model_of_its_name(model: type[BaseModel], raw: bytes) -> None:
    frame = json.loads(raw)
    # The SDK validates a frame that starts like this straight from its text (its fast path).
    assert raw.startswith(b'{"type":"event"')
    parsed = EVENT_FRAME_ADAPTER.validate_json(raw.decode())
    assert type(parsed) is model
    assert EVENT_FRAME_TYPES[frame["name"]] is model
    # Exactly the model's fields: none the spec lacks, none it requires missing. Only an
    # item_removed frame leaves one field out (`index` for a map item, `key` for a list's).
    missing = set(model.model_fields) - set(frame)
    assert set(frame) <= set(model.model_fields)
    assert missing == ({"index", "key"} - set(frame) if model is ItemRemovedFrame else set())


def test_every_event_name_has_a_model_and_a_typed_dict() -> None:
    names = {name.value for name in EventName}
    assert set(EVENT_FRAME_TYPES) == names
    assert {model.__name__ for model in EVENT_FRAME_TYPES.values()} == {
        typed.__name__ for typed in get_args(protocol_dicts.EventFrame)
    }


def test_item_removed_names_its_item_by_index_or_key() -> None:
    removed = [json.loads(raw) for model, raw in FRAMES if model is ItemRemovedFrame]
    assert sorted(("index" in f, "key" in f) for f in removed) == [(False, True), (True, False)]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "renamed"},
        {"event_id": None},  # an `updated` always has an id
        {"previous_data": None},  # a document always had data before
        {"kind": "map"},  # `updated` is a document's event
        {"date_updated": "yesterday"},
    ],
)
def test_frame_that_breaks_the_spec_is_rejected(change: dict[str, Any]) -> None:
    _, raw = FRAMES[0]
    frame = {**json.loads(raw), **change}
    with pytest.raises(ValidationError):
        EVENT_FRAME_ADAPTER.validate_json(json.dumps(frame))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    _, raw = FRAMES[0]
    frame = {**json.loads(raw), "added_in_a_later_version": 1}
    parsed = EVENT_FRAME_ADAPTER.validate_json(json.dumps(frame))
    assert isinstance(parsed, UpdatedFrame)
    assert parsed.data == {"a": 1, "b": 2}
