"""The web app (Gradio): a thin layer over ``assistant.library`` and ``assistant.retrieval``.

Tabs: **Search** (ranked passages with their sources) and **Library** (upload files, add a
URL, paste text, see and delete documents, rebuild the index). Article text is shown in
table cells as plain text, never as HTML. Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import assistant  # noqa: F401  (sets the offline environment before gradio is imported)

import gradio as gr

from assistant.library import Library, UnknownDocumentError
from assistant.retrieval import HybridRetriever, QueryError
from assistant.settings import Settings

DOC_COLUMNS = ["id", "title", "author", "date", "passages", "source"]
HIT_COLUMNS = ["rank", "score", "title", "passage", "source", "chars"]


def _documents_table(library: Library) -> list[list[str]]:
    return [[d.id, d.title, d.author or "", d.date or "", str(d.n_passages), d.source] for d in library.documents()]


def _results_text(results) -> str:
    lines = []
    for r in results:
        removed = ", ".join(f"{k} {v}" for k, v in sorted(r.removed.items()))
        lines.append(f"{r.status}: {r.title or r.item} - {r.message}" + (f" (removed: {removed})" if removed else ""))
    return "\n".join(lines) or "nothing to ingest"


def build_app(library: Library) -> gr.Blocks:
    retriever = HybridRetriever(library)

    def do_search(query: str, k: float):
        try:
            hits = retriever.retrieve(query, int(k))
        except QueryError as exc:
            raise gr.Error(str(exc)) from exc
        rows = [[i, f"{h.score:.4f}", h.title, h.text, h.source, f"{h.start}-{h.end}"] for i, h in enumerate(hits, 1)]
        return rows, ("" if rows else "No matching passages. Add articles in the Library tab.")

    def do_ingest(files, url: str, text: str, title: str, progress=gr.Progress()):
        items = [f if isinstance(f, str) else f.name for f in (files or [])]
        if url and url.strip():
            items.append(url.strip())
        texts = [(text, title.strip() or None)] if text and text.strip() else []
        if not items and not texts:
            raise gr.Error("Choose files, enter a URL or paste text first.")
        progress(0, desc="reading")

        def report(done: int, total: int, doc_title: str) -> None:
            progress((done, total), desc=f"embedding {doc_title}", unit="passages")

        results = library.ingest(items, texts=texts, progress=report)
        return _results_text(results), _documents_table(library), None, "", "", ""

    def do_delete(doc_id: str):
        try:
            record = library.delete((doc_id or "").strip())
        except UnknownDocumentError as exc:
            raise gr.Error(str(exc)) from exc
        return f"deleted {record.title}", _documents_table(library), ""

    def do_reindex(progress=gr.Progress()):
        n = library.reindex(progress=lambda done, total, t: progress((done, total), desc=f"reindexing {t}"))
        return f"reindexed {n} passages", _documents_table(library)

    with gr.Blocks(title="Debate Assistant") as demo:
        gr.Markdown("# Debate Assistant\nGrounded answers and debates over the articles you add.")
        with gr.Tab("Search"):
            query = gr.Textbox(label="Search the library", placeholder="e.g. security assurances", elem_id="search-box")
            k = gr.Slider(1, 20, value=library.settings.retrieval_k, step=1, label="passages")
            note = gr.Markdown()
            hits = gr.Dataframe(headers=HIT_COLUMNS, interactive=False, wrap=True, elem_id="search-results")
            query.submit(do_search, [query, k], [hits, note])
            gr.Button("Search").click(do_search, [query, k], [hits, note])
        with gr.Tab("Library"):
            with gr.Row():
                files = gr.File(label="Upload articles (.txt .md .html .pdf)", file_count="multiple")
                with gr.Column():
                    url = gr.Textbox(label="Add a URL", placeholder="https://...")
                    title = gr.Textbox(label="Title for pasted text")
                    text = gr.Textbox(label="Or paste an article", lines=6)
            add = gr.Button("Add to library", variant="primary")
            status = gr.Textbox(label="Result", interactive=False, lines=3)
            docs = gr.Dataframe(
                value=_documents_table(library), headers=DOC_COLUMNS, interactive=False, wrap=True, elem_id="documents"
            )
            with gr.Row():
                delete_id = gr.Textbox(label="Document id to delete")
                delete = gr.Button("Delete", variant="stop")
                rebuild = gr.Button("Rebuild index")
            add.click(do_ingest, [files, url, text, title], [status, docs, files, url, text, title])
            delete.click(do_delete, [delete_id], [status, docs, delete_id])
            rebuild.click(do_reindex, [], [status, docs])
            demo.load(lambda: _documents_table(library), None, docs)
    return demo


def main(host: str = "127.0.0.1", port: int = 7860) -> None:
    library = Library(Settings())
    build_app(library).queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=False, show_error=True
    )


if __name__ == "__main__":
    main()
