"""The process: one ``Service``, the REST API and the web UI on one FastAPI app, served until SIGTERM.

``create_app`` puts the REST API (``assistant.server.api``) at /api and the Gradio UI
(``assistant.server.ui``) at /, both behind one access rule (``assistant.server.access``);
``serve`` runs it and shuts it down gracefully; ``main`` is what ``da serve`` and ``ui.py`` start.
The UI and the API only present and route: making the objects they share is
``assistant.server.service.build``'s job, running the process is this module's.
"""

from __future__ import annotations

import assistant  # noqa: F401  (sets the offline environment before gradio is imported)

import os
import sys

import gradio as gr
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from assistant.core.settings import Settings
from assistant.present import render
from assistant.server.access import AccessMiddleware, AccessRule, bind_problem, startup_note
from assistant.server.api import build_router, install_error_handlers
from assistant.server.service import Service
from assistant.server.ui import build_blocks


def create_app(service: Service, allow_no_auth: bool = False) -> FastAPI:
    """FastAPI with the REST API at /api (docs at /api/docs) and the Gradio UI at /, all behind
    ``assistant.server.access`` (one rule for the API, the UI and Gradio's own routes). ``allow_no_auth``
    lifts the loopback-only ``Host`` check of a server without credentials (``--allow-no-auth``)."""
    app = FastAPI(title="Debate Assistant API", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app)
    app.include_router(build_router(service))
    # No origin but the app's own may call it from a browser. Gradio's own CORS middleware grants any
    # localhost origin (with credentials) unless the parent app configures CORS itself: this one,
    # allowing no origin, switches it off (gradio.route_utils.CustomCORSMiddleware; tested).
    app.add_middleware(CORSMiddleware, allow_origins=())
    app.add_middleware(AccessMiddleware, rule=AccessRule(service.settings), check_host=not allow_no_auth)
    service.library.repair_in_background()
    # api_open=False: Gradio's direct routes (/gradio_api/run/...), which skip the queue and its limits and
    # answer any failure with a 500, are closed (404); the UI and gradio_client use the queue.
    demo = build_blocks(service).queue(default_concurrency_limit=4, api_open=False)
    # Gradio checks that a file input names a file the browser uploaded (not "/etc/...", which it would
    # otherwise copy into its cache for us to ingest) only once the Blocks "launched"; mounted on
    # FastAPI they never do, so say they did (gradio.processing_utils._check_allowed; tested).
    demo.has_launched = True
    # One upload limit for every door: Gradio's upload route answers 413 past max_file_bytes, as the
    # REST API does, and deletes the partial file (tested).
    return gr.mount_gradio_app(app, demo, path="", css=render.CSS, head=render.CITATION_SCRIPT, show_error=True,
                               max_file_size=service.settings.max_file_bytes)  # fmt: skip


def serve(service: Service, host: str = "127.0.0.1", port: int = 7860, allow_no_auth: bool = False) -> None:
    """Run the app until SIGTERM or Ctrl-C, then shut down gracefully and return (exit code 0).

    On the signal, running and queued generations are stopped at once (a debate keeps its
    finished turns, marked stopped) instead of being waited for; connections that are still
    open after ``shutdown_grace_s`` are closed; then the stores are closed (transcripts flushed).
    """
    import signal
    import threading

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame) -> None:
            if not self.should_exit:  # in a signal handler: take no locks here, let a thread do the stopping
                threading.Thread(target=service.stop_generations, name="shutdown", daemon=True).start()
            super().handle_exit(sig, frame)

    app = create_app(service, allow_no_auth=allow_no_auth)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=max(1, round(service.settings.shutdown_grace_s)))  # fmt: skip
    # uvicorn raises the signal it stopped for again once it is done; that second one is ours to ignore.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        Server(config).run()
    finally:
        finished = service.close()
    if not finished:
        # A generation is still inside one llama.cpp call (reading a long prompt) and will stop at its
        # next token; everything is saved and closed, so do not wait for it, nor let interpreter
        # shutdown free the model under it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def main(host: str = "127.0.0.1", port: int = 7860, allow_no_auth: bool = False) -> None:
    service = Service(Settings())
    problem = bind_problem(host, service.settings, allow_no_auth)
    if problem:
        raise SystemExit(f"error: {problem}")
    print(f"Debate Assistant on http://{host}:{port}  (API docs: http://{host}:{port}/api/docs)", flush=True)
    print(startup_note(host, port, service.settings), flush=True)
    serve(service, host, port, allow_no_auth)
