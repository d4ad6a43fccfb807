"""Test harness: a real `sync-server` subprocess on 127.0.0.1 (random port, temp data dir)
and real SDK clients talking to it over real sockets."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync_sdk import Client, ClientOptions, ConnectionState
from sync_server.credentials import Credentials, load_credentials
from sync_server.tokens import mint_token
from tests import services

# Every test that runs a server runs against each configuration: "embedded" (SQLite file,
# in-process fan-out) and "cluster" (PostgreSQL storage, Redis fan-out; see tests/services.py).
BACKENDS = ["embedded", "cluster"]


@dataclass
class ServerProcess:
    """A sync-server child process; `restart()` keeps its data (dir or database).
    `node()` makes another node of the same cluster (cluster backend only)."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    backend: str = "embedded"
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    credentials: Credentials | None = None
    database_url: str | None = None
    redis_prefix: str | None = None
    owns_database: bool = False
    log_path: Path | None = None  # where the server's log goes (None: this process's stderr)
    ca_path: Path | None = None  # the CA of a server started with --tls-cert (https, wss)

    def __post_init__(self) -> None:
        if self.backend == "cluster" and self.database_url is None:
            services.require("postgres", "redis")
            self.database_url = services.create_database()
            self.redis_prefix = services.channel_prefix()
            self.owns_database = True

    def node(self, extra_args: list[str] | None = None) -> ServerProcess:
        """Another node sharing this one's credentials, database and Redis channels."""
        assert self.backend == "cluster", "only the cluster backend has several nodes"
        return ServerProcess(
            self.data_dir,
            self.extra_args if extra_args is None else extra_args,
            backend=self.backend,
            database_url=self.database_url,
            redis_prefix=self.redis_prefix,
        )

    def backend_args(self) -> list[str]:
        if self.backend == "embedded":
            return []
        assert self.database_url is not None and self.redis_prefix is not None
        return [
            "--storage",
            "postgres",
            "--database-url",
            self.database_url,
            "--database-pool-size",
            "4",
            "--broker",
            "redis",
            "--redis-url",
            services.REDIS_URL,
            "--redis-prefix",
            self.redis_prefix,
        ]

    @property
    def url(self) -> str:
        scheme = "http" if self.ca_path is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def command(self, port: int | None = None) -> list[str]:
        """The command line that starts this server (on `port`, default its own)."""
        return [
            sys.executable,
            "-m",
            "sync_server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port if port is None else port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
            *self.backend_args(),
            *self.extra_args,
        ]

    @staticmethod
    def environment() -> dict[str, str]:
        """This process's environment without the SYNC_ credentials (the server's own)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for var in (
            "SYNC_ACCOUNT_SID",
            "SYNC_API_KEY",
            "SYNC_API_SECRET",
            "SYNC_AUTH_TOKEN",
            "SYNC_SERVICE_SID",
        ):
            env.pop(var, None)
        return env

    def start(self) -> None:
        cmd = self.command()
        env = self.environment()
        log = None if self.log_path is None else self.log_path.open("a")
        try:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env
            )
        finally:
            if log is not None:
                log.close()
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"sync-server exited early with {self.proc.wait()}")
            m = re.search(r"listening on https?://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("sync-server did not start in 30 s")
        while time.monotonic() < deadline:
            try:
                verify: ssl.SSLContext | bool = True
                if self.ca_path is not None:
                    verify = ssl.create_default_context(cafile=str(self.ca_path))
                if httpx.get(self.url + "/healthz", timeout=1, verify=verify).status_code == 200:
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

    def destroy(self) -> None:
        """Stop, and drop the database this server created."""
        self.stop()
        if self.owns_database and self.database_url is not None:
            services.drop_database(self.database_url)
            self.owns_database = False

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def log(self) -> str:
        """What the server has logged so far (a server started with `log_path`)."""
        assert self.log_path is not None, "start the server with log_path to read its log"
        return self.log_path.read_text()

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

    def options(self, **options: object) -> ClientOptions:
        """ClientOptions for this server, with quick reconnects; `options` override."""
        opts = {
            "url": self.url,
            "log_level": "warn",
            "reconnect_initial_delay": 0.05,
            "reconnect_max_delay": 0.5,
            **options,
        }
        return ClientOptions(**opts)  # type: ignore[arg-type]

    def client(self, identity: str = "alice", **options: object) -> Client:
        return Client(self.token(identity), self.options(**options))


async def wait_for_state(client: Client, state: ConnectionState, timeout: float = 10.0) -> float:
    """Wait until `client` is in `state`; returns how long that took."""
    start = time.monotonic()
    while client.connection_state is not state:
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"still {client.connection_state} after {timeout}s, wanted {state}"
            )
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def next_event(queue: asyncio.Queue[Any], timeout: float = 5.0) -> Any:
    """The next item a handler put on `queue`, failing after `timeout` seconds."""
    return await asyncio.wait_for(queue.get(), timeout)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("sync-data"), backend=backend)
    srv.start()
    yield srv
    srv.destroy()


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def make_server(tmp_path: Path, backend: str) -> Iterator[ServerFactory]:
    """`make_server(extra_args=[...], log=True)`: a started server of its own, on this test's
    backend (with `log`, its log is kept for `ServerProcess.log()`); stopped (and its
    database dropped) after the test."""
    made: list[ServerProcess] = []

    def make(extra_args: list[str] | None = None, *, log: bool = False) -> ServerProcess:
        data_dir = tmp_path / f"data{len(made)}"
        log_path = tmp_path / f"server{len(made)}.log" if log else None
        srv = ServerProcess(data_dir, extra_args or [], backend=backend, log_path=log_path)
        made.append(srv)
        srv.start()
        return srv

    yield make
    for srv in made:
        srv.destroy()


@pytest.fixture
def fresh_server(make_server: ServerFactory) -> ServerProcess:
    """A server of its own, for tests that restart or kill it."""
    return make_server()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for service, reason in sorted(services.SKIPPED.items()):
        terminalreporter.write_line(
            f"SKIPPED the {service} suites (cluster backend): {reason}. "
            "Set SYNC_TEST_REQUIRE_SERVICES=1 to make this a failure.",
            yellow=True,
        )


@pytest.fixture
async def alice(server: ServerProcess) -> AsyncIterator[Client]:
    async with server.client("alice") as client:
        yield client


@pytest.fixture
async def bob(server: ServerProcess) -> AsyncIterator[Client]:
    async with server.client("bob") as client:
        yield client
