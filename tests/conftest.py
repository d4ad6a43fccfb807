"""Test harness: a real `sync-server` subprocess on 127.0.0.1 (random port, temp data dir)
and real SDK clients talking to it over real sockets."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_sdk import Client, ClientOptions
from sync_server.credentials import Credentials, load_credentials
from sync_server.tokens import mint_token


@dataclass
class ServerProcess:
    """A sync-server child process; `restart()` keeps the data dir."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    credentials: Credentials | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "sync_server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for var in (
            "SYNC_ACCOUNT_SID",
            "SYNC_API_KEY",
            "SYNC_API_SECRET",
            "SYNC_AUTH_TOKEN",
            "SYNC_SERVICE_SID",
        ):
            env.pop(var, None)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"sync-server exited early with {self.proc.wait()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("sync-server did not start in 30 s")
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        self.credentials = load_credentials(self.data_dir)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def token(self, identity: str = "alice", ttl: int = 3600) -> str:
        c = self.credentials
        assert c is not None
        return mint_token(
            account_sid=c.account_sid,
            api_key_sid=c.api_key_sid,
            api_secret=c.api_secret,
            service_sid=c.service_sid,
            identity=identity,
            ttl=ttl,
        )

    def client(self, identity: str = "alice", **options: object) -> Client:
        opts = {
            "url": self.url,
            "log_level": "warn",
            "reconnect_initial_delay": 0.05,
            "reconnect_max_delay": 0.5,
            **options,
        }
        return Client(self.token(identity), ClientOptions(**opts))  # type: ignore[arg-type]


async def next_event(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    """The next item a handler put on `queue`, failing after `timeout` seconds."""
    return await asyncio.wait_for(queue.get(), timeout)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("sync-data"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own, for tests that restart or kill it."""
    srv = ServerProcess(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def alice(server: ServerProcess) -> AsyncIterator[Client]:
    async with server.client("alice") as client:
        yield client


@pytest.fixture
async def bob(server: ServerProcess) -> AsyncIterator[Client]:
    async with server.client("bob") as client:
        yield client
