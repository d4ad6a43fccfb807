"""`make bench` = `python -m bench.run [--quick] [--profile]`.

Runs every scenario for our stack and its baselines in one invocation and writes
`bench/results/latest.json`, `latest.md` and `latest.png`. Loopback only; every loop is
bounded and a watchdog stops the whole run after `--deadline` seconds (default 600).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import faulthandler
import os
import platform
import sqlite3
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from . import cluster, costs, profiling, report
from .common import baseline_server, loop_name, raise_nofile, run_async
from .scenarios import Bench, Config, Pool, halt_poll_ns, halt_polling

RESULTS = Path(__file__).resolve().parent / "results"
_LIBS = (
    "sync-sdk",
    "websockets",
    "uvicorn",
    "uvloop",
    "starlette",
    "httptools",
    "orjson",
    "pydantic",
    "python-socketio",
    "python-engineio",
    "channels",
    "channels-redis",
    "django",
    "redis",
    "matplotlib",
)


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    libs: dict[str, str] = {}
    for name in _LIBS:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = "absent"
    libs["sqlite"] = sqlite3.sqlite_version
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "event_loop": loop_name(),
        "guest_halt_poll_ns": halt_poll_ns(),
        "nofile_limit": raise_nofile(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "libraries": libs,
    }


async def run_all(
    cfg: Config, out_dir: Path, only: set[str], deadline: float = float("inf")
) -> dict[str, Any]:
    def log(msg: str) -> None:
        print(msg, flush=True)

    bench = Bench(cfg, out_dir, log=log, deadline=deadline)
    details: dict[str, Any] = {}
    try:
        bench.pool = Pool(cfg.workers)
        if only & SINGLE_NODE:
            await single_node(bench, only, details)
        if "memory" in only:
            log("5. memory per idle connection")
            details["memory"] = await bench.memory()
        if only & {"cluster", "cluster_writes"}:
            log("7. two nodes on PostgreSQL + Redis")
            details["cluster"] = await cluster.run(bench, writes_only="cluster" not in only)
    finally:
        bench.close()
    if bench.profiles:
        details["profile"] = bench.profiles
    return details


SINGLE_NODE = {"rtt", "prop", "fanout", "writes"}
PARTS = ("rtt", "prop", "fanout", "writes", "memory", "cluster")


async def single_node(bench: Bench, only: set[str], details: dict[str, Any]) -> None:
    """Scenarios 1-4: our server and the baselines, started once for them all."""
    log = bench.log
    cfg = bench.cfg
    ours = bench.new_ours("main")
    raw = bench.start_server(baseline_server("raw"))
    sio = bench.start_server(baseline_server("socketio"))
    chan = bench.start_server(baseline_server("channels"))
    log(f"servers: ours :{ours.port}  raw :{raw.port}  socketio :{sio.port}  channels :{chan.port}")
    if "rtt" in only:
        log("1. operation round trip")
        details["op_rtt"] = await bench.op_rtt(ours, raw)
        details["op_rtt"]["components"] = await costs.measure(bench.pad)
        log(f"  {details['op_rtt']}")
    if "prop" in only:
        log("2. propagation")
        details["propagation"] = await bench.propagation(ours, raw)
        log(f"  {details['propagation']}")
    if "fanout" in only:
        log("3. fan-out (+ 6. server CPU per delivery)")
        runs, setup = await bench.fanout(ours, raw, sio, chan)
        details["fanout"] = {
            "burst_messages": {str(k): v for k, v in cfg.burst_n.items() if k in cfg.sizes},
            "connect_seconds": setup,
            "summary": report.aggregate_fanout(runs),
            "runs": runs,
        }
    if "writes" in only:
        log("4. write throughput")
        details["writes"] = await bench.writes(ours)
    for srv in (ours, raw, sio, chan):
        bench.stop_server(srv)


def write_outputs(doc: dict[str, Any], out_dir: Path) -> None:
    """(Re)compute the summary and headline keys from the runs; write json, md and png."""
    details = doc["details"]
    details["fanout"]["summary"] = report.aggregate_fanout(details["fanout"]["runs"])
    head = report.headline(details)
    rest = {k: v for k, v in doc.items() if k not in head}
    doc = {**head, **rest}  # the headline keys first
    (out_dir / "latest.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    (out_dir / "latest.md").write_text(report.render_markdown(doc))
    report.render_png(doc, out_dir / "latest.png")
    print()
    print(report.summary_table(doc))
    print()
    print(report.medians_table(doc))
    print(
        f"\nwall time {doc['wall_seconds']:.0f} s; "
        f"wrote {out_dir}/latest.json, latest.md, latest.png"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small S, few messages: a smoke run")
    parser.add_argument(
        "--profile", action="store_true", help="also sample the server with py-spy (extra passes)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help="comma-separated subset (development; the report needs all of them); "
        "`cluster_writes` runs only the cluster's writes/s (with the pgbench limit)",
    )
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="hard stop of the whole run, in seconds"
    )
    parser.add_argument(
        "--halt-poll-ns",
        type=int,
        default=None,
        help="run with this VM guest's idle vCPUs polling this long before they halt "
        "(haltpoll's guest_halt_poll_ns, Linux's default 200000; needs root), restored at "
        "the end; the report's first line says what was in effect",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rebuild latest.md / latest.png / the headline keys from latest.json",
    )
    args = parser.parse_args(argv)
    if args.render:
        write_outputs(orjson.loads((args.out / "latest.json").read_bytes()), args.out)
        return 0
    if args.profile and not profiling.available():
        parser.error("--profile needs py-spy (pip install py-spy)")
    # Watchdog: dump the stacks and exit if anything hangs past the deadline.
    faulthandler.dump_traceback_later(args.deadline, exit=True)
    deadline = time.monotonic() + args.deadline
    raise_nofile()
    cfg = Config.make(quick=args.quick, profile=args.profile)
    only = set(args.only.split(","))
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with contextlib.ExitStack() as stack:
        if args.halt_poll_ns is not None and not stack.enter_context(
            halt_polling(args.halt_poll_ns)
        ):
            parser.error("--halt-poll-ns: this machine has no writable haltpoll guest_halt_poll_ns")
        machine = machine_info()
        t0 = time.monotonic()
        details = run_async(run_all(cfg, out_dir, only, deadline))
        wall = time.monotonic() - t0
    machine["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    faulthandler.cancel_dump_traceback_later()
    doc: dict[str, Any] = {
        "started_at": started,
        "wall_seconds": round(wall, 1),
        "machine": machine,
        "config": {**cfg.__dict__, "burst_n": {str(k): v for k, v in cfg.burst_n.items()}},
        "details": details,
    }
    if not set(PARTS) <= only:
        path = out_dir / "latest-partial.json"
        path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        print(f"partial run ({sorted(only)}): wrote {path}")
        return 0
    write_outputs(doc, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
