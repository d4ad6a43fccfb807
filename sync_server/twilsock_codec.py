"""Twilsock v3 framing, sans I/O (spec/twilsock.yaml): bytes in, frames out, and back.

    TWILSOCK V3.0 <H>\\r\\n<header JSON, H bytes>\\r\\n<payload, header.payload_size bytes>

Sizes count UTF-8 bytes. `decode` reads one frame (one binary WebSocket message) and raises
`FrameError` for anything that is not one; `client_header` turns its header into the
generated model of what the client sent (init, update, message, close, reply, telemetry.v1)
or raises `HeaderError`, which keeps the frame's id when it could be read so the front door
can answer that request; `encode` writes a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter, ValidationError
from sync_generated.twilsock import (
    AckHeader,
    CloseHeader,
    InitHeader,
    MessageHeader,
    TelemetryHeader,
    UpdateHeader,
)

MAGIC = b"TWILSOCK V3.0 "
_MAX_SIZE_DIGITS = 10

ClientHeader = InitHeader | UpdateHeader | MessageHeader | CloseHeader | AckHeader | TelemetryHeader
_CLIENT_HEADER: TypeAdapter[ClientHeader] = TypeAdapter(
    Annotated[ClientHeader, Field(discriminator="method")]
)


class FrameError(ValueError):
    """Not a Twilsock v3 frame (wrong magic, a size that lies, a header that is not JSON)."""


class HeaderError(ValueError):
    """A readable frame whose header is not a valid client message; `id` if it had one."""

    def __init__(self, message: str, frame_id: str | None) -> None:
        super().__init__(message)
        self.frame_id = frame_id


@dataclass(frozen=True, slots=True)
class Frame:
    header: dict[str, Any]
    payload: bytes


def decode(data: bytes) -> Frame:
    """One frame from one WebSocket message; FrameError if it is not one."""
    if not data.startswith(MAGIC):
        raise FrameError("not a Twilsock v3 frame: it must start with 'TWILSOCK V3.0 '")
    start = len(MAGIC)
    eol = data.find(b"\r\n", start, start + _MAX_SIZE_DIGITS + 4)
    digits = data[start:eol].strip() if eol >= 0 else b""
    if not digits.isdigit() or len(digits) > _MAX_SIZE_DIGITS:
        raise FrameError("the first line must end with the header size in bytes")
    header_start = eol + 2
    header_end = header_start + int(digits)
    if header_end > len(data):
        raise FrameError(f"the header is shorter than the {int(digits)} bytes announced")
    try:
        header = orjson.loads(data[header_start:header_end])
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"the header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("the header must be a JSON object")
    size = header.get("payload_size", 0)
    if size is None:
        size = 0
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise FrameError("payload_size must be a whole number of bytes")
    payload = b""
    if size:
        payload = data[header_end + 2 : header_end + 2 + size]
        if len(payload) != size:
            raise FrameError(f"the payload is shorter than payload_size ({size} bytes)")
    return Frame(header, payload)


def client_header(frame: Frame) -> ClientHeader:
    """The frame's header as the message the client sent; HeaderError if it is not one."""
    try:
        return _CLIENT_HEADER.validate_python(frame.header)
    except ValidationError as exc:
        frame_id = frame.header.get("id")
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "header"
        raise HeaderError(
            f"invalid {frame.header.get('method')!r:.40} frame: {where}: {first['msg']}",
            frame_id if isinstance(frame_id, str) else None,
        ) from None


def encode(header: Mapping[str, Any], payload: bytes = b"") -> bytes:
    """A frame; `payload_size` is set from the payload."""
    head = orjson.dumps({**header, "payload_size": len(payload)})
    return b"%s%d\r\n%s\r\n%s" % (MAGIC, len(head), head, payload)
