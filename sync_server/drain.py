"""Graceful shutdown: SIGTERM (or Ctrl-C) drains the node and exits 0.

    SIGTERM -> stop accepting connections; /readyz says 503 "draining"
            -> every realtime connection stops reading, answers the requests it has taken,
               then closes with 1012 (native) or a Twilsock `close` 308, so clients reconnect
               at once, to another node, and catch up there
            -> HTTP requests already received are answered
            -> storage, broker and webhooks are closed; exit 0
all within `--drain-timeout` seconds (then what is left is cut). A second Ctrl-C forces it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType

import uvicorn

from .service import SyncService

log = logging.getLogger("sync_server")


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain above in front of its own shutdown (which on its own
    closes WebSockets at once, losing the replies of requests in flight)."""

    def __init__(self, config: uvicorn.Config, service: SyncService, timeout: float) -> None:
        super().__init__(config)
        self.service = service
        self.drain_timeout = timeout

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal once it has shut down, which would end the process
        # "killed by SIGTERM"; a drained node exits 0.
        self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        for server in self.servers:
            server.close()  # no new connections (uvicorn's shutdown does it too, later)
        for sock in sockets or []:
            sock.close()
        sessions = len(self.service.sessions)
        log.info("draining %d realtime connection(s) (up to %.1fs)", sessions, self.drain_timeout)
        left = await self.service.drain(max(deadline - loop.time(), 0.0))
        if left:
            log.warning("%d realtime connection(s) still open at the drain timeout", left)
        self.config.timeout_graceful_shutdown = max(
            int(deadline - loop.time()), 1
        )  # whole seconds (its type)
        await super().shutdown(sockets)
        log.info("drained in %.2fs", self.drain_timeout - (deadline - loop.time()))
