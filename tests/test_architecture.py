"""The layering ARCHITECTURE.md describes, checked on the source: front doors (REST, the
native WebSocket, Twilsock) only parse, call the core (`SyncService`, `Session`) and encode;
they never reach storage or the broker, and the server uses only the SDK's public modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "sync_server"
FRONT_DOORS = sorted(
    p for p in (SERVER / name for name in ("rest.py", "realtime.py", "twilsock.py")) if p.exists()
)


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", FRONT_DOORS, ids=lambda p: p.name)
def test_front_doors_reach_neither_storage_nor_broker(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = _imports(tree)
    assert not [n for n in imported if "storage" in n or "broker" in n], imported
    reached = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("storage", "broker")
    }
    assert not reached, f"{path.name} reaches {reached} directly"


def test_there_are_front_doors_to_check() -> None:
    assert {p.name for p in FRONT_DOORS} >= {"rest.py", "realtime.py"}


@pytest.mark.parametrize("path", sorted(SERVER.rglob("*.py")), ids=lambda p: p.name)
def test_the_server_uses_only_public_sdk_modules(path: Path) -> None:
    def is_private(part: str) -> bool:
        return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))

    private = [
        n
        for n in _imports(ast.parse(path.read_text()))
        if n.startswith("sync_sdk.") and any(is_private(part) for part in n.split(".")[1:])
    ]
    assert not private, f"{path.name} imports private SDK modules: {private}"
