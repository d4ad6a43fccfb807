"""Logging through stdlib `logging`: the `sync_sdk` logger, with TRACE below DEBUG."""

from __future__ import annotations

import logging

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


def stdlib_level(level: LogLevel | LogLevelName) -> int:
    """The stdlib logging level for a LogLevel (silent = above CRITICAL: nothing)."""
    return _LEVELS[LogLevel(level)]


def apply_log_level(target: logging.Logger, level: LogLevel | LogLevelName) -> None:
    target.setLevel(stdlib_level(level))
