"""GET /metrics on a real server: scrape, drive known traffic through both realtime doors,
scrape again, and check the deltas."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from sync_server.twilsock_codec import decode, encode
from tests.conftest import ServerFactory, ServerProcess

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: ServerProcess, **kwargs: Any) -> Samples:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.url}/metrics", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def frame(ws: Any) -> bytes:
    data = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(data, bytes), data
    return data


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_what_happened(make_server: ServerFactory) -> None:
    server = make_server()
    before = await scrape(server)
    assert value(before, "process_resident_memory_bytes") > 0  # the library's collectors
    async with server.client("writer") as writer, server.client("reader") as reader:
        name = f"metrics-{uuid.uuid4().hex}"
        written = await writer.map(name)
        watched = await reader.map(name)
        got: asyncio.Queue[Any] = asyncio.Queue()
        watched.on("item_added", got.put_nowait)
        for n in range(5):
            await written.set(f"k{n}", {"n": n})
        for _ in range(5):
            await asyncio.wait_for(got.get(), 5)
        try:
            await writer.map(f"missing-{uuid.uuid4().hex}", mode="open_existing")
        except Exception as exc:
            assert getattr(exc, "code", None) == 54200
        # One Twilsock client, one carried request that fails.
        async with connect(f"ws://127.0.0.1:{server.port}/v3/wsconnect") as ws:
            await ws.send(encode({"method": "init", "id": "TM1", "token": server.token("tw")}))
            assert decode(await frame(ws)).header["status"]["code"] == 200
            request = {"path": "/v3/Documents/nope", "method": "GET", "host": "x"}
            await ws.send(encode({"method": "message", "id": "TM2", "http_request": request}))
            reply = decode(await frame(ws))
            assert orjson.loads(reply.payload)["code"] == 54100
            during = await scrape(server)
    after = await scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    assert delta("sync_requests_total", type="item_set", code="ok") == 5
    assert delta("sync_requests_total", type="open", code="54200") == 1
    assert delta("sync_requests_total", type="twilsock GET Documents", code="54100") == 1
    assert delta("sync_request_duration_seconds_count", type="item_set") == 5
    assert delta("sync_deliveries_total") >= 5  # the reader, and the writer's own subscription
    assert delta("sync_storage_commit_seconds_count") >= 6  # the map and its five items
    assert value(during, "sync_connections", protocol="native") == 2
    assert value(during, "sync_connections", protocol="twilsock") == 1
    assert value(during, "sync_subscriptions") >= 2
    for protocol in ("native", "twilsock"):  # every connection closed
        assert value(after, "sync_connections", protocol=protocol) == 0
    assert value(after, "sync_slow_consumer_disconnects_total") == 0
    assert ("sync_webhook_queue", ()) in after and ("sync_outbox_frames", ()) in after


async def test_metrics_can_require_the_rest_credentials(make_server: ServerFactory) -> None:
    server = make_server(["--metrics-auth"])
    async with httpx.AsyncClient() as http:
        refused = await http.get(f"{server.url}/metrics", timeout=10)
    assert refused.status_code == 401 and refused.json()["code"] == 20003
    creds = server.credentials
    assert creds is not None
    samples = await scrape(server, auth=(creds.api_key_sid, creds.api_secret))
    assert ("sync_subscriptions", ()) in samples
