"""Sans-I/O core of the realtime protocol (spec/protocol.yaml).

`ClientProtocol` numbers and encodes requests (the TypedDicts of
`sync_generated.protocol_dicts`: typed against the spec, plain dicts at run time), turns
frames into `Reply` values and the generated event models (`sync_generated.protocol`'s
`EventFrame`: one model per event name, each frame validated once), and tracks the last
event id per subscribed object to drop duplicates and detect gaps. It does no I/O, so it
is unit-tested without a network; `sync_sdk.client` drives it over a WebSocket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sync_generated.errors import InvalidRequestError, SyncError, error_for_code
from sync_generated.protocol import EVENT_FRAME_ADAPTER, EventFrame
from sync_generated.protocol_dicts import Request

from .validation import is_json_object

JsonObject = dict[str, Any]


@dataclass(slots=True)
class Reply:
    id: int
    result: JsonObject | None
    error: SyncError | None


EventVerdict = Literal["deliver", "duplicate", "gap", "unknown"]

UNNUMBERED = 0
"""The `id` a request is built with; `ClientProtocol.encode_request` numbers it when sent."""

# The server (orjson) writes an event frame's `type` first, so one is recognised by its
# first bytes and validated straight from the text; any other frame is parsed first.
_EVENT_FRAME_START = '{"type":"event"'
# The adapter's core validator, called without TypeAdapter's Python wrapper (every event).
_EVENT_VALIDATOR = EVENT_FRAME_ADAPTER.validator


class ClientProtocol:
    """Request ids, frame encoding/decoding and per-object event ordering."""

    __slots__ = ("_last_event_id", "_next_id")

    def __init__(self) -> None:
        self._next_id = 1
        self._last_event_id: dict[str, int] = {}

    # ---- outgoing ----------------------------------------------------------------------
    def encode_request(self, request: Request) -> tuple[int, bytes]:
        """The next request id and the frame of `request` with that id."""
        request_id = self._next_id
        self._next_id += 1
        try:
            return request_id, orjson.dumps({**request, "id": request_id})
        except TypeError as exc:
            raise InvalidRequestError(
                f"{request['type']}: data is not JSON-serializable: {exc}"
            ) from None

    # ---- incoming ----------------------------------------------------------------------
    def decode(self, data: str | bytes) -> Reply | EventFrame:
        """Parse one server frame; raises InvalidRequestError on a frame that breaks the protocol."""
        if isinstance(data, str) and data.startswith(_EVENT_FRAME_START):
            return self._event(data)
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"server sent invalid JSON: {exc}") from None
        if not is_json_object(frame):
            raise InvalidRequestError("server frame is not a JSON object")
        kind = frame.get("type")
        if kind == "reply":
            request_id = frame.get("id")
            if type(request_id) is not int:  # orjson gives exact types; a bool is no id
                request_id = -1
            err = frame.get("error")
            if err is not None:
                return Reply(request_id, None, self._error(err))
            result = frame.get("result")
            return Reply(request_id, result if is_json_object(result) else {}, None)
        if kind == "event":
            return self._event(frame)
        raise InvalidRequestError(f"unknown server frame type {kind!r}")

    @staticmethod
    def _event(frame: str | JsonObject) -> EventFrame:
        """The event model of a frame (its text, or the frame parsed by orjson)."""
        try:
            event: EventFrame
            if isinstance(frame, str):
                event = _EVENT_VALIDATOR.validate_json(frame)
            else:
                event = _EVENT_VALIDATOR.validate_python(frame)
            return event
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidRequestError(
                f"server sent a malformed event frame: {where}: {first['msg']}"
            ) from None

    @staticmethod
    def _error(err: object) -> SyncError:
        if not is_json_object(err):
            raise InvalidRequestError(f"reply error is not an object: {err!r:.80}")
        code, status = err.get("code"), err.get("status")
        if not isinstance(code, int) or isinstance(code, bool):
            raise InvalidRequestError(f"reply error without an integer code: {err!r:.80}")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise InvalidRequestError(f"reply error with a non-integer status: {err!r:.80}")
        return error_for_code(code, str(err.get("message") or ""), status)

    # ---- event ordering ----------------------------------------------------------------
    def track(self, sid: str, last_event_id: int) -> None:
        """Start (or move forward) tracking an object at `last_event_id`."""
        if last_event_id > self._last_event_id.get(sid, -1):
            self._last_event_id[sid] = last_event_id

    def untrack(self, sid: str) -> None:
        self._last_event_id.pop(sid, None)

    def last_event_id(self, sid: str) -> int | None:
        return self._last_event_id.get(sid)

    def classify(self, event: EventFrame) -> EventVerdict:
        """deliver (and advance), duplicate (already seen), gap (events missing before it)
        or unknown (object not tracked). Events without an id (stream messages) are delivered."""
        last = self._last_event_id.get(event.sid)
        if last is None:
            return "unknown"
        if event.event_id is None:
            return "deliver"
        if event.event_id <= last:
            return "duplicate"
        if event.event_id > last + 1 and event.name != "snapshot":
            return "gap"
        self._last_event_id[event.sid] = event.event_id
        return "deliver"
