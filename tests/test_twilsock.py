"""Twilsock (/v3/wsconnect): the sans-I/O codec in process, and a live server fed by a raw
Twilsock client: the handshake, carried requests, notifications, and hostile frames (wrong
magic, sizes that lie, invalid JSON, unknown methods, text frames, oversize bodies, requests
before init), fuzzed with hypothesis as the native protocol is. The official JavaScript SDK
itself runs against the server in tests/test_js_client.py."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sync_generated.twilsock import InitHeader
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sync_server.tokens import mint_token
from sync_server.twilsock_codec import (
    FrameError,
    HeaderError,
    client_header,
    decode,
    encode,
)
from tests.conftest import ServerProcess

FUZZ_SEED = int(os.environ.get("SYNC_FUZZ_SEED", "20261130").replace("random", "0") or 0)


# ---- the codec -------------------------------------------------------------------------


def test_frames_round_trip_with_utf8_byte_counts() -> None:
    header = {"method": "message", "id": "TM1", "note": "é✓😀"}
    payload = orjson.dumps({"data": {"t": "é✓😀"}})
    data = encode(header, payload)
    head_len = len(orjson.dumps({**header, "payload_size": len(payload)}))
    assert data.startswith(b"TWILSOCK V3.0 %d\r\n" % head_len)
    frame = decode(data)
    assert frame.header == {**header, "payload_size": len(payload)}
    assert frame.payload == payload
    assert decode(data + b"\r\n").payload == payload  # a trailing CRLF is tolerated


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"TWILSOCK V2.0 2\r\n{}\r\n", "TWILSOCK V3.0"),
        (b"HELLO", "TWILSOCK V3.0"),
        (b"TWILSOCK V3.0 \r\n{}\r\n", "header size"),
        (b"TWILSOCK V3.0 -2\r\n{}\r\n", "header size"),
        (b"TWILSOCK V3.0 99\r\n{}\r\n", "shorter"),
        (b"TWILSOCK V3.0 3\r\n{x}\r\n", "not JSON"),
        (b"TWILSOCK V3.0 2\r\n[]\r\n", "JSON object"),
        (b'TWILSOCK V3.0 18\r\n{"payload_size":9}\r\nabc', "shorter than payload_size"),
        (b'TWILSOCK V3.0 19\r\n{"payload_size":-1}\r\n', "whole number"),
        (b'TWILSOCK V3.0 21\r\n{"payload_size":true}\r\n', "whole number"),
        (b"TWILSOCK V3.0 99999999999999999999\r\n", "header size"),
    ],
)
def test_unreadable_frames_are_frame_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(FrameError, match=fragment):
        decode(data)


def test_client_headers_are_typed_and_unknown_methods_keep_their_id() -> None:
    init = client_header(decode(encode({"method": "init", "id": "TM1", "token": "t"})))
    assert isinstance(init, InitHeader) and init.token == "t"
    with pytest.raises(HeaderError) as info:
        client_header(decode(encode({"method": "frobnicate", "id": "TM2"})))
    assert info.value.frame_id == "TM2"
    with pytest.raises(HeaderError) as info:
        client_header(decode(encode({"method": "message", "id": 7})))
    assert info.value.frame_id is None


@seed(FUZZ_SEED)
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.binary(max_size=60).map(lambda b: b"TWILSOCK V3.0 " + b))
def test_any_bytes_decode_or_raise_frame_error(data: bytes) -> None:
    try:
        frame = decode(data)
    except FrameError:
        return
    assert isinstance(frame.header, dict) and isinstance(frame.payload, bytes)


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
headers = st.dictionaries(st.text(max_size=10), json_scalars, max_size=5)


@seed(FUZZ_SEED)
@settings(max_examples=300, deadline=None)
@given(headers, st.binary(max_size=300))
def test_encode_then_decode_is_identity(header: dict[str, Any], payload: bytes) -> None:
    frame = decode(encode(header, payload))
    assert frame.header == {**header, "payload_size": len(payload)}
    assert frame.payload == payload


# ---- a live server ---------------------------------------------------------------------


class RawTwilsock:
    """A bare Twilsock client: frames in, frames out."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, header: dict[str, Any], payload: bytes = b"") -> str:
        frame_id = str(header.setdefault("id", "TM" + uuid.uuid4().hex))
        await self.ws.send(encode(header, payload))
        return frame_id

    async def recv(self, timeout: float = 5) -> tuple[dict[str, Any], Any]:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, bytes), f"a text frame from the server: {data!r:.200}"
        frame = decode(data)
        body = orjson.loads(frame.payload) if frame.payload else None
        return frame.header, body

    async def reply_to(self, frame_id: str) -> tuple[dict[str, Any], Any]:
        """The reply to `frame_id` (notifications before it are skipped)."""
        while True:
            header, body = await self.recv()
            if header["method"] == "reply" and header["id"] == frame_id:
                return header, body

    async def init(self, token: str) -> dict[str, Any]:
        frame_id = await self.send({"method": "init", "token": token, "capabilities": []})
        header, _ = await self.reply_to(frame_id)
        return header

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        payload = b"" if body is None else orjson.dumps(body)
        frame_id = await self.send(
            {
                "method": "message",
                "active_grant": "data_sync",
                "payload_type": "application/json",
                "http_request": {
                    "host": "127.0.0.1",
                    "path": path,
                    "method": method,
                    "params": {},
                    "headers": headers or {},
                },
            },
            payload,
        )
        header, reply = await self.reply_to(frame_id)
        assert header["status"]["code"] == 200, header
        return header["http_status"]["code"], reply

    async def closed_with(self) -> int:
        """Read until the server's `close`; its status code (the socket then closes)."""
        while True:
            header, _ = await self.recv()
            if header["method"] == "close":
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(self.ws.recv(), 5)
                code: int = header["status"]["code"]
                return code


@pytest.fixture
async def twilsock(server: ServerProcess) -> AsyncIterator[RawTwilsock]:
    async with connect(f"ws://127.0.0.1:{server.port}/v3/wsconnect", compression=None) as ws:
        yield RawTwilsock(ws)


async def test_init_and_a_carried_request(server: ServerProcess, twilsock: RawTwilsock) -> None:
    reply = await twilsock.init(server.token("alice"))
    assert reply["status"]["code"] == 200 and "offline_storage" not in reply
    assert reply["capabilities"] == ["client_update"] and reply["continuation_token"]
    name = f"tw-{uuid.uuid4().hex}"
    status, doc = await twilsock.request(
        "POST", "/v3/Documents", {"unique_name": name, "data": {"a": 1}}
    )
    assert status == 201 and doc["data"] == {"a": 1} and doc["last_event_id"] == 0
    assert doc["url"] == f"http://127.0.0.1/v3/Documents/{doc['sid']}"
    status, err = await twilsock.request("GET", "/v3/Documents/no-such-doc")
    assert (status, err["code"], err["status"]) == (404, 54100, 404)
    # DELETE carries the SDK's stray "data_sync" body: ignored.
    frame_id = await twilsock.send(
        {
            "method": "message",
            "payload_type": "application/json",
            "http_request": {"path": doc["url"].split("127.0.0.1")[1], "method": "DELETE"},
        },
        b"data_sync",
    )
    header, _ = await twilsock.reply_to(frame_id)
    assert header["http_status"]["code"] == 204
    assert (await twilsock.request("GET", f"/v3/Documents/{name}"))[0] == 404


async def test_a_write_is_answered_before_its_own_event(
    server: ServerProcess, twilsock: RawTwilsock
) -> None:
    await twilsock.init(server.token("alice"))
    _, doc = await twilsock.request("POST", "/v3/Documents", {"data": {}})
    frame_id = await twilsock.send(
        {
            "method": "message",
            "payload_type": "application/json",
            "http_request": {"path": "/v4/Subscriptions", "method": "POST"},
        },
        orjson.dumps(
            {
                "action": "establish",
                "correlation_id": 1796014914466,
                "requests": [
                    {"object_sid": doc["sid"], "object_type": "document", "last_event_id": 0}
                ],
            }
        ),
    )
    header, accepted = await twilsock.reply_to(frame_id)
    assert header["http_status"]["code"] == 202 and accepted["estimated_delivery_in_ms"] > 0
    header, established = await twilsock.recv()
    assert header["method"] == "notification" and header["message_type"] == "twilio.sync.event"
    assert established["event_type"] == "subscription_established"
    assert established["correlation_id"] == 1796014914466
    assert established["events"][0]["replay_status"] == "completed"
    frame_id = await twilsock.send(
        {
            "method": "message",
            "payload_type": "application/json",
            "http_request": {"path": f"/v3/Documents/{doc['sid']}", "method": "POST"},
        },
        orjson.dumps({"data": {"v": 2}}),
    )
    first, _ = await twilsock.recv()
    assert (first["method"], first["id"]) == ("reply", frame_id), first
    second, event = await twilsock.recv()
    assert second["method"] == "notification" and event["event_type"] == "document_updated"
    assert (event["event"]["id"], event["event"]["document_data"]) == (1, {"v": 2})


async def test_a_bad_token_is_refused_with_its_code(
    server: ServerProcess, twilsock: RawTwilsock
) -> None:
    creds = server.credentials
    assert creds is not None
    forged = mint_token(
        account_sid=creds.account_sid,
        api_key_sid=creds.api_key_sid,
        api_secret="x" * 32,
        service_sid=creds.service_sid,
        identity="mallory",
    )
    reply = await twilsock.init(forged)
    assert reply["status"]["code"] == 401 and reply["status"]["errorCode"] == 20107


@pytest.mark.parametrize(
    "frame",
    [
        b"not twilsock at all",
        b"TWILSOCK V3.0 999\r\n{}\r\n",
        b"TWILSOCK V3.0 5\r\n{nope\r\n",
        encode({"method": "message", "id": "TM1", "http_request": {"path": "/", "method": "GET"}}),
    ],
    ids=["magic", "lying-size", "bad-json", "before-init"],
)
async def test_unreadable_frames_and_requests_before_init_close_with_406(
    server: ServerProcess, twilsock: RawTwilsock, frame: bytes
) -> None:
    await twilsock.ws.send(frame)
    assert await twilsock.closed_with() == 406


async def test_text_frames_unknown_methods_and_oversize_bodies(
    server: ServerProcess, twilsock: RawTwilsock
) -> None:
    await twilsock.init(server.token("alice"))
    frame_id = await twilsock.send({"method": "frobnicate"})
    header, _ = await twilsock.reply_to(frame_id)
    assert header["status"]["code"] == 400 and "frobnicate" in header["status"]["description"]
    status, err = await twilsock.request("POST", "/v3/Documents", {"data": {"x": "y" * 300_000}})
    assert (status, err["code"]) == (413, 51001)
    status, err = await twilsock.request("POST", "/v3/Documents", {"data": [1, 2]})
    assert (status, err["code"]) == (400, 51000)
    frame_id = await twilsock.send(
        {"method": "message", "http_request": {"path": "/v3/Documents", "method": "POST"}},
        b'{"data":{"x":NaN}}',
    )
    header, err = await twilsock.reply_to(frame_id)
    assert (header["http_status"]["code"], err["code"]) == (400, 54101)
    status, err = await twilsock.request("PUT", "/v3/Documents")
    assert (status, err["status"]) == (405, 405), err
    status, err = await twilsock.request("GET", "/v3/Nothing/here")
    assert (status, err["code"]) == (404, 20404)
    await twilsock.ws.send("a text frame")
    assert await twilsock.closed_with() == 406


# Hostile frames after a good init: the server answers or closes that connection, never
# crashes, and another client carries on.
hostile = st.one_of(
    st.binary(max_size=100),
    st.builds(
        lambda h, p: encode(h, p),
        st.dictionaries(
            st.sampled_from(["method", "id", "token", "http_request", "payload_type", "x"]),
            json_scalars
            | st.sampled_from(["init", "update", "message", "close", "reply", "telemetry.v1"])
            | st.fixed_dictionaries(
                {
                    "path": st.sampled_from(
                        ["/v3/Documents", "/v3/Lists/%zz", "/v4/Subscriptions", "/"]
                    ),
                    "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
                }
            ),
            max_size=5,
        ),
        st.binary(max_size=50) | st.just(b'{"data":{"a":1}}'),
    ),
)


async def test_fuzz_the_live_endpoint(make_server: Any) -> None:
    server: ServerProcess = make_server()
    loop = asyncio.get_running_loop()
    url = f"ws://127.0.0.1:{server.port}/v3/wsconnect"
    stats: dict[str, int] = {}

    async def one(frame: bytes) -> None:
        async with connect(url, compression=None, ping_interval=None) as ws:
            conn = RawTwilsock(ws)
            assert (await conn.init(server.token("fuzz")))["status"]["code"] == 200
            await ws.send(frame)
            try:
                header, _ = await conn.recv(timeout=3)
                outcome = f"{header['method']}:{header['status']['code']}"
            except ConnectionClosed:
                outcome = "closed"
            except TimeoutError:
                outcome = "silent"  # an ack or a close frame from the client: nothing to say
            stats[outcome] = stats.get(outcome, 0) + 1

    @seed(FUZZ_SEED)
    @settings(
        max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(hostile)
    def fuzz(frame: bytes) -> None:
        asyncio.run_coroutine_threadsafe(one(frame), loop).result(timeout=30)

    await asyncio.to_thread(fuzz)
    assert server.proc is not None and server.proc.poll() is None, "the server died"
    assert (
        stats.get("close:406", 0) > 0 and stats.get("reply:400", 0) + stats.get("reply:200", 0) > 0
    ), stats
    async with connect(url, compression=None) as ws:
        conn = RawTwilsock(ws)
        await conn.init(server.token("after"))
        assert (await conn.request("POST", "/v3/Documents", {"data": {"ok": True}}))[0] == 201


async def test_a_subscription_past_the_log_gets_the_current_state(make_server: Any) -> None:
    """The SDK has no snapshot: when the events it missed are no longer in the log, it gets
    every current item (as item updates with their own event ids), then the establishment."""
    server: ServerProcess = make_server(["--event-retention", "3"])
    async with connect(f"ws://127.0.0.1:{server.port}/v3/wsconnect", compression=None) as ws:
        client = RawTwilsock(ws)
        await client.init(server.token("alice"))
        _, lst = await client.request("POST", "/v3/Lists", {"unique_name": "past"})
        for n in range(8):
            status, _ = await client.request(
                "POST", f"/v3/Lists/{lst['sid']}/Items", {"data": {"n": n}}
            )
            assert status == 201
        await client.request("DELETE", f"/v3/Lists/{lst['sid']}/Items/0")  # event 9
        body = {
            "action": "establish",
            "correlation_id": 7,
            "requests": [{"object_sid": lst["sid"], "object_type": "list", "last_event_id": 1}],
        }
        await client.request("POST", "/v4/Subscriptions", body)
        seen: list[dict[str, Any]] = []
        while True:
            header, payload = await client.recv()
            assert header["method"] == "notification", header
            if payload["event_type"] == "subscription_established":
                break
            seen.append(payload)
    assert {p["event_type"] for p in seen} == {"list_item_updated"}
    events = [p["event"] for p in seen]
    assert [e["item_index"] for e in events] == list(range(1, 8))  # item 0 is gone
    assert [e["item_data"] for e in events] == [{"n": n} for n in range(1, 8)]
    assert [e["id"] for e in events] == list(range(2, 9))  # each item's own last event
    assert payload["events"][0]["last_event_id"] == 9


async def test_a_draining_node_answers_then_offloads_with_308(fresh_server: ServerProcess) -> None:
    """SIGTERM with a request in flight: its reply comes first, then `close` 308 (the SDK's
    "reconnect elsewhere") and the WebSocket closes with 1012."""
    url = f"ws://127.0.0.1:{fresh_server.port}/v3/wsconnect"
    async with connect(url, compression=None) as ws:
        twilsock = RawTwilsock(ws)
        await twilsock.init(fresh_server.token("alice"))
        frame_id = await twilsock.send(
            {
                "method": "message",
                "payload_type": "application/json",
                "http_request": {"path": "/v3/Documents", "method": "POST"},
            },
            orjson.dumps({"unique_name": f"tw-{uuid.uuid4().hex}"}),
        )
        assert fresh_server.proc is not None
        fresh_server.proc.send_signal(signal.SIGTERM)
        header, doc = await twilsock.reply_to(frame_id)
        assert header["http_status"]["code"] == 201 and doc["sid"].startswith("ET")
        header, _ = await twilsock.recv()
        assert (header["method"], header["status"]["code"]) == ("close", 308)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    assert await asyncio.to_thread(fresh_server.proc.wait, 10) == 0
