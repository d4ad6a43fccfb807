"""Where WebSocket frames end in a byte stream (RFC 6455, section 5.2), sans-I/O.

Both ends of our realtime protocol read a request, a reply or an event in one final text
frame. `FrameCutter` finds the frames that the bytes received so far complete, so that an
adapter reads such a frame on the spot (unmasking it with websockets' C helper when it is
masked) and gives every other frame, whole, to websockets' own parser, which keeps every
rule of the protocol: that parser then always starts at a frame boundary. `frame_head`
writes a frame's head, masked (the client's) or not (the server's). The server's
WebSocket protocol (`sync_server.ws_server`) and the SDK's connection (`_transport`) both
cut with it (a module of the SDK shared with the server, like `validation`; not user API).
"""

from __future__ import annotations

import struct

__all__ = ["FIN_BINARY", "FIN_TEXT", "FrameCutter", "Span", "apply_mask", "frame_head"]

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

FIN_TEXT = 0x81  # the first byte of a final text frame without extension bits
FIN_BINARY = 0x82
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")


def frame_head(first: int, size: int, *, masked: bool = False) -> bytes:
    """The head of a frame of `size` payload bytes whose first byte is `first`; `masked`
    sets the mask bit (a client's frame: its 4-byte key follows the head)."""
    mask_bit = 0x80 if masked else 0
    if size < 126:
        return bytes((first, mask_bit | size))
    if size < 65536:
        return _HEAD_16.pack(first, mask_bit | 126, size)
    return _HEAD_64.pack(first, mask_bit | 127, size)


Span = tuple[int, int, int]
"""A whole frame in the cutter's buffer: (start, payload start, end). A masked frame's key
is the 4 bytes before its payload (`buffer[start + 1] & 0x80` says whether it is masked)."""


class FrameCutter:
    """Cuts a WebSocket byte stream, from a frame boundary, into whole frames."""

    __slots__ = ("_needs", "_partial", "_stopped", "max_size")

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self._partial = bytearray()  # the start of a frame not all arrived yet
        self._needs = 0  # its length, once its head is in
        self._stopped = False  # a frame over max_size was met: nothing more is cut

    def cut(self, data: bytes) -> tuple[bytes, list[Span], int]:
        """The frames `data` completes: (buffer, their spans in it, over). `over` is -1,
        or where a frame starts whose head declares more than `max_size` bytes: cutting
        stops there for good, and the buffer from `over` on (from 0 in every later call)
        is for a full parser, which refuses the frame. A frame cut short waits for the next
        call."""
        if self._stopped:
            return data, [], 0
        partial = self._partial
        if partial:
            partial += data
            if len(partial) < self._needs:  # a large frame, still arriving
                return b"", [], -1
            data = bytes(partial)
            partial.clear()
        spans: list[Span] = []
        pos, end = 0, len(data)
        max_size = self.max_size
        needs = 0  # the length of a frame cut short, once its head is in
        while end - pos >= 2:
            second = data[pos + 1]
            size, head = second & 0x7F, 2
            if size == 126:
                if end - pos < 4:
                    break
                size, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif size == 127:
                if end - pos < 10:
                    break
                size, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if max_size is not None and size > max_size:
                self._stopped = True
                return data, spans, pos
            if second & 0x80:
                head += 4
            stop = pos + head + size
            if stop > end:
                needs = stop - pos
                break
            spans.append((pos, pos + head, stop))
            pos = stop
        if pos < end:
            partial += data[pos:]
            self._needs = needs
        return data, spans, -1
