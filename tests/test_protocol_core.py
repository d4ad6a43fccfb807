"""The sans-I/O protocol core, the connection state machine, request validation and client
options: pure in-memory tests, no server and no sockets."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError
from sync_generated import protocol_dicts
from sync_generated.client import CONNECTION_STATE_TRANSITIONS, ClientOptions, LogLevel
from sync_generated.errors import (
    DocumentNotFoundError,
    DocumentRevisionMismatchError,
    InvalidRequestError,
    NotFoundError,
    RateLimitExceededError,
)
from sync_generated.protocol import (
    REQUEST_ADAPTER,
    EventFrame,
    ItemAddedFrame,
    ItemSetRequest,
    ItemsPageRequest,
    MessagePublishedFrame,
    PingRequest,
)

from sync_sdk import ConnectionState
from sync_sdk._protocol import UNNUMBERED, ClientProtocol, Reply
from sync_sdk._state import ConnectionStateMachine, InvalidTransition

CS = ConnectionState
MAP_SID = "MP" + "0" * 32


def frame(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


NOW = "2026-01-01T00:00:00Z"


def event_frame(sid: str, name: str, event_id: int | None, **fields: Any) -> dict[str, Any]:
    """A complete event frame as the server sends it: `name` decides which other fields."""
    base = {"type": "event", "sid": sid, "name": name, "event_id": event_id, "origin": None}
    item = {
        "key": "k",
        "revision": str(event_id),
        "data": {"n": 1},
        "date_created": NOW,
        "date_updated": NOW,
        "date_expires": None,
        "created_by": "alice",
        "last_event_id": event_id,
    }
    by_name: dict[str, dict[str, Any]] = {
        "updated": {
            "kind": "document",
            "data": {"n": 2},
            "previous_data": {"n": 1},
            "revision": str(event_id),
            "date_updated": NOW,
            "date_expires": None,
        },
        "item_added": {"kind": "map", "item": item, "previous_data": None},
        "message_published": {"kind": "stream", "message": {"sid": "TZ1", "data": {"m": 1}}},
        "snapshot": {
            "kind": "map",
            "items": [item],
            "object": {
                "kind": "map",
                "sid": sid,
                "unique_name": None,
                "revision": str(event_id),
                "data": None,
                "date_created": NOW,
                "date_updated": NOW,
                "date_expires": None,
                "created_by": "alice",
                "last_event_id": event_id,
            },
        },
    }
    return {**base, **by_name[name], **fields}


# ---- encode_request ----------------------------------------------------------------------


def test_encode_request_numbers_each_request_and_leaves_it_unchanged() -> None:
    proto = ClientProtocol()
    request: protocol_dicts.ItemSetRequest = {
        "id": UNNUMBERED,
        "type": "item_set",
        "sid": MAP_SID,
        "key": "k",
        "data": {"n": 1, "nested": [1, "two", None]},
    }
    ids = []
    for _ in range(3):
        request_id, raw = proto.encode_request(request)
        ids.append(request_id)
        assert json.loads(raw) == {**request, "id": request_id}
    assert ids == [1, 2, 3]
    assert request["id"] == UNNUMBERED  # a retry encodes the same request again
    request_id, raw = proto.encode_request({"id": UNNUMBERED, "type": "ping"})
    assert request_id == 4
    assert json.loads(raw) == {"id": 4, "type": "ping"}


def test_encoded_request_passes_server_validation() -> None:
    proto = ClientProtocol()
    _, raw = proto.encode_request(
        {"id": UNNUMBERED, "type": "item_set", "sid": MAP_SID, "key": "k", "data": {"a": 1}}
    )
    assert isinstance(REQUEST_ADAPTER.validate_json(raw), ItemSetRequest)


@pytest.mark.parametrize(
    "data",
    [{"x": object()}, {"x": {1, 2}}, {"x": 2**70}, {1: "non-str key"}],
    ids=["object", "set", "bigint", "int-key"],
)
def test_encode_request_rejects_non_json(data: dict[Any, Any]) -> None:
    proto = ClientProtocol()
    with pytest.raises(InvalidRequestError) as exc_info:
        proto.encode_request(
            {"id": UNNUMBERED, "type": "document_set", "sid": "ET" + "0" * 32, "data": data}
        )
    assert exc_info.value.code == 51000
    assert exc_info.value.status == 400
    assert "document_set" in exc_info.value.message
    # The protocol stays usable and ids keep increasing.
    request_id, _ = proto.encode_request({"id": UNNUMBERED, "type": "ping"})
    assert request_id == 2


# ---- decode ------------------------------------------------------------------------------


def test_decode_reply_with_result() -> None:
    reply = ClientProtocol().decode(frame(type="reply", id=7, result={"sid": MAP_SID}))
    assert reply == Reply(7, {"sid": MAP_SID}, None)


def test_decode_reply_with_null_result_is_empty_dict() -> None:
    reply = ClientProtocol().decode(frame(type="reply", id=3, result=None))
    assert isinstance(reply, Reply)
    assert (reply.id, reply.result, reply.error) == (3, {}, None)


def test_decode_reply_without_id() -> None:
    reply = ClientProtocol().decode(frame(type="reply", id=None, result={}))
    assert isinstance(reply, Reply)
    assert reply.id == -1


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        (54103, 412, DocumentRevisionMismatchError),
        (54100, 404, DocumentNotFoundError),
        (54009, 429, RateLimitExceededError),
        (59999, 404, NotFoundError),
    ],
)
def test_decode_reply_with_error(code: int, status: int, cls: type[Exception]) -> None:
    raw = frame(type="reply", id=5, error={"code": code, "status": status, "message": "nope"})
    reply = ClientProtocol().decode(raw)
    assert isinstance(reply, Reply)
    assert reply.id == 5
    assert reply.result is None
    assert type(reply.error) is cls
    assert reply.error is not None
    assert (reply.error.code, reply.error.status, reply.error.message) == (code, status, "nope")


def test_decode_event_into_the_model_of_its_name() -> None:
    raw = frame(**event_frame(MAP_SID, "item_added", 12, origin="c1"))
    event = ClientProtocol().decode(raw)
    assert isinstance(event, ItemAddedFrame)
    assert (event.sid, event.name, event.event_id, event.origin) == (
        MAP_SID,
        "item_added",
        12,
        "c1",
    )
    assert (event.item.key, event.item.data, event.item.last_event_id) == ("k", {"n": 1}, 12)


def test_decode_event_from_compact_text_as_the_server_writes_it() -> None:
    # orjson's compact text (no spaces) is validated straight from the string.
    text = json.dumps(event_frame(MAP_SID, "item_added", 3), separators=(",", ":"))
    assert text.startswith('{"type":"event"')
    event = ClientProtocol().decode(text)
    assert isinstance(event, ItemAddedFrame)
    assert event.item.revision == "3"


def test_decode_event_without_id() -> None:
    event = ClientProtocol().decode(frame(**event_frame("TO1", "message_published", None)))
    assert isinstance(event, MessagePublishedFrame)
    assert event.event_id is None
    assert event.message.data == {"m": 1}


@pytest.mark.parametrize("compact", [True, False], ids=["compact", "spaced"])
@pytest.mark.parametrize(
    "change",
    [{"item": None}, {"event_id": "twelve"}, {"name": "renamed"}, {"sid": 5}],
    ids=["no-item", "bad-id", "unknown-name", "bad-sid"],
)
def test_decode_rejects_event_that_breaks_the_spec(change: dict[str, Any], compact: bool) -> None:
    fields = {**event_frame(MAP_SID, "item_added", 12), **change}
    text = json.dumps(fields, separators=(",", ":") if compact else None)
    with pytest.raises(InvalidRequestError) as exc_info:
        ClientProtocol().decode(text)
    assert exc_info.value.code == 51000
    assert "malformed event frame" in exc_info.value.message


def test_decode_accepts_str() -> None:
    reply = ClientProtocol().decode('{"type": "reply", "id": 1, "result": {"ok": true}}')
    assert reply == Reply(1, {"ok": True}, None)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b'"reply"',
        b"null",
        b'{"type": "bogus", "id": 1}',
        b'{"id": 1, "result": {}}',
        b'{"type": "event", "name": "updated"}',
        b'{"type": "event", "sid": "ET1"}',
        b'{"type": "event", "sid": 5, "name": "updated"}',
    ],
)
def test_decode_rejects_bad_frames(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as exc_info:
        ClientProtocol().decode(raw)
    assert exc_info.value.code == 51000


@pytest.mark.parametrize(
    "error",
    ['"oops"', '{"code": "abc", "status": 404}', '{"code": null, "status": 404}'],
)
def test_decode_rejects_malformed_error_body(error: str) -> None:
    raw = f'{{"type": "reply", "id": 1, "error": {error}}}'
    with pytest.raises(InvalidRequestError):
        ClientProtocol().decode(raw)


def test_decode_error_without_status_keeps_default_status() -> None:
    reply = ClientProtocol().decode(frame(type="reply", id=1, error={"code": 54100}))
    assert isinstance(reply, Reply)
    assert reply.error is not None
    assert reply.error.status == 404


# ---- event ordering ----------------------------------------------------------------------


def event(sid: str, event_id: int | None, name: str = "updated") -> EventFrame:
    decoded = ClientProtocol().decode(frame(**event_frame(sid, name, event_id)))
    assert not isinstance(decoded, Reply)
    return decoded


def test_in_order_events_are_delivered_and_advance() -> None:
    proto = ClientProtocol()
    proto.track("ET1", 5)
    assert proto.last_event_id("ET1") == 5
    for i in (6, 7, 8):
        assert proto.classify(event("ET1", i)) == "deliver"
        assert proto.last_event_id("ET1") == i


@pytest.mark.parametrize("event_id", [10, 9, 0])
def test_repeated_or_older_event_is_duplicate(event_id: int) -> None:
    proto = ClientProtocol()
    proto.track("ET1", 10)
    assert proto.classify(event("ET1", event_id)) == "duplicate"
    assert proto.last_event_id("ET1") == 10


def test_event_delivered_twice_is_duplicate_the_second_time() -> None:
    proto = ClientProtocol()
    proto.track("ET1", 0)
    assert proto.classify(event("ET1", 1)) == "deliver"
    assert proto.classify(event("ET1", 1)) == "duplicate"


def test_jump_is_gap_and_does_not_advance() -> None:
    proto = ClientProtocol()
    proto.track("ET1", 3)
    assert proto.classify(event("ET1", 5)) == "gap"
    assert proto.last_event_id("ET1") == 3
    # The missing event still fits, and then the one after it.
    assert proto.classify(event("ET1", 4)) == "deliver"
    assert proto.classify(event("ET1", 5)) == "deliver"
    assert proto.last_event_id("ET1") == 5


def test_untracked_sid_is_unknown() -> None:
    proto = ClientProtocol()
    proto.track("ET1", 1)
    assert proto.classify(event("ET2", 1)) == "unknown"
    assert proto.classify(event("TO2", None, "message_published")) == "unknown"
    assert proto.last_event_id("ET2") is None
    proto.untrack("ET1")
    assert proto.classify(event("ET1", 2)) == "unknown"
    assert proto.last_event_id("ET1") is None


def test_event_without_id_is_delivered_and_does_not_advance() -> None:
    proto = ClientProtocol()
    proto.track("TO1", 4)
    assert proto.classify(event("TO1", None, "message_published")) == "deliver"
    assert proto.classify(event("TO1", None, "message_published")) == "deliver"
    assert proto.last_event_id("TO1") == 4


def test_snapshot_jumping_ahead_is_delivered_and_advances() -> None:
    proto = ClientProtocol()
    proto.track("MP1", 2)
    assert proto.classify(event("MP1", 40, "snapshot")) == "deliver"
    assert proto.last_event_id("MP1") == 40
    assert proto.classify(event("MP1", 41)) == "deliver"
    assert proto.classify(event("MP1", 40, "snapshot")) == "duplicate"


def test_track_only_moves_forward() -> None:
    proto = ClientProtocol()
    proto.track("ET1", 10)
    proto.track("ET1", 4)
    assert proto.last_event_id("ET1") == 10
    proto.track("ET1", 12)
    assert proto.last_event_id("ET1") == 12


# ---- connection state machine ------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[ConnectionState] = []

    def __call__(self, state: ConnectionState) -> None:
        self.calls.append(state)


def test_state_machine_starts_disconnected() -> None:
    rec = Recorder()
    sm = ConnectionStateMachine(rec)
    assert sm.state is CS.DISCONNECTED
    assert rec.calls == []


ALL_PAIRS = [(a, b) for a, b in itertools.product(CS, CS) if a != b]
ALLOWED = [(a, b) for a, b in ALL_PAIRS if b in CONNECTION_STATE_TRANSITIONS[a]]
DISALLOWED = [(a, b) for a, b in ALL_PAIRS if b not in CONNECTION_STATE_TRANSITIONS[a]]


def test_transition_partition_is_not_trivial() -> None:
    assert len(ALLOWED) == sum(len(v) for v in CONNECTION_STATE_TRANSITIONS.values())
    assert (CS.DISCONNECTED, CS.CONNECTED) in DISALLOWED
    assert (CS.ERROR, CS.CONNECTED) in DISALLOWED
    assert (CS.CONNECTED, CS.CONNECTING) in ALLOWED


@pytest.mark.parametrize(("src", "dst"), ALLOWED, ids=lambda s: s.value)
def test_allowed_transition(src: ConnectionState, dst: ConnectionState) -> None:
    rec = Recorder()
    sm = ConnectionStateMachine(rec)
    sm.state = src
    assert sm.can_move_to(dst)
    sm.move_to(dst)
    assert sm.state is dst
    assert rec.calls == [dst]


@pytest.mark.parametrize(("src", "dst"), DISALLOWED, ids=lambda s: s.value)
def test_disallowed_transition(src: ConnectionState, dst: ConnectionState) -> None:
    rec = Recorder()
    sm = ConnectionStateMachine(rec)
    sm.state = src
    assert not sm.can_move_to(dst)
    with pytest.raises(InvalidTransition, match=f"{src.value} -> {dst.value}"):
        sm.move_to(dst)
    assert sm.state is src
    assert rec.calls == []


@pytest.mark.parametrize("state", list(CS), ids=lambda s: s.value)
def test_same_state_is_noop(state: ConnectionState) -> None:
    rec = Recorder()
    sm = ConnectionStateMachine(rec)
    sm.state = state
    sm.move_to(state)
    assert sm.state is state
    assert rec.calls == []


def test_realistic_path() -> None:
    rec = Recorder()
    sm = ConnectionStateMachine(rec)
    path = [
        CS.CONNECTING,
        CS.CONNECTED,
        CS.CONNECTING,  # connection dropped, reconnecting
        CS.CONNECTED,
        CS.CONNECTED,  # repeated: no callback
        CS.DISCONNECTING,
        CS.DISCONNECTED,
    ]
    for state in path:
        sm.move_to(state)
        assert sm.state is state
    assert rec.calls == [
        CS.CONNECTING,
        CS.CONNECTED,
        CS.CONNECTING,
        CS.CONNECTED,
        CS.DISCONNECTING,
        CS.DISCONNECTED,
    ]


def test_callback_error_propagates_after_state_change() -> None:
    def boom(state: ConnectionState) -> None:
        raise RuntimeError(state.value)

    sm = ConnectionStateMachine(boom)
    with pytest.raises(RuntimeError, match="connecting"):
        sm.move_to(CS.CONNECTING)
    assert sm.state is CS.CONNECTING


# ---- server-side request validation ------------------------------------------------------


def item_set(**overrides: Any) -> dict[str, Any]:
    return {"id": 1, "type": "item_set", "sid": MAP_SID, "key": "k", "data": {"a": 1}} | overrides


def test_valid_map_item_set() -> None:
    req = REQUEST_ADAPTER.validate_python(item_set(ttl=31536000, if_match="r1"))
    assert isinstance(req, ItemSetRequest)
    assert (req.key, req.data, req.ttl, req.if_match) == ("k", {"a": 1}, 31536000, "r1")
    assert req.index is None
    assert req.merge is False


def test_ping_and_page_defaults() -> None:
    assert isinstance(REQUEST_ADAPTER.validate_python({"id": 0, "type": "ping"}), PingRequest)
    page = REQUEST_ADAPTER.validate_python(
        {"id": 2, "type": "items_page", "sid": MAP_SID, "page_size": 100}
    )
    assert isinstance(page, ItemsPageRequest)
    assert (page.page_size, page.order, page.inclusive) == (100, "asc", True)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({"id": 1, "type": "nope", "sid": MAP_SID}, id="unknown-type"),
        pytest.param({"id": 1, "sid": MAP_SID}, id="no-type"),
        pytest.param(item_set(ttl=31536001), id="ttl-too-large"),
        pytest.param(item_set(ttl=-1), id="ttl-negative"),
        pytest.param(item_set(extra="x"), id="extra-field"),
        pytest.param(item_set(id=-1), id="negative-id"),
        pytest.param(item_set(data=[1, 2]), id="data-not-object"),
        pytest.param({"id": 1, "type": "item_set", "sid": MAP_SID, "key": "k"}, id="no-data"),
        pytest.param(
            {"id": 1, "type": "items_page", "sid": MAP_SID, "page_size": 101}, id="page-101"
        ),
        pytest.param({"id": 1, "type": "items_page", "sid": MAP_SID, "page_size": 0}, id="page-0"),
        pytest.param({"id": 1, "type": "ping", "token": "t"}, id="ping-extra"),
    ],
)
def test_invalid_requests_fail(request_: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        REQUEST_ADAPTER.validate_python(request_)


def test_extra_field_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as exc_info:
        REQUEST_ADAPTER.validate_python(item_set(priority=3))
    errors = exc_info.value.errors()
    assert [e["type"] for e in errors] == ["extra_forbidden"]
    assert errors[0]["loc"][-1] == "priority"


# ---- ClientOptions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"url": "localhost:4700"}, id="url-no-scheme"),
        pytest.param({"url": "ftp://example.com"}, id="url-ftp"),
        pytest.param({"log_level": "verbose"}, id="log-level"),
        pytest.param({"command_timeout": -1}, id="command-timeout-negative"),
        pytest.param({"command_timeout": 0}, id="command-timeout-zero"),
        pytest.param({"reconnect_jitter": 2}, id="jitter-2"),
        pytest.param({"reconnect_jitter": -0.1}, id="jitter-negative"),
        pytest.param({"token_refresh_margin": -1}, id="refresh-margin-negative"),
        pytest.param({"heartbeat_interval": True}, id="heartbeat-bool"),
    ],
)
def test_client_options_rejects(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as exc_info:
        ClientOptions(**kwargs)
    assert exc_info.value.code == 51000
    assert next(iter(kwargs)) in exc_info.value.message


def test_client_options_log_level_coerced() -> None:
    assert ClientOptions(log_level="warn").log_level is LogLevel.WARN
    assert ClientOptions(log_level=LogLevel.TRACE).log_level is LogLevel.TRACE
    assert ClientOptions().log_level is LogLevel.ERROR


def test_client_options_accepts_boundaries() -> None:
    opts = ClientOptions(url="wss://sync.example.com", reconnect_jitter=1, token_refresh_margin=0)
    assert (opts.url, opts.reconnect_jitter, opts.token_refresh_margin) == (
        "wss://sync.example.com",
        1,
        0,
    )
    assert ClientOptions(reconnect_jitter=0).reconnect_jitter == 0
