"""Optional sampling profiles (`python -m bench.run --profile`): py-spy attaches to a server
process during an extra, unmeasured pass and writes collapsed stacks to
`bench/results/profile-NAME.txt`; `summarize` ranks functions by self and inclusive samples."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def available() -> bool:
    return shutil.which("py-spy") is not None or _venv_py_spy().exists()


def _venv_py_spy() -> Path:
    import sys

    return Path(sys.executable).with_name("py-spy")


def _short(frame: str) -> str:
    """`func (path/to/pkg/mod.py:123)` -> `func (pkg/mod.py)`."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    parts = m.group("file").split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    return f"{m.group('func')} ({'/'.join(parts[-2:])})"


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self samples and by inclusive samples, as % of all samples."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        self_c[frames[-1]] += count
        for f in set(frames):
            incl_c[f] += count

    def pct(c: Counter[str]) -> list[list[Any]]:
        return (
            [[name, round(100 * n / total, 1)] for name, n in c.most_common(top)] if total else []
        )

    return {"samples": total, "self_pct": pct(self_c), "inclusive_pct": pct(incl_c)}


class Profiler:
    """`with Profiler(name, pid, out_dir):` samples `pid` with py-spy while the block runs."""

    def __init__(self, name: str, pid: int, out_dir: Path, rate: int = 500) -> None:
        self.name = name
        self.pid = pid
        self.path = out_dir / f"profile-{name}.txt"
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None
        self.summary: dict[str, Any] | None = None

    def __enter__(self) -> Profiler:
        exe = shutil.which("py-spy") or str(_venv_py_spy())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self.path.exists():
            self.summary = summarize(self.path)
