"""The server's logging: text lines for people, or JSON lines for a log pipeline.

`configure(level, fmt)` sets up the root logger once for everything in the process (uvicorn's
loggers included). JSON lines carry `time`, `level`, `logger` and `message`, the exception
when there is one, and the context a call passes with `extra=` (`connection`, `identity`,
`request`, `code`, `duration_ms`, `method`, `path`, `status`). Nothing secret is logged: tokens,
secrets and passwords never reach a log call, and `redact` masks the signature of anything
that looks like a JWT in case one does (a client's bad frame, say).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-colored copy of the message
}
_JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def redact(text: str) -> str:
    """`text` with every JWT-looking token cut to its first characters."""
    return _JWT.sub(lambda m: m.group(0)[:10] + "…[token]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str, fmt: str) -> None:
    """One handler on the root logger, for every logger of the process."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
