"""Hostile clients against a real server on 127.0.0.1: each attack is bounded in time and
count, and each asserts the limit or the typed refusal that stops it. (Identity swaps on a
live connection: tests/test_e2e_documents.py and tests/test_session.py; tokens that name a
service by its unique name: tests/test_tokens.py.)"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sync_server.tokens import mint_token
from tests.conftest import ServerProcess


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def api(server: ServerProcess) -> httpx.Client:
    creds = server.credentials
    assert creds is not None
    return httpx.Client(
        base_url=f"{server.url}/v1/Services/{creds.service_sid}",
        auth=(creds.api_key_sid, creds.api_secret),
        timeout=10,
    )


def test_a_non_ascii_basic_password_is_a_401(server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    for password in ("pässwörd", "😀", creds.api_secret + "é"):
        response = httpx.get(
            f"{server.url}/v1/Services",
            headers={"Authorization": basic(creds.api_key_sid, password)},
            timeout=10,
        )
        assert response.status_code == 401, response.text
        assert response.json()["code"] == 20003


@pytest.mark.parametrize("ttl", ["１２", "1_0", " 7", "0x10", "12.0", "٣"])
def test_form_numbers_take_ascii_digits_only(api: httpx.Client, ttl: str) -> None:
    response = api.post("/Documents", data={"Ttl": ttl})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 54011


@pytest.mark.parametrize("body", ["Data=%7B%7D&Ttl=%zz", "Data=%7B%7D&UniqueName=%ff%fe", "Ttl=1%"])
def test_bad_percent_escapes_are_a_400_not_repaired(api: httpx.Client, body: str) -> None:
    response = api.post(
        "/Documents",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 51000


def test_an_oversize_request_body_is_a_413_before_it_is_read(api: httpx.Client) -> None:
    big = b"Data=" + b"x" * (1024 * 1024 + 10)
    response = api.post(
        "/Documents", content=big, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == 51001
    # Streamed without a Content-Length: cut off at the limit all the same.
    response = api.post(
        "/Documents",
        content=iter([b"Data=", b"x" * 700_000, b"x" * 700_000]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413, response.text


def test_unique_names_with_a_slash_are_refused(api: httpx.Client, server: ServerProcess) -> None:
    name = f"a/b-{uuid.uuid4().hex[:6]}"
    response = api.post("/Documents", data={"UniqueName": name})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 54302


def test_healthz_names_nothing_of_the_deployment(server: ServerProcess) -> None:
    creds = server.credentials
    assert creds is not None
    response = httpx.get(f"{server.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert set(response.json()) == {"status", "version"}
    assert creds.service_sid not in response.text and creds.account_sid not in response.text


async def test_deleting_a_service_closes_its_connections_and_refuses_new_ones(
    server: ServerProcess,
) -> None:
    creds = server.credentials
    assert creds is not None
    admin = httpx.AsyncClient(auth=(creds.api_key_sid, creds.api_secret), timeout=10)
    created = await admin.post(f"{server.url}/v1/Services", data={"FriendlyName": "doomed"})
    service_sid = created.json()["sid"]
    token = mint_token(
        account_sid=creds.account_sid,
        api_key_sid=creds.api_key_sid,
        api_secret=creds.api_secret,
        service_sid=service_sid,
        identity="alice",
    )
    url = f"ws://127.0.0.1:{server.port}/v1/realtime"
    async with connect(url, compression=None) as ws:
        await ws.send(
            orjson.dumps({"id": 1, "type": "hello", "token": token, "client_id": "c"}).decode()
        )
        assert "result" in orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(
            orjson.dumps({"id": 2, "type": "open", "kind": "document", "object_id": "d"}).decode()
        )
        assert "result" in orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (await admin.delete(f"{server.url}/v1/Services/{service_sid}")).status_code == 204
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (reply["id"], reply["error"]["code"]) == (None, 54050), reply
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    async with connect(url, compression=None) as ws:
        await ws.send(
            orjson.dumps({"id": 1, "type": "hello", "token": token, "client_id": "c"}).decode()
        )
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["error"]["code"] == 54050, reply
    # Nothing of the service is left to read.
    missing = await admin.get(f"{server.url}/v1/Services/{service_sid}/Documents/d")
    assert missing.status_code == 404
    await admin.aclose()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_reply_amplification_is_bounded_by_back_pressure(make_server: Any) -> None:
    """One connection asks for 1,500 pages of 1.6 MB and never reads: the server stops
    reading its requests (or drops it), memory stays bounded, other clients stay fast."""
    server: ServerProcess = make_server()
    assert server.proc is not None
    pid = server.proc.pid
    async with server.client("writer") as writer:
        lst = await writer.list(f"big-{uuid.uuid4().hex}")
        await asyncio.gather(*(lst.push({"pad": "x" * 16_000, "n": n}) for n in range(100)))
        list_sid = lst.sid
    url = f"ws://127.0.0.1:{server.port}/v1/realtime"
    baseline = rss_bytes(pid)
    peak = baseline
    pings: list[float] = []
    async with (
        connect(url, compression=None, max_queue=1, max_size=None, ping_interval=None) as attacker,
        connect(url, compression=None) as probe,
    ):
        await probe.send(
            orjson.dumps(
                {"id": 0, "type": "hello", "token": server.token("probe"), "client_id": "p"}
            ).decode()
        )
        assert "result" in orjson.loads(await asyncio.wait_for(probe.recv(), 5))
        await attacker.send(
            orjson.dumps(
                {"id": 0, "type": "hello", "token": server.token("mallory"), "client_id": "m"}
            ).decode()
        )
        request = {"type": "items_page", "sid": list_sid, "page_size": 100}
        frames = [orjson.dumps({**request, "id": n}).decode() for n in range(1, 1501)]

        async def flood() -> None:
            with contextlib.suppress(ConnectionClosed):
                for frame in frames:
                    await attacker.send(frame)

        flooding = asyncio.create_task(flood())
        deadline = asyncio.get_running_loop().time() + 8
        while asyncio.get_running_loop().time() < deadline:
            started = asyncio.get_running_loop().time()
            await probe.send(orjson.dumps({"id": len(pings) + 1, "type": "ping"}).decode())
            reply = orjson.loads(await asyncio.wait_for(probe.recv(), 5))
            assert "result" in reply, reply
            pings.append(asyncio.get_running_loop().time() - started)
            peak = max(peak, rss_bytes(pid))
            await asyncio.sleep(0.1)
        flooding.cancel()
    growth = (peak - baseline) / 2**20
    pings.sort()
    print(f"RSS growth {growth:.0f} MiB, probe ping p50 {pings[len(pings) // 2] * 1000:.1f} ms")
    assert growth <= 300, f"server RSS grew by {growth:.0f} MiB"
    assert pings[len(pings) // 2] <= 0.1, f"probe ping p50 {pings[len(pings) // 2] * 1000:.0f} ms"
    assert server.proc.poll() is None


async def native(server: ServerProcess, identity: str) -> Any:
    """A bare native connection that said hello as `identity`."""
    ws = await connect(f"ws://127.0.0.1:{server.port}/v1/realtime", compression=None)
    hello = {"id": 0, "type": "hello", "token": server.token(identity), "client_id": identity}
    await ws.send(orjson.dumps(hello).decode())
    assert "result" in orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    return ws


async def test_object_creation_is_rate_limited_per_identity(make_server: Any) -> None:
    server: ServerProcess = make_server(["--create-rate", "5", "--create-burst", "20"])
    ws = await native(server, "creator")
    codes = []
    for n in range(1, 41):
        request = {"id": n, "type": "open", "kind": "document", "mode": "create_new"}
        await ws.send(orjson.dumps(request).decode())
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        codes.append(reply["error"]["code"] if "error" in reply else 0)
    assert codes[:20] == [0] * 20, codes
    assert codes.count(54009) >= 15, codes  # a few may pass as the bucket refills
    # A second connection of the same identity shares the identity's budget...
    other = await native(server, "creator")
    await other.send(
        orjson.dumps({"id": 1, "type": "open", "kind": "map", "mode": "create_new"}).decode()
    )
    assert orjson.loads(await asyncio.wait_for(other.recv(), 5))["error"]["code"] == 54009
    # ...while another identity has its own, and opening existing objects is never limited.
    bystander = await native(server, "bystander")
    await bystander.send(
        orjson.dumps({"id": 1, "type": "open", "kind": "map", "object_id": "m"}).decode()
    )
    assert "result" in orjson.loads(await asyncio.wait_for(bystander.recv(), 5))
    for conn in (ws, other, bystander):
        await conn.close()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_refused_not_stored_as_null(
    server: ServerProcess, literal: str
) -> None:
    ws = await native(server, "alice")
    await ws.send(
        orjson.dumps(
            {"id": 1, "type": "open", "kind": "map", "object_id": f"nan-{uuid.uuid4().hex}"}
        ).decode()
    )
    sid = orjson.loads(await asyncio.wait_for(ws.recv(), 5))["result"]["sid"]
    prefix = '{"type":"item_set","sid":"' + sid + '","key":"k","id":'
    await ws.send(prefix + '2,"data":{"x":' + literal + "}}")
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert reply["error"]["code"] == 54101, reply
    await ws.send(prefix + '3,"data":{"x":"NaN Infinity"}}')
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert reply["result"]["data"] == {"x": "NaN Infinity"}, reply  # in a string: just text
    await ws.close()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the socket (fails after `seconds`)."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_idle_and_dribbling_sockets_are_closed(make_server: Any) -> None:
    server: ServerProcess = make_server(["--head-timeout", "1.5"])
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    drib_reader, drib_writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = asyncio.get_running_loop().time()

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                drib_writer.write(bytes([byte]))
                await drib_writer.drain()
                await asyncio.sleep(0.1)

    # A body promised and never sent, on a request the server waits to read.
    creds = server.credentials
    assert creds is not None
    body_reader, body_writer = await asyncio.open_connection("127.0.0.1", server.port)
    auth = basic(creds.api_key_sid, creds.api_secret).encode()
    body_writer.write(
        b"POST /v1/Services HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nab"
    )
    dribbling = asyncio.create_task(dribble())
    assert await closed_within(idle_reader, 5) == b""
    assert await closed_within(drib_reader, 5) == b""
    assert await closed_within(body_reader, 5) == b""
    assert asyncio.get_running_loop().time() - started < 4
    dribbling.cancel()
    for writer in (idle_writer, drib_writer, body_writer):
        writer.close()
    async with httpx.AsyncClient() as http:  # a real request is still served
        assert (await http.get(f"{server.url}/healthz", timeout=5)).status_code == 200


async def test_an_oversize_request_head_is_a_431(server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for _ in range(200):  # 200 KB of headers, never finished
        writer.write(b"X-Big: " + b"a" * 1000 + b"\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    try:
        answer = await closed_within(reader, 5)
    except (ConnectionResetError, BrokenPipeError):
        # Closed with our unread headers in its buffer: a TCP reset (seen on reading, or
        # on the writes still flushing).
        answer = b"reset"
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b"reset", answer[:100]
    writer.close()
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{server.url}/healthz", timeout=5)).status_code == 200


async def test_connections_past_the_cap_are_refused_with_a_503(make_server: Any) -> None:
    server: ServerProcess = make_server(["--max-connections", "20"])
    url = f"ws://127.0.0.1:{server.port}/v1/realtime"
    held = [await connect(url, compression=None) for _ in range(20)]
    async with httpx.AsyncClient() as http:
        refused = await http.get(f"{server.url}/healthz", timeout=5)
        assert refused.status_code == 503 and "too many connections" in refused.text
        for ws in held:
            await ws.close()
        await asyncio.sleep(0.2)
        assert (await http.get(f"{server.url}/healthz", timeout=5)).status_code == 200
