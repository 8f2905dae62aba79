"""Stopping a generation from outside it: the client went away, the server is shutting down,
or the generation ran over its time budget.

A generation runs on a worker thread that belongs to the server (``assistant.server.generation_queue``), not
to the client's connection. The worker installs a ``StopSignal`` in its context; the token
loops (``assistant.models.llm``'s llama.cpp stream, and the worker between the items it passes on)
call ``check_stop()`` once per token, so a stop lands within one token and the exception
unwinds every ``finally`` on the way out (the model lock, the debate's saved status).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

CLIENT_GONE = "the client went away"
SHUTTING_DOWN = "the server is shutting down"


class GenerationStopped(Exception):
    """A generation was stopped before it finished; ``reason`` says why, ``over_budget`` if time ran out."""

    def __init__(self, reason: str, over_budget: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.over_budget = over_budget


class StopSignal:
    """Set once, from any thread; read once per token by the generation it belongs to."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason = ""
        self._deadline: float | None = None
        self._budget_s = 0.0

    def stop(self, reason: str) -> bool:
        """Ask the generation to stop; False if it had been asked already (the first reason is kept)."""
        if self._event.is_set():
            return False
        self._reason = reason
        self._event.set()
        return True

    def start_budget(self, budget_s: float | None) -> None:
        """From now on the generation may run ``budget_s`` seconds (None: no limit)."""
        self._budget_s = budget_s or 0.0
        self._deadline = time.monotonic() + budget_s if budget_s else None

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    def check(self) -> None:
        """Raise ``GenerationStopped`` if a stop was asked for or the time budget is spent."""
        if self._event.is_set():
            raise GenerationStopped(self._reason)
        if self._deadline is not None and time.monotonic() > self._deadline:
            reason = f"the generation ran over its time budget of {self._budget_s:g} s and was stopped"
            self.stop(reason)
            raise GenerationStopped(reason, over_budget=True)


_current: ContextVar[StopSignal | None] = ContextVar("generation_stop_signal", default=None)


@contextmanager
def stop_signal_installed(signal: StopSignal) -> Iterator[StopSignal]:
    """Make ``signal`` the one ``check_stop()`` reads in this thread's context."""
    token = _current.set(signal)
    try:
        yield signal
    finally:
        _current.reset(token)


def check_stop() -> None:
    """Called once per token by token loops: raise ``GenerationStopped`` if this generation must stop."""
    signal = _current.get()
    if signal is not None:
        signal.check()
