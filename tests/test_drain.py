"""Graceful drain: SIGTERM makes a node stop accepting connections, say 503 on /readyz,
answer the requests it has taken, close its realtime connections with 1012 and exit 0
within --drain-timeout; SDK clients move on at once and see no error at all."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from sync_sdk import CommandTimeoutError, ConnectionState
from tests.conftest import ServerFactory, ServerProcess, wait_for_state
from tests.test_chaos import Actor, all_items, converge_and_check


async def sigterm(node: ServerProcess, within: float) -> tuple[int | None, float]:
    """SIGTERM `node` and wait (without blocking the clients) for it to exit: (exit code,
    seconds taken); the code is None if it was still running after `within` + 5 s."""
    proc = node.proc
    assert proc is not None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(proc.wait, within + 5)
    took = time.monotonic() - started
    code = proc.poll()
    node.stop()  # tidy up
    return code, took


async def push_in_flight(actor: Actor, stop: asyncio.Event, window: int = 8) -> list[str]:
    """Push to the actor's list with `window` pushes in flight at all times (so that some
    are in flight when the node drains); returns the ids of the acknowledged pushes."""
    acked: list[str] = []
    count = 0

    async def pusher(lane: int) -> None:
        nonlocal count
        while not stop.is_set():
            count += 1
            push_id = f"{actor.n}.{lane}.{count}"
            await actor.lst.push({"push": push_id})
            acked.append(push_id)

    await asyncio.gather(*(pusher(lane) for lane in range(window)))
    return acked


async def assert_each_push_once(actors: list[Actor], acked: list[str]) -> None:
    """Every acknowledged push is stored, and none twice (a push sent again after a 1012
    would have been, had the node not answered everything it read before closing)."""
    items = (await all_items(actors[0].lst)).values()
    stored = [i["push"] for i in items if isinstance(i, dict) and "push" in i]
    assert len(stored) == len(set(stored)), "a push was applied twice"
    assert sorted(stored) == sorted(acked), "an acknowledged push is missing"


def assert_no_errors(actors: list[Actor]) -> None:
    for a in actors:
        assert (a.unknown, a.not_applied) == (0, 0), (
            f"client {a.n}: {a.unknown} outcome-unknown and {a.not_applied} not-sent writes"
        )


async def test_draining_a_node_loses_nothing_and_no_client_sees_an_error(
    tmp_path: Path,
) -> None:
    """Two nodes (PostgreSQL + Redis). Writers given urls=[A, B] start on A, another on B;
    A gets SIGTERM mid-run: A exits 0 in time, every writer goes on without a single error,
    every acknowledged write is stored and every client saw every event once, in order."""
    a = ServerProcess(tmp_path / "data", ["--write-rate", "0"], backend="cluster")
    a.start()
    b = a.node()
    b.start()
    actors = [
        Actor(i, a.client(f"writer{i}", urls=order, command_timeout=5.0))
        for i, order in enumerate([[a.url, b.url], [a.url, b.url], [b.url, a.url]])
    ]
    try:
        for actor in actors:
            await actor.client.connect()
            await actor.open()
        stop = asyncio.Event()
        writers = [asyncio.create_task(actor.write_forever(stop)) for actor in actors]
        pushers = [asyncio.create_task(push_in_flight(actor, stop)) for actor in actors]
        await asyncio.sleep(1.5)
        before = sum(actor.acked for actor in actors)
        code, took = await sigterm(a, within=10)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*writers)
        pushed = [push_id for ids in await asyncio.gather(*pushers) for push_id in ids]
        assert code == 0 and took < 10, f"exit {code} after {took:.1f}s"
        await assert_each_push_once(actors, pushed)
        assert sum(actor.acked for actor in actors) > before + 50  # writing went on
        for actor in actors:
            assert actor.client.server_url == b.url
        assert_no_errors(actors)
        checked = await converge_and_check(actors, b.client("referee"))
        assert checked > 100
    finally:
        for actor in actors:
            await actor.client.shutdown()
        b.stop()
        a.destroy()


async def test_restarting_the_only_node_loses_nothing(make_server: ServerFactory) -> None:
    """One node: SIGTERM, restart on the same data; writers wait for it, see no error and
    lose nothing."""
    srv = make_server(["--write-rate", "0"])
    actors = [Actor(i, srv.client(f"writer{i}", command_timeout=15.0)) for i in range(2)]
    try:
        for actor in actors:
            await actor.client.connect()
            await actor.open()
        stop = asyncio.Event()
        writers = [asyncio.create_task(actor.write_forever(stop)) for actor in actors]
        await asyncio.sleep(1.0)
        code, took = await sigterm(srv, within=10)
        assert code == 0 and took < 10, f"exit {code} after {took:.1f}s"
        before = sum(actor.acked for actor in actors)
        srv.start()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*writers)
        assert sum(actor.acked for actor in actors) > before + 20
        assert_no_errors(actors)
        assert await converge_and_check(actors, srv.client("referee")) > 50
    finally:
        for actor in actors:
            await actor.client.shutdown()


def test_a_second_server_on_the_same_data_dir_is_refused_in_one_line(tmp_path: Path) -> None:
    """The embedded server holds its SQLite file to itself: a second one on the same data
    directory exits at once with one clear line (no traceback, never "listening"), and the
    first goes on serving."""
    first = ServerProcess(tmp_path / "data")
    first.start()
    try:
        second = subprocess.run(
            first.command(port=0),
            capture_output=True,
            text=True,
            timeout=60,
            env=ServerProcess.environment(),
        )
        assert second.returncode == 1
        assert "is in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
        assert "listening on" not in second.stdout
        assert httpx.get(first.url + "/healthz", timeout=5).status_code == 200
    finally:
        first.stop()


async def test_a_drain_answers_a_slow_request_and_says_503_meanwhile(tmp_path: Path) -> None:
    """A write blocked on a row lock is answered during the drain (no error for its
    client); meanwhile /readyz says 503 "draining" and new connections are refused."""
    srv = ServerProcess(tmp_path / "data", ["--write-rate", "0"], backend="cluster")
    srv.start()
    client = srv.client("alice", command_timeout=20.0)
    try:
        await client.connect()
        doc = await client.document("locked")
        await doc.set({"v": 1})
        assert srv.database_url is not None
        db = await asyncpg.connect(srv.database_url)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            assert (await http.get("/readyz")).status_code == 200  # a kept-alive connection
            lock = db.transaction()
            await lock.start()
            await db.execute("SELECT 1 FROM objects WHERE sid = $1 FOR UPDATE", doc.sid)
            write = asyncio.create_task(doc.set({"v": 2}))
            await asyncio.sleep(0.3)
            assert not write.done()
            assert srv.proc is not None
            srv.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (503, "draining")
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient(base_url=srv.url) as fresh:
                    await fresh.get("/healthz")
            assert srv.proc.poll() is None  # still draining: the write is not answered yet
            await lock.rollback()
            await write  # answered, not failed
        assert doc.data == {"v": 2}
        assert srv.proc.wait(10) == 0
        await db.close()
    finally:
        await client.shutdown()
        srv.destroy()


async def test_a_drain_that_runs_out_of_time_cuts_and_says_so(tmp_path: Path) -> None:
    """A request still running at --drain-timeout: the node exits 0 on time and its client
    is told the outcome is unknown (CommandTimeoutError), never that it was not applied."""
    srv = ServerProcess(
        tmp_path / "data", ["--write-rate", "0", "--drain-timeout", "1"], backend="cluster"
    )
    srv.start()
    client = srv.client("alice", command_timeout=20.0)
    try:
        await client.connect()
        doc = await client.document("stuck")
        assert srv.database_url is not None
        db = await asyncpg.connect(srv.database_url)
        lock = db.transaction()
        await lock.start()
        await db.execute("SELECT 1 FROM objects WHERE sid = $1 FOR UPDATE", doc.sid)
        write = asyncio.create_task(doc.set({"v": 2}))
        await asyncio.sleep(0.3)
        code, took = await sigterm(srv, within=1)
        assert code == 0 and took < 3, f"exit {code} after {took:.1f}s"
        with pytest.raises(CommandTimeoutError):
            await write
        await lock.rollback()
        await db.close()
        await wait_for_state(client, ConnectionState.CONNECTING, 5)
    finally:
        await client.shutdown()
        srv.destroy()
