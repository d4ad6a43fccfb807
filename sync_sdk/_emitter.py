"""A small event emitter: plain or async handlers, errors logged, never propagated."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from ._logging import logger


class EventEmitter:
    __slots__ = ("_handlers", "_log", "_owner", "_tasks")

    def __init__(self, owner: str, log: logging.Logger = logger) -> None:
        self._owner = owner
        self._log = log
        self._handlers: dict[str, list[Callable[[Any], Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, handler: Callable[[Any], Any]) -> Callable[[], None]:
        handlers = self._handlers.setdefault(event, [])
        handlers.append(handler)

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def has_listeners(self, event: str) -> bool:
        return bool(self._handlers.get(event))

    def emit(self, event: str, payload: Any) -> None:
        for handler in tuple(self._handlers.get(event, ())):
            try:
                result = handler(payload)
            except Exception:
                self._log.exception("%s: %r handler raised", self._owner, event)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s: async handler raised", self._owner, exc_info=task.exception())

    def clear(self) -> None:
        self._handlers.clear()
