"""The web app: Gradio tabs mounted on a FastAPI app that also serves the REST API (started by ``ui.py``).

Tabs: **Ask** (chat with streamed answers; [n] links open the cited passage; a sources
panel under each answer; follow-ups use the conversation), **Debate** (motion, rounds and
persona names; turns stream with their speakers; the moderator's summary; Markdown
download), **Library** (upload, URL, paste; progress while ingesting; documents with
passage counts; delete; rebuild the index) and **Search** (ranked passages).

Everything from articles or the model is escaped before it is shown (``assistant.render``).
The LLM is shared through ``Service.queue``: a request that has to wait says so. Bound to
127.0.0.1 unless told otherwise; with a token or UI password set, every page and call needs it
(``assistant.access``).
"""

from __future__ import annotations

import assistant  # noqa: F401  (sets the offline environment before gradio is imported)

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import gradio as gr
from fastapi import FastAPI

from assistant import prompts, render
from assistant.access import AccessMiddleware, AccessRule, bind_problem, startup_note
from assistant.api import build_router, install_error_handlers
from assistant.cancel import GenerationStopped
from assistant.debate import DebateError, DebateStarted, TurnFinished, TurnStarted, TurnText, check_personas
from assistant.library import UnknownDocumentError
from assistant.qa import Answer, SentenceChecked, SourcesFound
from assistant.retrieval import QueryError, validate_query
from assistant.service import Queued, QueueTimeout, Service, ShuttingDown
from assistant.settings import Settings
from assistant.transcripts import Debate, to_markdown
from ingest.fetch import FetchError, require_web_url
from ingest.pipeline import DuplicateUploadError
from ingest.registry import STANCES, StanceError

DOC_COLUMNS = ["id", "title", "author", "date", "passages", "source", "stance"]
HIT_COLUMNS = ["rank", "score", "title", "passage", "source", "chars"]


def _documents_table(service: Service) -> list[list[str]]:
    return [[d.id, d.title, d.author or "", d.date or "", str(d.n_passages), d.source, d.stance_shown]
            for d in service.library.documents()]  # fmt: skip


def _results_text(results) -> str:
    lines = []
    for r in results:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(r.removed.items()))
        lines.append(f"{r.status}: {r.title or r.item} - {r.message}" + (f" (removed: {removed})" if removed else ""))
    return "\n".join(lines) or "nothing to ingest"


def _queued_note(ahead: int) -> str:
    return f"Queued: {ahead} request{'s' if ahead != 1 else ''} ahead of yours for the model..."


# What a generation can end with that the user should read: a bad request, a full queue, a server
# shutting down, a generation stopped at its time budget.
_GENERATION_ERRORS = (QueryError, DebateError, QueueTimeout, ShuttingDown, GenerationStopped)


def _checked(check):
    """The result of a ``retrieval.validate_*`` check, its QueryError shown as the UI's error."""
    try:
        return check()
    except QueryError as exc:
        raise gr.Error(str(exc)) from exc


def export_folder() -> Path:
    """A temporary folder for the app's Markdown downloads, removed when the process exits
    (one per app, not one per debate: the Debate tab used to leave a folder behind per debate)."""
    folder = Path(tempfile.mkdtemp(prefix="da-exports-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _require_documents(service: Service) -> None:
    """Refuse a generation over an empty library before it waits for the model."""
    if not service.library.documents():
        raise gr.Error("The library is empty: add articles in the Library tab first.")


# Handlers are closures made per service, not methods or partials: Gradio names each endpoint after
# its function (``/do_ask``, ``/do_debate``, ...), and clients call them by those names.

# --- Ask ----------------------------------------------------------------------------------
def _ask_handler(service: Service) -> Callable[..., AsyncIterator[tuple]]:
    """``do_ask`` over ``service``."""

    async def do_ask(question: str, chat: list[dict], history: list[list[str]]):
        """Stream the answer into the chat; the last yield replaces it with the checked HTML.

        An async generator reading a server-owned job: when the tab closes, Gradio closes this
        generator, and closing ``stream`` cancels the generation within one token."""
        question = _checked(lambda: validate_query(question, service.settings.max_question_chars))
        _require_documents(service)
        chat = list(chat or []) + [{"role": "user", "content": question}, {"role": "assistant", "content": "…"}]
        shown, sources, checked, scope = "", [], [], render.new_scope()
        stream = service.queue.stream(lambda: service.ask_chain.stream(question, [tuple(h) for h in history or []]))
        try:
            async for item in stream:
                if isinstance(item, Queued):
                    chat[-1] = {"role": "assistant", "content": _queued_note(item.ahead)}
                    yield "", chat, history
                    continue
                if isinstance(item, Answer):
                    chat[-1] = {"role": "assistant", "content": render.answer_html(item)}
                    history = list(history or []) + [[question, item.text]]
                    yield "", chat, history
                    continue
                if isinstance(item, SourcesFound):
                    sources = item.passages
                elif isinstance(item, SentenceChecked):
                    checked.append(item.sentence)
                else:
                    shown += item
                chat[-1] = {"role": "assistant", "content": render.live_answer_html(shown, scope, sources, checked)}
                yield "", chat, history
        except _GENERATION_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        finally:
            await stream.aclose()  # finished, failed or abandoned: the job is cancelled if still running

    return do_ask


def _ask_tab(service: Service) -> None:
    """The chat: a question (Enter or the button) streams its answer; the history feeds follow-ups."""
    do_ask = _ask_handler(service)
    with gr.Tab("Ask", id="ask"):
        chat = gr.Chatbot(label="Conversation", elem_id="chat", height=520, sanitize_html=True, render_markdown=False)
        history = gr.State([])
        with gr.Row():
            question = gr.Textbox(label="Question", placeholder="Ask about your articles", elem_id="question", scale=5)
            ask_button = gr.Button("Ask", variant="primary", elem_id="ask-button", scale=1)
        clear = gr.Button("Clear conversation", elem_id="clear")
        question.submit(do_ask, [question, chat, history], [question, chat, history], concurrency_limit=None)
        ask_button.click(do_ask, [question, chat, history], [question, chat, history], concurrency_limit=None)
        clear.click(lambda: ([], []), None, [chat, history])


# --- Debate -------------------------------------------------------------------------------
def _personas(adv_name: str, adv_stance: str, sk_name: str, sk_stance: str) -> tuple[prompts.Persona, prompts.Persona]:
    """The two sides as typed (blank names take the defaults; the chain fills in a blank stance),
    bad names refused before the request waits for the model."""
    try:
        return check_personas(prompts.Persona(adv_name or prompts.ADVOCATE.name, adv_stance or ""),
                              prompts.Persona(sk_name or prompts.SKEPTIC.name, sk_stance or ""))  # fmt: skip
    except DebateError as exc:
        raise gr.Error(str(exc)) from exc


def _debate_handler(service: Service, exports: Path) -> Callable[..., AsyncIterator[tuple]]:
    """``do_debate`` over ``service``, writing each finished debate's Markdown into ``exports``."""

    async def do_debate(motion: str, rounds: float, adv_name: str, adv_stance: str, sk_name: str, sk_stance: str):
        """Stream the turns into the transcript; a closed tab stops the debate (saved as "stopped")."""
        motion = _checked(lambda: validate_query(motion, service.settings.max_question_chars))
        _require_documents(service)
        advocate, skeptic = _personas(adv_name, adv_stance, sk_name, sk_stance)
        scope = render.new_scope()
        turns, live_role, live_text, sources, speakers = [], None, "", [], {}
        stream = service.queue.stream(lambda: service.debate_chain.stream(motion, int(rounds), advocate, skeptic))
        try:
            async for event in stream:
                if isinstance(event, Queued):
                    yield _queued_note(event.ahead), gr.update(), gr.update(visible=False)
                    continue
                if isinstance(event, DebateStarted):
                    sources, speakers = event.debate.sources, event.debate.speakers()
                elif isinstance(event, TurnStarted):
                    live_role, live_text = event.role, ""
                elif isinstance(event, TurnText):
                    live_text += event.text
                elif isinstance(event, TurnFinished):
                    turns.append(event.turn)
                    live_role = None
                elif isinstance(event, Debate):
                    path = exports / f"debate-{event.id}.md"  # one file per debate, in the app's one folder
                    path.write_text(to_markdown(event), encoding="utf-8")
                    html = render.debate_html(speakers, event.turns, event.sources, scope)
                    yield f"Debate {event.id} saved.", html, gr.update(value=str(path), visible=True)
                    return
                live = (live_role, live_text) if live_role else None
                yield "Debating…", render.debate_html(speakers, turns, sources, scope, live), gr.update(visible=False)
        except _GENERATION_ERRORS as exc:
            raise gr.Error(str(exc)) from exc
        finally:
            await stream.aclose()

    return do_debate


def _debate_tab(service: Service, exports: Path) -> None:
    """Motion, rounds and the two sides; the transcript streams, then a Markdown download appears."""
    do_debate = _debate_handler(service, exports)
    with gr.Tab("Debate", id="debate"):
        motion = gr.Textbox(label="Motion", placeholder="Should Washington offer a peace treaty before denuclearization?",
                            elem_id="motion")  # fmt: skip
        with gr.Row():
            rounds = gr.Slider(0, service.settings.debate_max_rounds, value=service.settings.debate_rounds, step=1,
                               label="Rebuttal rounds", elem_id="rounds")  # fmt: skip
            adv_name = gr.Textbox(label="First side", value=prompts.ADVOCATE.name, elem_id="advocate-name")
            sk_name = gr.Textbox(label="Second side", value=prompts.SKEPTIC.name, elem_id="skeptic-name")
        with gr.Accordion("Stances", open=False):
            adv_stance = gr.Textbox(label="First side argues", value=prompts.ADVOCATE.stance, lines=2)
            sk_stance = gr.Textbox(label="Second side argues", value=prompts.SKEPTIC.stance, lines=2)
        start = gr.Button("Start debate", variant="primary", elem_id="start-debate")
        debate_status = gr.Markdown(elem_id="debate-status")
        transcript = gr.HTML(elem_id="transcript")
        download = gr.DownloadButton("Download transcript (Markdown)", visible=False, elem_id="download")
        start.click(do_debate, [motion, rounds, adv_name, adv_stance, sk_name, sk_stance],
                    [debate_status, transcript, download], concurrency_limit=None)  # fmt: skip


# --- Library ------------------------------------------------------------------------------
def _ingest_inputs(files, url: str, text: str, title: str) -> tuple[list[tuple[str, str]], list[str], list[tuple]]:
    """(uploads, URLs, pasted texts) from the form; a URL must be a web address, never a server path."""
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    uploads = [(path, Path(path).name) for path in paths]  # recorded as upload:<name>, not the cache path
    items = []
    if url and url.strip():
        try:
            items.append(require_web_url(url))  # never a path on the server
        except FetchError as exc:
            raise gr.Error(str(exc)) from exc
    texts = [(text, title.strip() or None)] if text and text.strip() else []
    if not uploads and not items and not texts:
        raise gr.Error("Choose files, enter a URL or paste text first.")
    return uploads, items, texts


def _ingest_handler(service: Service) -> Callable[..., tuple]:
    """``do_ingest`` over ``service``: add what the form holds, with a progress bar in passages."""
    library = service.library

    def do_ingest(files, url: str, text: str, title: str, stance: str = "unknown", progress=gr.Progress()):
        uploads, items, texts = _ingest_inputs(files, url, text, title)
        progress(0, desc="reading")

        def report(done: int, total: int, doc_title: str) -> None:
            progress((done, total), desc=f"embedding {doc_title}", unit="passages")

        try:
            results = library.ingest(items, texts=texts, uploads=uploads, progress=report,
                                     stance=None if stance == "unknown" else stance)  # fmt: skip
        except DuplicateUploadError as exc:
            raise gr.Error(str(exc)) from exc
        library.suggest_stances([r.doc_id for r in results if r.status in ("added", "replaced") and r.doc_id])
        return _results_text(results), _documents_table(service), None, "", "", ""

    return do_ingest


def _document_handlers(service: Service) -> tuple[Callable[..., tuple], Callable[..., tuple], Callable[..., tuple]]:
    """``do_set_stance``, ``do_delete`` and ``do_reindex`` over ``service``: each returns the new table."""
    library = service.library

    def do_set_stance(doc_id: str, stance: str):
        try:
            record = library.set_stance((doc_id or "").strip(), stance)
        except (UnknownDocumentError, StanceError) as exc:
            raise gr.Error(str(exc)) from exc
        return f"{record.title}: stance {record.stance}", _documents_table(service)

    def do_delete(doc_id: str):
        try:
            record = library.delete((doc_id or "").strip())
        except UnknownDocumentError as exc:
            raise gr.Error(str(exc)) from exc
        return f"deleted {record.title}", _documents_table(service), ""

    def do_reindex(progress=gr.Progress()):
        n = library.reindex(progress=lambda done, total, t: progress((done, total), desc=f"reindexing {t}"))
        return f"reindexed {n} passages", _documents_table(service)

    return do_set_stance, do_delete, do_reindex


def _library_tab(service: Service, demo: gr.Blocks) -> None:
    """Add (upload, URL, paste), list, re-stance, delete and reindex documents; the list refreshes on load."""
    do_ingest = _ingest_handler(service)
    do_set_stance, do_delete, do_reindex = _document_handlers(service)
    with gr.Tab("Library", id="library"):
        with gr.Row():
            files = gr.File(label="Upload articles (.txt .md .html .pdf)", file_count="multiple", elem_id="upload")
            with gr.Column():
                url = gr.Textbox(label="Add a URL", placeholder="https://...")
                title = gr.Textbox(label="Title for pasted text")
                text = gr.Textbox(label="Or paste an article", lines=6)
                stance = gr.Dropdown(list(STANCES), value="unknown", label="Stance (which side these articles argue)",
                                     elem_id="stance")  # fmt: skip
        add = gr.Button("Add to library", variant="primary", elem_id="add")
        status = gr.Textbox(label="Result", interactive=False, lines=3, elem_id="ingest-status")
        docs = gr.Dataframe(value=_documents_table(service), headers=DOC_COLUMNS, interactive=False, wrap=True,
                            elem_id="documents")  # fmt: skip
        with gr.Row():
            delete_id = gr.Textbox(label="Document id to delete", elem_id="delete-id")
            delete = gr.Button("Delete", variant="stop", elem_id="delete")
            rebuild = gr.Button("Rebuild index")
        with gr.Row():
            stance_id = gr.Textbox(label="Document id", elem_id="stance-id")
            new_stance = gr.Dropdown(list(STANCES), value="advocate", label="Set its stance (no re-embedding)")
            set_stance = gr.Button("Set stance", elem_id="set-stance")
        add.click(do_ingest, [files, url, text, title, stance], [status, docs, files, url, text, title])
        set_stance.click(do_set_stance, [stance_id, new_stance], [status, docs])
        delete.click(do_delete, [delete_id], [status, docs, delete_id])
        rebuild.click(do_reindex, [], [status, docs])
        demo.load(lambda: _documents_table(service), None, docs)


# --- Search -------------------------------------------------------------------------------
def _search_handler(service: Service) -> Callable[..., tuple]:
    """``do_search`` over ``service``: ranked passages, retrieval only (no model, no queue)."""

    def do_search(query: str, k: float):
        try:
            hits = service.retriever.retrieve(query, int(k))
        except QueryError as exc:
            raise gr.Error(str(exc)) from exc
        rows = [[i, f"{h.score:.4f}", h.title, h.text, h.source, f"{h.start}-{h.end}"] for i, h in enumerate(hits, 1)]
        return rows, ("" if rows else "No matching passages. Add articles in the Library tab.")

    return do_search


def _search_tab(service: Service) -> None:
    """A query (Enter or the button) and how many passages; the ranked passages in a table."""
    do_search = _search_handler(service)
    with gr.Tab("Search", id="search"):
        query = gr.Textbox(label="Search the library", placeholder="e.g. security assurances", elem_id="search-box")
        k = gr.Slider(1, 20, value=service.settings.retrieval_k, step=1, label="passages")
        note = gr.Markdown()
        hits = gr.Dataframe(headers=HIT_COLUMNS, interactive=False, wrap=True, elem_id="search-results")
        query.submit(do_search, [query, k], [hits, note])
        gr.Button("Search").click(do_search, [query, k], [hits, note])


def build_blocks(service: Service) -> gr.Blocks:
    """The UI: one tab per job, each built and wired by its own function over ``service``."""
    exports = export_folder()
    with gr.Blocks(title="Debate Assistant") as demo:
        gr.Markdown("# Debate Assistant\nGrounded answers and debates over the articles you add. Every claim cites a passage.")
        _ask_tab(service)
        _debate_tab(service, exports)
        _library_tab(service, demo)
        _search_tab(service)
    return demo


def create_app(service: Service, allow_no_auth: bool = False) -> FastAPI:
    """FastAPI with the REST API at /api (docs at /api/docs) and the Gradio UI at /, all behind
    ``assistant.access`` (one rule for the API, the UI and Gradio's own routes). ``allow_no_auth``
    lifts the loopback-only ``Host`` check of a server without credentials (``--allow-no-auth``)."""
    app = FastAPI(title="Debate Assistant API", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app)
    app.include_router(build_router(service))
    app.add_middleware(AccessMiddleware, rule=AccessRule(service.settings), check_host=not allow_no_auth)
    service.library.repair_in_background()
    demo = build_blocks(service).queue(default_concurrency_limit=4)
    # Gradio checks that a file input names a file the browser uploaded (not "/etc/...", which it would
    # otherwise copy into its cache for us to ingest) only once the Blocks "launched"; mounted on
    # FastAPI they never do, so say they did (gradio.processing_utils._check_allowed; tested).
    demo.has_launched = True
    return gr.mount_gradio_app(app, demo, path="", css=render.CSS, head=render.CITATION_SCRIPT, show_error=True)


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
