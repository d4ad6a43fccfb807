"""Hostile clients against a real server on 127.0.0.1: each attack is bounded in time and
count, and each asserts the limit or the typed refusal that stops it. (Identity swaps on a
live connection: tests/test_e2e_documents.py and tests/test_session.py; tokens that name a
service by its unique name: tests/test_tokens.py.)"""

from __future__ import annotations

import asyncio
import base64
import uuid

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
