"""HTML rendering of answers and sources: escaped first, links only for shown sources."""

from __future__ import annotations

from assistant.present import render
from assistant.core.passage import NumberedPassage, Passage

def test_model_text_is_escaped_and_only_known_markers_become_links() -> None:
    html = render.text_with_links('Fees rose <img src=x onerror="alert(1)"> twice [2] or [7].', "s1", {1, 2})
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert '<a class="cite" href="#s1-2">[2]</a>' in html
    assert "[7]" in html and 'href="#s1-7"' not in html


def test_sources_are_closed_details_with_escaped_title_and_text() -> None:
    text = "Ships <script>alert(1)</script>\n docked."
    source = Passage("d-0002", "d", 2, text, 10, 80, title="<b>Port</b> report", source="/tmp/uploads/port.txt")
    html = render.sources_html([NumberedPassage(3, source)], "s9")
    assert html.count('<details class="source" id="s9-3">') == 1
    assert "&lt;b&gt;Port&lt;/b&gt; report" in html and "<script>" not in html
    assert "port.txt" in html and "/tmp/uploads" not in html  # a file's name, not the server's temp path
    assert "Ships &lt;script&gt;alert(1)&lt;/script&gt; docked." in html


def test_each_answer_gets_its_own_id_scope() -> None:
    assert render.new_scope() != render.new_scope()


def test_the_evidence_span_is_highlighted_and_withdrawn_sentences_are_marked() -> None:
    from assistant.chains.qa import finalize
    from assistant.models.timing import Timing

    text = "Critics say talks reward bad behaviour. The accord let 40,000 tonnes of grain <b>cross</b> the border."
    passage = Passage(id="p-1", doc_id="p", index=0, text=text, start=0, end=len(text), title="Why Talking Works",
                               source="pro.txt", score=1.0)  # fmt: skip
    raw = "The accord let 40,000 tonnes of grain cross the border [1]. The accord let 90,000 tonnes of grain through [1]."
    answer = finalize("q", "q", raw, [passage], Timing())
    shown, rejected = answer.sentences
    assert shown.supported and shown.evidence[0].text == text[shown.evidence[0].start : shown.evidence[0].end]
    assert not rejected.supported and "90,000" in rejected.reason and "90,000" not in answer.text
    html = render.answer_html(answer)
    assert '<mark class="evidence">The accord let 40,000 tonnes of grain &lt;b&gt;cross&lt;/b&gt; the border.</mark>' in html
    assert "withdrawn, not supported by its evidence: The accord let 90,000" in html
