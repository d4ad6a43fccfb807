"""The README's snippets run as written, in order, against a real server, as a new user would
run them: each ```python block as a file of its own, each ```sh block in bash, in a directory
whose `.sync-data` is the server's data dir (as after `make serve`). The only change is the
port (the README says 4700; the test server has its own) and Ctrl-C for `sync-sdk watch`.
A block preceded by `<!-- readme-test: skip: why -->` is not run; ```text, ```yaml and ```js
blocks are illustrations (the JavaScript SDK is exercised in tests/test_js_client.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

README = Path(__file__).resolve().parent.parent / "README.md"
RUN = ("python", "sh")
SKIP = re.compile(r"<!-- readme-test: skip: (.+?) -->\s*$")


@dataclass(frozen=True)
class Snippet:
    line: int  # where the block starts in README.md
    language: str
    code: str
    skipped: str | None  # why it is not run

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def snippets(text: str) -> list[Snippet]:
    found: list[Snippet] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.fullmatch(r"( *)```(\w*)", lines[i])  # also indented, inside a list item
        if m is None:
            i += 1
            continue
        indent, start = m.group(1), i
        end = lines.index(f"{indent}```", i + 1)
        skip = SKIP.match(lines[start - 1].strip()) if start else None
        code = textwrap.dedent("\n".join(lines[start + 1 : end])) + "\n"
        found.append(Snippet(start + 1, m.group(2), code, skip.group(1) if skip else None))
        i = end + 1
    return found


def test_the_readme_is_read_as_intended() -> None:
    """Every fenced block is found and has a language; the ones not run say why."""
    found = snippets(README.read_text())
    run = [s for s in found if s.language in RUN and s.skipped is None]
    assert all(s.language for s in found), [str(s) for s in found if not s.language]
    assert len(run) >= 5, [str(s) for s in run]
    assert {s.language for s in run} == {"python", "sh"}
    for s in found:
        if s.language == "python":
            compile(s.code, str(s), "exec")  # no top-level `await` and such


def test_every_snippet_runs_in_order(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / ".sync-data")
    srv.start()
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SYNC_")},
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
        }
        # What the Quickstart's comment asks for, before it runs.
        token = subprocess.run(
            [sys.executable, "-m", "sync_server", "token", "--identity", "alice"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        (tmp_path / "token.txt").write_text(token.stdout)
        ran = 0
        for snippet in snippets(README.read_text()):
            if snippet.language not in RUN or snippet.skipped:
                continue
            code = snippet.code.replace("127.0.0.1:4700", f"127.0.0.1:{srv.port}")
            if snippet.language == "python":
                path = tmp_path / f"snippet_{snippet.line}.py"
                path.write_text(code)
                cmd = [sys.executable, str(path)]
            else:
                # Ctrl-C after a moment for what runs until Ctrl-C (exit status 130).
                code = re.sub(
                    r"^(sync-sdk watch .*?)(\s+#.*)?$",
                    r"timeout --preserve-status -s INT 3 \1 || test $? = 130",
                    code,
                    flags=re.MULTILINE,
                )
                cmd = ["bash", "-euo", "pipefail", "-c", code]
            done = subprocess.run(
                cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            if done.returncode != 0:
                pytest.fail(f"{snippet} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
            ran += 1
        assert ran >= 5
    finally:
        srv.destroy()
