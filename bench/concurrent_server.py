"""An OpenAI-compatible chat server that really runs requests at the same time, for the slots bench and tests.

``llama_cpp.server`` runs one request at a time (a lock around its one context), so it cannot
show what ``generation_slots`` gains behind a server that batches (vLLM, llama.cpp's own
``llama-server`` with parallel slots). This server stands in for one: each request "generates" by
waiting ``seconds_per_reply`` on the event loop, so N requests take as long as one, and it counts
how many were in flight at once. Its replies are the smallest instance of the request's JSON
schema (first enum value, one array item, a one-word string), streamed in a few chunks, or a fixed
sentence without a schema: enough for the chains to run end to end, not answers anyone reads.
Loopback only, like every server the tests start.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request  # at module level: FastAPI reads the handler's annotations from here
from fastapi.responses import StreamingResponse

PLAIN_REPLY = "The sources say little about this."


def schema_instance(schema: dict) -> object:
    """The smallest value ``schema`` accepts, for the schemas the chains send (objects, arrays,
    enums, strings, numbers, booleans)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: schema_instance(properties[name]) for name in schema.get("required", list(properties))}
    if kind == "array":
        return [schema_instance(schema.get("items", {}))] * max(1, schema.get("minItems", 0)) \
            if schema.get("maxItems", 1) else []  # fmt: skip
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return "Yes"


@dataclass
class InFlight:
    """How many requests the server is working on now, and the most it ever worked on at once."""

    now: int = 0
    most: int = 0
    served: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self._lock:
            self.now -= 1
            self.served += 1


def create_server_app(seconds_per_reply: float, in_flight: InFlight):
    """The FastAPI app: ``GET /v1/models`` and ``POST /v1/chat/completions`` (plain or streamed)."""
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": "concurrent", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def complete(request: Request):
        body = await request.json()
        response_format = body.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema")
        text = json.dumps(schema_instance(schema)) if schema else PLAIN_REPLY
        in_flight.enter()
        if not body.get("stream"):
            try:
                await asyncio.sleep(seconds_per_reply)
            finally:
                in_flight.leave()
            return _completion(text)
        return StreamingResponse(_chunks(text, seconds_per_reply, in_flight), media_type="text/event-stream")

    return app


def _completion(text: str) -> dict:
    return {"id": "c", "object": "chat.completion", "created": int(time.time()), "model": "concurrent",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip


async def _chunks(text: str, seconds: float, in_flight: InFlight) -> AsyncIterator[str]:
    """``text`` in four server-sent chunks spread over ``seconds``, then the end marker."""
    try:
        step = max(1, len(text) // 4 + 1)
        for start in range(0, len(text), step):
            await asyncio.sleep(seconds / 4)
            delta = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text[start : start + step]}, "finish_reason": None}]}
            yield f"data: {json.dumps({'id': 'c', 'object': 'chat.completion.chunk', 'model': 'concurrent', **delta})}\n\n"
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps({'id': 'c', 'object': 'chat.completion.chunk', 'model': 'concurrent', **done})}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        in_flight.leave()


@contextmanager
def concurrent_server(seconds_per_reply: float = 1.0) -> Iterator[tuple[str, InFlight]]:
    """Serve the app on 127.0.0.1 in a thread; yields its ``/v1`` base URL and its ``InFlight``."""
    from bench.app_process import serve_asgi

    in_flight = InFlight()
    with serve_asgi(create_server_app(seconds_per_reply, in_flight)) as url:
        yield f"{url}/v1", in_flight
