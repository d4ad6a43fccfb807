"""PostgreSQL and Redis for the distributed configuration's tests.

Addresses come from SYNC_TEST_DATABASE_URL / SYNC_TEST_REDIS_URL (defaults: the local
services on 127.0.0.1). When a service cannot be reached its suites are skipped with the
reason, unless SYNC_TEST_REQUIRE_SERVICES=1 (set by .ci/run), which makes them fail instead.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

T = TypeVar("T")

DATABASE_URL = os.environ.get(
    "SYNC_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("SYNC_TEST_REQUIRE_SERVICES") == "1"

# Why a suite was skipped, reported at the end of the run (see conftest.pytest_terminal_summary).
SKIPPED: dict[str, str] = {}


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also from code already inside an event loop (a test
    calling a sync helper): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _postgres_problem() -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(DATABASE_URL, timeout=3)
    except Exception as exc:
        return f"PostgreSQL at {DATABASE_URL} cannot be reached: {exc!r}"
    await conn.close()
    return None


async def _redis_problem() -> str | None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} cannot be reached: {exc!r}"
    finally:
        await client.aclose()
    return None


@functools.cache
def problem(service: str) -> str | None:
    """Why `service` ("postgres" or "redis") cannot be used, or None when it can."""
    check = {"postgres": _postgres_problem, "redis": _redis_problem}[service]
    try:
        return _run(check())
    except ImportError as exc:
        return f"the cluster extra is not installed ({exc}); pip install 'sync-sdk[cluster]'"


def require(*services: str) -> None:
    """Skip (or, under SYNC_TEST_REQUIRE_SERVICES=1, fail) unless every service is reachable."""
    for service in services:
        reason = problem(service)
        if reason is None:
            continue
        if REQUIRED:
            pytest.fail(f"{reason} (SYNC_TEST_REQUIRE_SERVICES=1)", pytrace=False)
        SKIPPED[service] = reason
        pytest.skip(reason)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> str:
    """A new empty database; returns its URL. Drop it with `drop_database`."""
    require("postgres")
    name = "sync_test_" + uuid.uuid4().hex[:16]
    _run(_admin(f'CREATE DATABASE "{name}"'))
    return _with_database(DATABASE_URL, name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.startswith("sync_test_"), name
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def channel_prefix() -> str:
    """A Redis channel prefix of its own, so concurrent test clusters never hear each other."""
    return "synctest-" + uuid.uuid4().hex[:12]


REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def _redis_up() -> bool:
    return _run(_redis_problem()) is None


def restart_redis(downtime: float) -> None:
    """Shut the local Redis down (every connection drops, every pub/sub message in flight is
    lost), keep it down `downtime` seconds, start it again the way this machine starts it."""
    import shutil
    import subprocess
    import time

    if urlsplit(REDIS_URL).port not in (None, 6379) or shutil.which("redis-server") is None:
        pytest.skip("restarting Redis needs the local redis-server on 127.0.0.1:6379")
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, timeout=10)
    deadline = time.monotonic() + 10
    while _redis_up():
        assert time.monotonic() < deadline, "Redis did not shut down"
        time.sleep(0.05)
    time.sleep(downtime)
    subprocess.run(REDIS_START, check=True, timeout=10)
    deadline = time.monotonic() + 10
    while not _redis_up():
        assert time.monotonic() < deadline, "Redis did not come back"
        time.sleep(0.05)
