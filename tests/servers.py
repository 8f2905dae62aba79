"""Real servers on 127.0.0.1 for tests: a static HTTP server (URL ingest) and an ASGI app here;
server processes (Chroma, llama.cpp's OpenAI-compatible server) that can be killed and restarted
in ``bench.servers``, which the benchmarks and the cluster share, re-exported for the tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.servers import (  # noqa: F401  (re-exported for the tests)
    LLM_ALIAS,
    LLM_API_KEY,
    ServerProcess,
    chroma_command,
    chroma_ready_url,
    free_port,
    llama_cpp_server,
    server_process,
)

# (status, headers, body), or a function that writes the whole response itself (slow servers).
Route = tuple[int, dict[str, str], bytes] | Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[str]:
    """Serve ``routes`` (path -> (status, headers, body) or a handler function); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            route = routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            if callable(route):
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should with a slow server
                return
            status, headers, body = route
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve_app(app):
    """Run an ASGI app with uvicorn on 127.0.0.1 in a thread; yields its base URL (``bench.app_process.serve_asgi``)."""
    from bench.app_process import serve_asgi

    return serve_asgi(app)
