"""Logging through stdlib `logging`, with TRACE below DEBUG.

Each Client logs to a logger of its own, `sync_sdk.client.<n>` (n counts the clients of the
process), whose level is that client's `ClientOptions.log_level`: two clients never change
each other's verbosity, and the process-wide `sync_sdk` logger is left to the application.
Records propagate as usual, so `logging.basicConfig()` (or any handler on `sync_sdk` or the
root logger) shows them.
"""

from __future__ import annotations

import itertools
import logging
import re

from sync_generated.client import LogLevel, LogLevelName

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

logger = logging.getLogger("sync_sdk")

_LEVELS: dict[LogLevel, int] = {
    LogLevel.SILENT: logging.CRITICAL + 10,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.TRACE: TRACE,
}

_client_numbers = itertools.count(1)


def stdlib_level(level: LogLevel | LogLevelName) -> int:
    """The stdlib logging level for a LogLevel (silent = above CRITICAL: nothing)."""
    return _LEVELS[LogLevel(level)]


def client_logger(level: LogLevel | LogLevelName) -> logging.Logger:
    """A new logger `sync_sdk.client.<n>` for one client, at `level`."""
    log = logging.getLogger(f"sync_sdk.client.{next(_client_numbers)}")
    log.setLevel(stdlib_level(level))
    return log


_TOKEN_FIELD = re.compile(r'("token"\s*:\s*")[^"]*(")')


def redact(frame: str | bytes) -> str:
    """A frame as it may be logged: every `"token": "..."` value replaced."""
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    return _TOKEN_FIELD.sub(r"\1[redacted]\2", text)
