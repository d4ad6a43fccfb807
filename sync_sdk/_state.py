"""The connection state machine, driven by the generated transition table."""

from __future__ import annotations

from collections.abc import Callable

from sync_generated.client import (
    CONNECTION_STATE_TRANSITIONS,
    INITIAL_CONNECTION_STATE,
    ConnectionState,
)


class InvalidTransition(RuntimeError):
    """A transition the spec does not allow: a bug in the runtime, never a network condition."""


class ConnectionStateMachine:
    """Holds the current state; `move_to()` enforces spec/client.yaml's transition table."""

    __slots__ = ("_on_change", "state")

    def __init__(self, on_change: Callable[[ConnectionState], None]) -> None:
        self.state: ConnectionState = INITIAL_CONNECTION_STATE
        self._on_change = on_change

    def can_move_to(self, new: ConnectionState) -> bool:
        return new in CONNECTION_STATE_TRANSITIONS[self.state]

    def move_to(self, new: ConnectionState) -> None:
        if new == self.state:
            return
        if not self.can_move_to(new):
            raise InvalidTransition(
                f"connection state {self.state.value} -> {new.value} is not allowed"
            )
        self.state = new
        self._on_change(new)
