"""The queue every generation of a server process goes through, in arrival order, with bounded waits.

There is one chat model per process (a llama.cpp context generates one reply at a time and
already uses every core), so generations go through ``GenerationQueue``: concurrent users
wait their turn instead of crashing or oversubscribing the CPU, and can be told how many
requests are ahead of them. Retrieval, listing and ingest do not wait for the queue. Behind an
OpenAI-compatible server that batches requests, ``generation_slots`` lets N generations run at
once, still started in arrival order.

A generation belongs to the server, not to the client's connection: ``GenerationQueue.submit``
runs it as a ``Job`` on a worker thread, and the HTTP response or the UI only reads the job's
events and calls ``Job.cancel`` when its client goes away. The worker takes the model, checks
the job's stop signal once per token, and hands the model on in a ``finally`` that runs however
the generation ends (finished, failed, cancelled, over its time budget, server shutting down).
Every wait has a bound: a request gives up after ``queue_timeout_s`` in the queue
(``QueueTimeout``), a generation is stopped after ``generation_timeout_s``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from assistant.core.errors import UserError
from assistant.core.cancel import CLIENT_GONE, SHUTTING_DOWN, GenerationStopped, StopSignal, stop_signal_installed


@dataclass(frozen=True)
class Queued:
    """Emitted before a queued generation starts: how many requests are ahead."""

    ahead: int


class QueueTimeout(UserError, RuntimeError):
    """The request waited its whole ``queue_timeout_s`` for the model; ``retry_after_s`` is a fair guess."""

    status = 503

    def __init__(self, waited_s: float, retry_after_s: int) -> None:
        super().__init__(
            f"the model is busy: waited {waited_s:.0f} s in the queue without getting a turn; "
            f"try again in about {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


class ShuttingDown(UserError, RuntimeError):
    """The server is shutting down and takes no new generations."""

    status = 503
    retry_after_s = 10

    def __init__(self) -> None:
        super().__init__("the server is shutting down; try again in a few seconds")


@dataclass(frozen=True)
class _End:
    """The last event of a job: how it ended (None: finished normally)."""

    error: BaseException | None


class Job:
    """One request's generation. The worker thread produces its events; one reader consumes them.

    Readers: ``events()`` (blocking, for threads) or ``aevents()`` (for the event loop the job was
    submitted from). Both raise the generation's exception, if any, after its last item.
    """

    def __init__(self, on_cancel: Callable[[], None], loop: asyncio.AbstractEventLoop | None) -> None:
        self.signal = StopSignal()
        self.done = threading.Event()
        self.waited_s = 0.0
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._on_cancel = on_cancel
        self._loop = loop
        self._ready = asyncio.Event() if loop is not None else None

    def cancel(self, reason: str = CLIENT_GONE) -> None:
        """Stop the generation (or leave the queue) within one token; harmless once it has ended.

        The reader learns at once that nothing more will come (a stream can end before the worker
        has unwound, which may take a llama.cpp call); the worker hands the model on when it has."""
        if not self.done.is_set() and self.signal.stop(reason):
            self.emit(_End(GenerationStopped(reason)))
            self._on_cancel()

    def emit(self, item: object) -> None:
        self._items.put(item)
        if self._loop is not None:
            assert self._ready is not None  # made in __init__ whenever there is a loop
            try:
                self._loop.call_soon_threadsafe(self._ready.set)
            except RuntimeError:  # the reader's loop has closed: nobody is listening any more
                pass

    def finish(self, error: BaseException | None) -> None:
        self.done.set()
        self.emit(_End(error))

    @staticmethod
    def _unwrap(item: object) -> object:
        if isinstance(item, _End) and item.error is not None:
            raise item.error
        return item

    def events(self, timeout_s: float | None = None) -> Iterator[Any]:
        """The job's items as they come (blocking); raises its error at the end."""
        while not isinstance(item := self._unwrap(self._items.get(timeout=timeout_s)), _End):
            yield item

    async def aevents(self) -> AsyncIterator[Any]:
        """The job's items as they come, without blocking the event loop; raises its error at the end."""
        assert self._ready is not None, "submit the job from the event loop to read it asynchronously"
        while True:
            try:
                item = self._unwrap(self._items.get_nowait())
            except queue.Empty:
                self._ready.clear()
                if self._items.empty():
                    await self._ready.wait()
                continue
            if isinstance(item, _End):
                return
            yield item


class GenerationQueue:
    """First come, first served access to the shared model's ``slots``, with bounded waits.

    One slot for the in-process model (a llama.cpp context generates one reply at a time and uses
    every core); N for an OpenAI-compatible server that batches concurrent requests. A job starts
    when it is first in line and a slot is free, so arrival order is kept whatever N is."""

    def __init__(self, queue_timeout_s: float | None = None, generation_timeout_s: float | None = None,
                 slots: int = 1) -> None:  # fmt: skip
        if slots < 1:
            raise ValueError(f"a generation queue needs at least one slot, not {slots}")
        self.queue_timeout_s = queue_timeout_s
        self.generation_timeout_s = generation_timeout_s
        self.slots = slots
        self._turn = threading.Condition()
        self._line: deque[Job] = deque()  # waiting, in arrival order
        self._running: set[Job] = set()  # at most ``slots``
        self._jobs: set[Job] = set()  # every job not yet ended
        self._closed = False
        self._mean_run_s = 20.0  # a running estimate, for Retry-After

    @property
    def waiting(self) -> int:
        return len(self._line)

    @property
    def running(self) -> bool:
        return bool(self._running)

    @property
    def running_count(self) -> int:
        return len(self._running)

    # Callable[..., ...]: mypy cannot match a lambda with a default argument (d=doc_id) to Callable[[], ...].
    def submit(self, make_stream: Callable[..., Iterator[Any]], loop: asyncio.AbstractEventLoop | None = None) -> Job:
        """Start ``make_stream()`` on a worker thread once the model is free; returns its ``Job`` at once.

        ``loop``: the event loop that reads the job with ``aevents()`` (None for ``events()``).
        """
        job = Job(self._wake, loop)
        with self._turn:
            if self._closed:
                raise ShuttingDown()
            # Jobs that must start before this one can: those in line, and one that must finish when every slot is taken.
            ahead = len(self._line) + (1 if len(self._running) >= self.slots else 0)
            self._line.append(job)
            self._jobs.add(job)
        if ahead:
            job.emit(Queued(ahead))
        threading.Thread(target=self._work, args=(job, make_stream), name="generation", daemon=True).start()
        return job

    async def stream(self, make_stream: Callable[[], Iterator[Any]]) -> AsyncGenerator[Any, None]:
        """``submit`` and read from the running event loop; the job is cancelled however the reader stops."""
        job = self.submit(make_stream, asyncio.get_running_loop())
        try:
            async for item in job.aevents():
                yield item
        finally:
            job.cancel(CLIENT_GONE)

    def _wake(self) -> None:
        with self._turn:
            self._turn.notify_all()

    def _wait_for_turn(self, job: Job) -> None:
        """Block until ``job`` is first in line and a slot is free; raise if it is stopped or times out."""
        started = time.monotonic()
        deadline = started + self.queue_timeout_s if self.queue_timeout_s else None
        with self._turn:
            try:
                while True:
                    job.signal.check()
                    if len(self._running) < self.slots and self._line[0] is job:
                        self._line.popleft()
                        self._running.add(job)
                        job.waited_s = time.monotonic() - started
                        return
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise QueueTimeout(time.monotonic() - started, self._retry_after_s())
                    self._turn.wait(1.0 if remaining is None else min(remaining, 1.0))
            except BaseException:
                self._line.remove(job)
                self._turn.notify_all()  # the next in line may be first now
                raise

    def _retry_after_s(self) -> int:
        return max(1, round(self._mean_run_s * (len(self._line) + 1) / self.slots))

    def _work(self, job: Job, make_stream: Callable[[], Iterator[Any]]) -> None:
        error: BaseException | None = None
        try:
            self._wait_for_turn(job)
            started = time.monotonic()
            try:
                self._generate(job, make_stream)
            finally:
                with self._turn:
                    self._running.discard(job)
                    self._mean_run_s = 0.8 * self._mean_run_s + 0.2 * (time.monotonic() - started)
                    self._turn.notify_all()
        except BaseException as exc:  # handed to the reader, who decides what the client sees
            error = exc
        finally:
            with self._turn:
                self._jobs.discard(job)
                self._turn.notify_all()
            job.finish(error)

    def _generate(self, job: Job, make_stream: Callable[[], Iterator[Any]]) -> None:
        """Pass on the items of ``make_stream()``, checking the stop signal at every one (every token)."""
        job.signal.start_budget(self.generation_timeout_s)
        with stop_signal_installed(job.signal):
            stream = make_stream()
            try:
                for item in stream:
                    job.signal.check()
                    job.emit(item)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # a generator stopped half way runs its own finally blocks now

    def close(self, reason: str = SHUTTING_DOWN) -> None:
        """Take no new jobs and stop every queued or running one (for shutdown)."""
        with self._turn:
            self._closed = True
            jobs = list(self._jobs)
        for job in jobs:
            job.cancel(reason)

    def drain(self, timeout_s: float) -> bool:
        """Wait until every job has ended (True) or ``timeout_s`` has passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._turn:
            while self._jobs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._turn.wait(remaining)
        return True
