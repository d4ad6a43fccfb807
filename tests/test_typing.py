"""Static-typing contract of the public SDK: mypy --strict must reject wrong user code and
accept correct user code.

Each snippet line that should produce a diagnostic carries a marker comment:

    await m.get(1)  # E: arg-type: expected "str"
    reveal_type(x)  # N: Revealed type is "wrong_usage.Order"

`# E: <code>: <fragment>` expects an error with that error code whose message contains
<fragment>, on that very line; `# N: <fragment>` expects a note containing <fragment>.
The test fails if a planted error disappears, if an error shows up on an unmarked line of
the wrong snippet (so planted errors are not masked by an unrelated one), or if the
correct snippet has any error at all. The correct snippet uses `assert_type`, so it would
also fail if the public API degraded to `Any`.

Each snippet is checked twice: as written (the async `sync_sdk`) and as `blocking()` turns
it into a user of the blocking client (`sync_sdk.blocking`: the same code without `await`),
which must be accepted and rejected on the same lines with the same messages.

Note on lambdas passed straight to an overloaded `on()`: mypy checks the lambda body
against every overload and, when the body fails for all of them (e.g. `e.bogus`), only
reports `No overload variant of "on" ... matches` on the call; it does not name the bad
attribute. Inside such a lambda `reveal_type(e)` / `assert_type(e, ...)` also see `Any`
(mypy's overload inference pass), so per-attribute checks are asserted on `def` handlers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MYPY_INI = """\
[mypy]
strict = True
plugins = pydantic.mypy
"""

WRONG_USAGE = """\
from typing import Any

from pydantic import BaseModel

from sync_sdk import (
    Client,
    ClientOptions,
    DocumentUpdatedEvent,
    JsonObject,
    MapItemAddedEvent,
)


class Order(BaseModel):
    id: str
    qty: int


def on_any_added(e: MapItemAddedEvent[Any]) -> None:
    print(e.nonexistent)  # E: attr-defined: "MapItemAddedEvent[Any]" has no attribute "nonexistent"


def on_order_added(e: MapItemAddedEvent[Order]) -> None:
    print(e.item.data.no_such_field)  # E: attr-defined: "Order" has no attribute "no_such_field"


def on_dict_added(e: MapItemAddedEvent[JsonObject]) -> None:
    print(e.item.data)


def on_doc_updated(e: DocumentUpdatedEvent[Order]) -> None:
    print(e.data.qty)


def on_state(state: object) -> None:
    print(state)


options = ClientOptions(log_level="verbose")  # E: arg-type: Argument "log_level" to "ClientOptions" has incompatible type "Literal['verbose']"


async def main(client: Client) -> None:
    m = await client.map("orders", data_type=Order)
    await m.get(1)  # E: arg-type: Argument 1 to "get" of "SyncMap" has incompatible type "int"; expected "str"
    item = await m.get("k")
    print(item.data.no_such_field)  # E: attr-defined: "Order" has no attribute "no_such_field"
    await m.set("k", {"id": "a", "qty": 1})  # E: arg-type: Argument 2 to "set" of "SyncMap" has incompatible type "dict[str, object]"; expected "Order"

    lst = await client.list("items")
    await lst.get("0")  # E: arg-type: Argument 1 to "get" of "SyncList" has incompatible type "str"; expected "int"

    doc = await client.document("settings", data_type=Order)
    wrong: str = doc.data  # E: assignment: Incompatible types in assignment (expression has type "Order", variable has type "str")
    reveal_type(doc.data)  # N: Revealed type is "wrong_usage.Order"
    print(wrong)

    # misspelled event names (typed handlers, so only the name is wrong)
    doc.on("updatd", on_doc_updated)  # E: call-overload: No overload variant of "on" of "SyncDocumentEvents" matches
    m.on("item_add", on_order_added)  # E: call-overload: No overload variant of "on" of "SyncMapEvents" matches
    client.on("conection_state_changed", on_state)  # E: call-overload: No overload variant of "on" of "ClientEvents" matches

    # handlers whose payload type does not fit the event
    m.on("item_added", on_doc_updated)  # E: call-overload: "Callable[[DocumentUpdatedEvent[Order]], None]"
    m.on("item_added", on_dict_added)  # E: call-overload: "Callable[[MapItemAddedEvent[dict[str, Any]]], None]"
    doc.on("removed", on_doc_updated)  # E: call-overload: No overload variant of "on" of "SyncDocumentEvents" matches

    # lambdas reading attributes the payload lacks: reported as no matching overload
    m.on("item_added", lambda e: e.bogus)  # E: call-overload: No overload variant of "on" of "SyncMapEvents" matches
    m.on("item_added", lambda e: print(e.bogus))  # E: call-overload: No overload variant of "on" of "SyncMapEvents" matches
    m.on("item_added", lambda e: print(e.item.data.no_such_field))  # E: call-overload: No overload variant of "on" of "SyncMapEvents" matches

    s = await client.stream("ticks", data_type=Order)
    await s.publish_message({"id": "a"})  # E: arg-type: Argument 1 to "publish_message" of "SyncStream" has incompatible type "dict[str, str]"; expected "Order"
"""

CORRECT_USAGE = (Path(__file__).parent / "typing_consumer.py").read_text(encoding="utf-8")

_OUTPUT_LINE = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*?)"
    r"(?:  \[(?P<code>[a-z0-9-]+)\])?$"
)
_MARKER = re.compile(r"#\s*(?P<kind>[EN]):\s*(?P<body>.+)$")


@dataclass(frozen=True)
class Diagnostic:
    line: int
    severity: str
    message: str
    code: str | None


@dataclass(frozen=True)
class Expected:
    line: int
    severity: str
    code: str | None
    fragment: str

    def matches(self, d: Diagnostic) -> bool:
        return (
            d.line == self.line
            and d.severity == self.severity
            and (self.code is None or d.code == self.code)
            and self.fragment in d.message
        )


def _expectations(source: str) -> list[Expected]:
    found = []
    for lineno, text in enumerate(source.splitlines(), start=1):
        marker = _MARKER.search(text)
        if marker is None:
            continue
        body = marker["body"].strip()
        if marker["kind"] == "E":
            code, _, fragment = body.partition(": ")
            found.append(Expected(lineno, "error", code, fragment))
        else:
            found.append(Expected(lineno, "note", None, body))
    return found


def _run_mypy(tmp_path: Path, name: str, source: str) -> tuple[int, list[Diagnostic], str]:
    """Type-check `source` as module `name` with mypy --strict + the pydantic plugin."""
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_INI)
    target = tmp_path / f"{name}.py"
    target.write_text(source)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--show-error-codes",
            "--no-pretty",
            "--no-color-output",
            "--hide-error-context",
            str(target),
        ],
        cwd=ROOT,  # so `sync_sdk` / `sync_generated` resolve to this checkout
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = proc.stdout + proc.stderr
    diagnostics = []
    for raw in proc.stdout.splitlines():
        m = _OUTPUT_LINE.match(raw)
        if m is not None and Path(m["path"]).name == target.name:
            diagnostics.append(Diagnostic(int(m["line"]), m["severity"], m["message"], m["code"]))
    return proc.returncode, diagnostics, output


def blocking(source: str) -> str:
    """An async snippet as the same code on the blocking client: imports from
    `sync_sdk.blocking`, no `await`, `with` instead of `async with`, `main` a plain function
    (async handlers stay async: the blocking client runs them on its loop)."""
    out = source.replace("from sync_sdk import", "from sync_sdk.blocking import")
    out = out.replace("async with ", "with ").replace("await ", "")
    out = out.replace("async def main(", "def main(")
    assert "await" not in out and out.count("sync_sdk.blocking") == source.count("sync_sdk")
    return out


FLAVOURS = {"async": lambda source: source, "blocking": blocking}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrong_usage_is_rejected(tmp_path: Path, flavour: str) -> None:
    source = FLAVOURS[flavour](WRONG_USAGE)
    expected = _expectations(source)
    assert len([e for e in expected if e.severity == "error"]) >= 15
    returncode, diagnostics, output = _run_mypy(tmp_path, "wrong_usage", source)
    assert returncode == 1, f"mypy should report errors (exit 1), got {returncode}:\n{output}"

    lines = source.splitlines()
    missing = [
        f"line {e.line} ({lines[e.line - 1].strip()}): expected {e.severity} "
        f"[{e.code}] containing {e.fragment!r}"
        for e in expected
        if not any(e.matches(d) for d in diagnostics)
    ]
    marked = {e.line for e in expected if e.severity == "error"}
    unexpected = [
        f"line {d.line}: {d.message} [{d.code}]"
        for d in diagnostics
        if d.severity == "error" and d.line not in marked
    ]
    assert not missing, "planted errors not reported:\n" + "\n".join(missing) + "\n\n" + output
    assert not unexpected, "errors on unmarked lines:\n" + "\n".join(unexpected) + "\n\n" + output


@pytest.mark.timeout(600)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_correct_usage_type_checks(tmp_path: Path, flavour: str) -> None:
    source = FLAVOURS[flavour](CORRECT_USAGE)
    assert "# E:" not in source
    returncode, diagnostics, output = _run_mypy(tmp_path, "correct_usage", source)
    errors = [f"line {d.line}: {d.message} [{d.code}]" for d in diagnostics]
    assert returncode == 0 and not errors, "correct usage must type-check cleanly:\n" + output


@pytest.mark.timeout(600)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_correct_usage_passes_pyright_strict(tmp_path: Path, flavour: str) -> None:
    """The same snippets under pyright's strict mode (IDEs such as VS Code use pyright)."""
    target = tmp_path / "correct_usage.py"
    target.write_text(FLAVOURS[flavour](CORRECT_USAGE))
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        json.dumps(
            {
                "typeCheckingMode": "strict",
                "pythonVersion": "3.11",
                "extraPaths": [str(ROOT), str(ROOT / "generated")],
                "include": [str(target)],
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, "-p", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "0 errors" in output, output
