"""`sync-sdk`: the Sync client from the terminal (see README "Command line").

    sync-sdk get document settings
    sync-sdk set map presence alice '{"online": true}'
    sync-sdk watch map presence --json

The commands need the `cli` extra (click, rich): `pip install 'sync-sdk[cli]'`. This module
imports neither, so a missing extra is reported in one line instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_EXTRA = frozenset({"click", "rich"})


def main(argv: Sequence[str] | None = None) -> None:
    """Run `sync-sdk` with `argv` (default: sys.argv[1:]) and exit with its status."""
    try:
        from ._app import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _EXTRA:
            raise
        sys.stderr.write(
            f"sync-sdk: the command line needs the 'cli' extra ({exc.name} is not installed):"
            " pip install 'sync-sdk[cli]'\n"
        )
        raise SystemExit(1) from None
    raise SystemExit(run(list(sys.argv[1:] if argv is None else argv)))
