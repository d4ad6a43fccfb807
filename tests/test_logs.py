"""The server's logs as an operator reads them: JSON lines with the fields a pipeline
indexes, an access line per REST request, and no token, secret or password anywhere."""

from __future__ import annotations

import asyncio
import logging

import httpx
import orjson
from websockets.asyncio.client import connect

from sync_server.logs import JsonFormatter, TextFormatter, redact
from tests.conftest import ServerFactory


async def test_json_logs_with_access_lines_and_no_secrets(make_server: ServerFactory) -> None:
    server = make_server(["--log-format", "json", "--log-level", "info"], log=True)
    creds = server.credentials
    assert creds is not None
    token = server.token("alice")
    async with httpx.AsyncClient(auth=(creds.api_key_sid, creds.api_secret)) as http:
        assert (await http.get(f"{server.url}/v1/Services", timeout=10)).status_code == 200
        bad = await http.get(f"{server.url}/v1/Services/ISnope", timeout=10)
        assert bad.status_code == 404
    async with connect(f"ws://127.0.0.1:{server.port}/v1/realtime") as ws:
        hello = {"id": 1, "type": "hello", "token": token, "client_id": "c"}
        await ws.send(orjson.dumps(hello).decode())
        await asyncio.wait_for(ws.recv(), 5)
        # A client that echoes a token back in a bad frame still does not get it logged.
        await ws.send(b'{"id":2,"type":"ping","x":"' + token.encode() + b'\xff"}', text=True)
    await asyncio.sleep(0.3)
    lines = [line for line in server.log().splitlines() if line.strip()]
    entries = [orjson.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries), lines
    access = [e for e in entries if e["logger"] == "sync_server.access"]
    by_path = {(e["method"], e["path"]): e for e in access}
    assert by_path[("GET", "/v1/Services")]["status"] == 200
    assert by_path[("GET", "/v1/Services/ISnope")]["status"] == 404
    assert all(isinstance(e["duration_ms"], float | int) for e in access)
    text = server.log()
    for secret in (token, creds.api_secret, creds.auth_token, token.split(".")[2]):
        assert secret not in text


def test_both_formats_mask_a_token_that_reaches_a_message() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    record = logging.LogRecord("t", logging.WARNING, "f", 1, "bad frame %s", (token,), None)
    for formatter in (JsonFormatter(), TextFormatter()):
        out = formatter.format(record)
        assert "c2lnbmF0dXJl" not in out and "[token]" in out
    assert redact("no token here") == "no token here"
