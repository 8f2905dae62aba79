"""HTML rendering of answers and sources: escaped first, links only for shown sources."""

from __future__ import annotations

from dataclasses import dataclass

from assistant import render


@dataclass
class Source:
    title: str
    source: str
    start: int
    end: int
    text: str


def test_model_text_is_escaped_and_only_known_markers_become_links() -> None:
    html = render.text_with_links('Fees rose <img src=x onerror="alert(1)"> twice [2] or [7].', "s1", {1, 2})
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert '<a class="cite" href="#s1-2">[2]</a>' in html
    assert "[7]" in html and 'href="#s1-7"' not in html


def test_sources_are_closed_details_with_escaped_title_and_text() -> None:
    source = Source("<b>Port</b> report", "/tmp/uploads/port.txt", 10, 80, "Ships <script>alert(1)</script>\n docked.")
    html = render.sources_html([(3, source)], "s9")
    assert html.count('<details class="source" id="s9-3">') == 1
    assert "&lt;b&gt;Port&lt;/b&gt; report" in html and "<script>" not in html
    assert "port.txt" in html and "/tmp/uploads" not in html  # a file's name, not the server's temp path
    assert "Ships &lt;script&gt;alert(1)&lt;/script&gt; docked." in html


def test_each_answer_gets_its_own_id_scope() -> None:
    assert render.new_scope() != render.new_scope()
