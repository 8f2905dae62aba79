"""HTTP responses for generation requests: the client's connection reads a job, it does not own it.

``GenerationResponse`` submits the generation to ``Service.queue`` when the response starts,
sends what the job produces (NDJSON lines, or one JSON document at the end), and watches the
connection meanwhile: when the client disconnects (or the response ends in any other way) the
job is cancelled, so the model passes to the next request within one token. A non-streamed
request whose client went away is cancelled the same way, before it is ever answered.

Errors a client can act on become a status (non-streamed) or an ``error`` line (streamed, whose
200 went out with the first line): 503 with ``Retry-After`` for a full queue or a server
shutting down, 504 for a generation stopped at its time budget, 422 for a request the chain
refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from assistant.core.cancel import CLIENT_GONE, GenerationStopped
from assistant.core.errors import UserError
from assistant.server.generation_queue import GenerationQueue


def error_event(exc: BaseException) -> tuple[int, dict, dict[str, str]] | None:
    """(status, body, headers) for an exception the client should see, or None for a bug (-> 500)."""
    if isinstance(exc, GenerationStopped):
        return 504 if exc.over_budget else 503, {"detail": exc.reason}, ({} if exc.over_budget else {"Retry-After": "10"})
    return _user_error_parts(exc) if isinstance(exc, UserError) else None


def _user_error_parts(exc: UserError) -> tuple[int, dict, dict[str, str]]:
    """Its status, its message, and ``Retry-After`` when waiting helps."""
    return exc.status, {"detail": str(exc)}, ({"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else {})


def user_error_response(exc: UserError) -> JSONResponse:
    """A user error answered as a plain response (a request refused before any generation starts):
    the same status, body and headers as a stream's "error" line (``error_event``)."""
    status, body, headers = _user_error_parts(exc)
    return JSONResponse(body, status, headers)


async def _watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    """Wait for ``http.disconnect`` (the request body has been read already) and report it."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            on_disconnect()
            return


class GenerationResponse(Response):
    """Runs ``make_stream`` through ``queue``; ``render`` turns each item into a JSON-able dict (or None
    to skip it). Streamed: one NDJSON line per rendered item. Not streamed: the last rendered item
    for which ``is_result`` holds, as one JSON document."""

    media_type = "application/x-ndjson"
    # The instance's render (set in __init__) hides Response.render, which Response.__init__ has used by then.
    render: Callable[[Any], dict | None]  # type: ignore[assignment]  # not Response.render(content) -> bytes

    def __init__(
        self,
        queue: GenerationQueue,
        make_stream: Callable[[], Iterator[Any]],
        render: Callable[[Any], dict | None],
        *,
        stream: bool = True,
        is_result: Callable[[dict], bool] = lambda event: False,
    ) -> None:
        super().__init__(status_code=200, media_type=self.media_type if stream else "application/json")
        self.queue, self.make_stream, self.render = queue, make_stream, render
        self.stream, self.is_result = stream, is_result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            job = self.queue.submit(self.make_stream, asyncio.get_running_loop())
        except UserError as exc:  # the server is shutting down
            await user_error_response(exc)(scope, receive, send)
            return
        watcher = asyncio.create_task(_watch_disconnect(receive, lambda: job.cancel(CLIENT_GONE)))
        try:
            if self.stream:
                await self._send_lines(job, send)
            else:
                await self._send_result(job, scope, receive, send)
        except OSError:  # the client went away while we wrote to it
            pass
        finally:
            watcher.cancel()
            job.cancel(CLIENT_GONE)  # a no-op if the job has ended

    async def _send_lines(self, job, send: Send) -> None:
        start_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # length unknown: chunked
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        try:
            async for item in job.aevents():
                event = self.render(item)
                if event is not None:
                    await send({"type": "http.response.body", "body": _line(event), "more_body": True})
        except Exception as exc:
            mapped = error_event(exc)
            if mapped is None:
                raise
            status, body, headers = mapped
            retry = {"retry_after": int(headers["Retry-After"])} if "Retry-After" in headers else {}
            await send({"type": "http.response.body", "body": _line({"type": "error", "status": status, **body, **retry}),
                        "more_body": True})  # fmt: skip
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_result(self, job, scope: Scope, receive: Receive, send: Send) -> None:
        result = None
        try:
            async for item in job.aevents():
                event = self.render(item)
                if event is not None and self.is_result(event):
                    result = event
        except Exception as exc:
            mapped = error_event(exc)
            if mapped is None:
                raise
            status, body, headers = mapped
            await JSONResponse(body, status, headers)(scope, receive, send)
            return
        if result is None:
            raise RuntimeError("the generation ended without a result")
        await JSONResponse({k: v for k, v in result.items() if k != "type"})(scope, receive, send)


def _line(event: dict) -> bytes:
    return (json.dumps(event) + "\n").encode()
