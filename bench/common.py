"""Shared helpers: statistics, /proc readings, server subprocesses, payloads, event loops."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

T = TypeVar("T")

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


# ---- event loop -------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop when it is installed (as the server does), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE to the hard limit (children inherit it); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of unsorted `values` (q in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary_us(latencies_ns: Sequence[int]) -> dict[str, float]:
    """p50 / p99 / mean / max in microseconds, and the sample count."""
    if not latencies_ns:
        nan = float("nan")
        return {"p50_us": nan, "p99_us": nan, "mean_us": nan, "max_us": nan, "n": 0}
    data = sorted(latencies_ns)
    return {
        "p50_us": round(percentile(data, 50) / 1000, 1),
        "p99_us": round(percentile(data, 99) / 1000, 1),
        "mean_us": round(sum(data) / len(data) / 1000, 1),
        "max_us": round(data[-1] / 1000, 1),
        "n": len(data),
    }


def ratio(a: float, b: float) -> float:
    if not b or b != b or a != a:
        return float("nan")
    return round(a / b, 3)


# ---- /proc ------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` (VmRSS) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid`, in seconds (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is fields[0]; utime and stime are stat fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---- payloads ---------------------------------------------------------------------------


def fake_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The shape of our `message_published` event frame, so that the baselines deliver frames of
    the same size and structure as ours (`message.data` carries the timestamp)."""

    stream_sid: str = field(default_factory=lambda: fake_sid("TO"))
    origin: str = field(default_factory=lambda: secrets.token_hex(16))

    def frame(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "event",
            "sid": self.stream_sid,
            "kind": "stream",
            "name": "message_published",
            "event_id": None,
            "origin": self.origin,
            "message": {"sid": fake_sid("TZ"), "data": data},
        }


def message_data(run: int, seq: int, pad: str) -> dict[str, Any]:
    """The application payload of a fan-out message; `t` is the wall-clock send time (ns)."""
    return {"r": run, "seq": seq, "t": time.time_ns(), "pad": pad}


def item_set_request(sid: str, data: dict[str, Any]) -> bytes:
    """The `item_set` frame of a map write to key "k", as the SDK sends it."""
    return orjson.dumps(
        {
            "sid": sid,
            "data": data,
            "merge": False,
            "ttl": None,
            "if_match": None,
            "if_absent": False,
            "key": "k",
            "id": 123456,
            "type": "item_set",
        }
    )


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# ---- server subprocesses ----------------------------------------------------------------


@dataclass
class ServerProc:
    """A server child process that prints `listening on http://127.0.0.1:PORT`."""

    name: str
    cmd: list[str]
    health_path: str | None = None
    port: int = 0
    proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name} exited early with {self.proc.wait()}")
            m = _LISTENING.search(line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            self.stop()
            raise RuntimeError(f"{self.name} did not start in {timeout} s")
        if self.health_path is not None:
            while time.monotonic() < deadline:
                try:
                    if httpx.get(self.http_url + self.health_path, timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            else:
                self.stop()
                raise RuntimeError(f"{self.name} not healthy in {timeout} s")
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def our_server(data_dir: Path, extra_args: Sequence[str] = ()) -> ServerProc:
    return ServerProc(
        "ours",
        [
            os.environ.get("SYNC_BENCH_SERVER_PYTHON") or sys.executable,
            "-m",
            "sync_server",
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
            "--write-rate",
            "0",
            "--create-rate",
            "0",
            *extra_args,
        ],
        health_path="/healthz",
    )


def baseline_server(kind: str) -> ServerProc:
    """`raw` (websockets echo / relay / broadcast) or `socketio` (AsyncServer on uvicorn)."""
    return ServerProc(kind, [sys.executable, "-m", "bench.baselines", kind, "--port", "0"])
