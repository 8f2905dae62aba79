"""The web app starts on 127.0.0.1 and its Search and Library actions work through a real client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from assistant.library import Library
from ui import build_app


@pytest.fixture
def running_app(library: Library, articles: Path):
    library.ingest([str(articles / "skeptic.txt")])
    demo = build_app(library).queue()
    demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, share=False, quiet=True)
    try:
        yield demo.local_url, library
    finally:
        demo.close()


def test_app_serves_and_searches(running_app) -> None:
    url, library = running_app
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url, timeout=30).status_code == 200
    client = Client(url, verbose=False)
    table, note = client.predict("Who expelled the inspectors?", 2, api_name="/do_search")
    rows = table["data"]
    assert len(rows) == 2 and note == ""
    assert rows[0][2] == "The Limits of Engagement with Arandia"
    assert any("inspectors" in row[3] for row in rows)


def test_app_adds_pasted_text_and_deletes(running_app) -> None:
    url, library = running_app
    client = Client(url, verbose=False)
    text = "Beekeeping log\n\nThe Alder Row hives produced 31 kilograms of heather honey in August."
    status, docs, *_ = client.predict(None, "", text, "Beekeeping log", api_name="/do_ingest")
    assert status.startswith("added: Beekeeping log")
    assert "Beekeeping log" in [row[1] for row in docs["data"]]
    doc_id = next(row[0] for row in docs["data"] if row[1] == "Beekeeping log")
    status, docs, _ = client.predict(doc_id, api_name="/do_delete")
    assert status == "deleted Beekeeping log"
    assert [row[1] for row in docs["data"]] == ["The Limits of Engagement with Arandia"]
    assert [d.title for d in library.documents()] == ["The Limits of Engagement with Arandia"]


def test_article_markup_reaches_the_table_verbatim_as_plain_text(running_app) -> None:
    url, library = running_app
    library.ingest(texts=[("Odd page\n\n<script>alert('x')</script> The Quarry Lane bakery opens at six.", None)])
    table, _ = Client(url, verbose=False).predict("Quarry Lane bakery", 1, api_name="/do_search")
    assert "<script>alert('x')</script>" in table["data"][0][3]
