"""HTML for answers, debate turns and their sources, safe by construction.

Everything that comes from an article or from the model is escaped first (``html.escape``)
and only then are our own tags added: a valid ``[n]`` becomes a link that opens source n,
and each source is a ``<details>`` block with its title, source and passage text. So an
article or a reply containing ``<script>`` or ``<img onerror=...>`` is shown as text, never run.
The click handler (``CITATION_SCRIPT``) opens the ``<details>`` the link's ``#id`` names and
scrolls to it (the chat's sanitiser keeps ``href``, ``id`` and ``class``, not ``data-*``; the
Debate and Spar transcripts are ``gr.HTML``, which keeps ``data-*``, so their cards, claims and
scorecard carry machine-readable ``data-`` attributes too).
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Collection, Sequence

from assistant.chains.flow import DROPPED, LAST_SPEECH, NEW_IN_REBUTTAL
from assistant.core.passage import NumberedPassage, Passage
from assistant.core.sides import side_label
from assistant.core.text import CITATION as _MARKER

CITATION_SCRIPT = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target.closest("a.cite");
  if (!link) return;
  event.preventDefault();
  const target = document.getElementById((link.getAttribute("href") || "").slice(1));
  if (!target) return;
  target.open = true;
  target.classList.add("cited");
  target.scrollIntoView({block: "nearest"});
});
</script>
"""

CSS = """
.cite { font-weight: 600; text-decoration: none; cursor: pointer; }
details.source { margin: 0.2em 0; }
details.source.cited > summary { background: #fff3c4; }
.turn { border-left: 4px solid #999; padding: 0.3em 0.8em; margin: 0.6em 0; }
.turn.advocate { border-color: #2a7ae2; } .turn.skeptic { border-color: #d9534f; } .turn.moderator { border-color: #5cb85c; }
.flag { color: #8a6d3b; font-size: 0.9em; }
mark.evidence { background: #c8f0c8; }
.card { margin: 0.4em 0; } .card .tag { font-weight: 600; } .card mark { background: #fff3c4; }
.card blockquote { margin: 0.2em 0 0.2em 1em; } .card .label { font-family: monospace; }
.turn.user { background: #f7f7f7; }
ul.claims { list-style: none; padding-left: 0; margin: 0.2em 0; } li.claim { margin: 0.3em 0; }
li.claim .label { font-family: monospace; } li.claim blockquote { margin: 0.2em 0 0.2em 1.5em; font-size: 0.95em; }
.mark { font-weight: 600; padding: 0 0.3em; border-radius: 3px; white-space: nowrap; }
.mark-supported { background: #c8f0c8; color: #1d5e1d; } .mark-contradicted { background: #f6c6c4; color: #8b1c17; }
.mark-not-found { background: #e8e8e8; color: #555; }
table.scorecard { border-collapse: collapse; margin: 0.4em 0; } table.scorecard th, table.scorecard td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
table.scorecard td.count { text-align: right; }
table.flow { border-collapse: collapse; margin: 0.4em 0; font-size: 0.92em; }
table.flow th, table.flow td { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; }
table.flow th.advocate { border-top: 3px solid #2a7ae2; } table.flow th.skeptic { border-top: 3px solid #d9534f; }
.flow-cell { margin: 0.15em 0; } .flow-cell .label { font-family: monospace; }
.flow-cell.dropped { background: #fbe3e1; } .flow-cell .dropped-note { color: #8b1c17; font-weight: 600; }
"""


def new_scope() -> str:
    """A prefix that keeps the ids of one answer's sources apart from every other answer's."""
    return "s" + uuid.uuid4().hex[:10]


def text_with_links(text: str, scope: str, numbers: set[int], quotes_are_sources: bool = False) -> str:
    """Escaped ``text`` with each ``[n]`` for a known source turned into a link to it.

    ``quotes_are_sources``: the text was assembled by code and each “…” in it holds source text (a
    card's quote, or a tag cut from one, in a debate or spar turn). A bracketed number inside such
    a quote is the article's own footnote, not a citation of source n: it stays plain text.
    """
    escaped = html.escape(text).replace("\n", "<br>")

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in numbers or (quotes_are_sources and _inside_quote(escaped, match.start())):
            return match.group(0)
        return f'<a class="cite" href="#{scope}-{n}">[{n}]</a>'

    return _MARKER.sub(link, escaped)


def _inside_quote(text: str, at: int) -> bool:
    """Whether position ``at`` of ``text`` lies between an opening “ and its closing ”."""
    before = text[:at]
    return before.count("“") > before.count("”")


def _highlighted(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Escaped ``text`` (spacing collapsed) with each ``(start, end)`` span wrapped in ``<mark>``."""
    pieces, at = [], 0
    for start, end in sorted(set(spans)):
        start = max(start, at)
        if not 0 <= start < end <= len(text):
            continue
        pieces.append(html.escape(text[at:start]))
        pieces.append(f'<mark class="evidence">{html.escape(text[start:end])}</mark>')
        at = end
    pieces.append(html.escape(text[at:]))
    return re.sub(r"\s+", " ", "".join(pieces)).strip()


def sources_html(sources: Sequence[NumberedPassage], scope: str, heading: str = "Sources",
                 evidence: dict[int, list[tuple[int, int]]] | None = None) -> str:  # fmt: skip
    """One closed ``<details>`` per numbered source: title, source, offsets, then the passage.

    ``evidence``: for a source number, the spans of its text that cited sentences were verified
    against; they are highlighted, so the reader sees exactly what backs each claim.
    """
    if not sources:
        return ""
    blocks = []
    for numbered in sources:
        number, source = numbered.number, numbered.passage
        where = source.source if "://" in source.source else Path(source.source).name
        summary = f"[{number}] {html.escape(source.title)} · {html.escape(where)} · chars {source.start}-{source.end}"
        body = _highlighted(source.text, (evidence or {}).get(number, []))
        blocks.append(
            f'<details class="source" id="{scope}-{number}"><summary>{summary}</summary>'
            f"<blockquote>{body}</blockquote></details>"
        )
    return f'<div class="sources"><strong>{html.escape(heading)}</strong>{"".join(blocks)}</div>'


def evidence_spans(sentences: Sequence) -> dict[int, list[tuple[int, int]]]:
    """Source number -> evidence spans of the *supported* sentences (objects or dicts alike)."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for sentence in sentences:
        data = sentence if isinstance(sentence, dict) else sentence.as_dict()
        if not data["supported"]:
            continue
        for span in data["evidence"]:
            if span.get("number") is not None:
                spans.setdefault(span["number"], []).append((span["start"], span["end"]))
    return spans


def withdrawn(sentences: Sequence) -> list[str]:
    """Sentences the verifier rejected, with why: never shown as supported."""
    out = []
    for sentence in sentences:
        data = sentence if isinstance(sentence, dict) else sentence.as_dict()
        if not data["supported"]:
            out.append(f"{data['text']} ({data['reason']})" if data["reason"] else data["text"])
    return out


def flags_html(flags: Sequence[tuple[str, Sequence[str]]]) -> str:
    items = [f"<li>{html.escape(label)}: {html.escape(item)}</li>" for label, found in flags for item in found]
    return f'<ul class="flag">{"".join(items)}</ul>' if items else ""


def answer_html(answer) -> str:
    """An answer with clickable citations, its sources panel and any flags."""
    scope = new_scope()
    parts = [text_with_links(answer.text, scope, {c.number for c in answer.citations})]
    if answer.withheld:
        parts.append('<p class="flag">The model\'s reply was withheld: none of its citations supported it.</p>')
    if answer.not_an_answer:
        parts.append(f'<p class="flag">Not shown as the answer: {html.escape(answer.relevance_reason)}.</p>')
    parts.append(
        flags_html(
            [
                ("removed invalid citation", answer.invalid_citations),
                ("no citation", answer.uncited_sentences),
                ("withdrawn, not supported by its evidence", withdrawn(answer.sentences)),
            ]
        )
    )
    parts.append(sources_html(answer.citations, scope, evidence=evidence_spans(answer.sentences)))
    return "".join(parts)


def live_answer_html(text: str, scope: str, sources: Sequence[Passage], checked: Sequence) -> str:
    """An answer while it is made: the streamed text, each sentence's verdict as its check ends
    (✓ verified, ✗ withdrawn and why), and the sources, shown from the moment they are found."""
    # Markers stay plain text until the final answer replaces this view (a link clicked now would
    # point at a panel about to be replaced).
    parts = [text_with_links(text, scope, set()) if text else '<p class="flag">Reading the sources…</p>']
    if checked:
        marks = []
        for sentence in checked:
            data = sentence if isinstance(sentence, dict) else sentence.as_dict()
            mark, why = ("✓ verified", "") if data["supported"] else ("✗ withdrawn", f" ({data['reason']})" if data["reason"] else "")
            marks.append(f"<li>{mark}: {text_with_links(data['text'], scope, set())}{html.escape(why)}</li>")
        parts.append(f'<ul class="checks">{"".join(marks)}</ul>')
    parts.append(sources_html([NumberedPassage(n, p) for n, p in enumerate(sources, 1)], scope, heading="Sources found"))
    return "".join(parts)


def cards_html(cards: Sequence, scope: str, numbers: set[int], stances: dict[int, str] | None = None) -> str:
    """Evidence cards: label and tag, what a rebuttal card answers, the quote highlighted, its source link.

    Each card's ``<div>`` carries ``data-label``, ``data-source`` (its [n]) and, with ``stances``
    (source number -> stance), ``data-stance``: the stance of the document it quotes."""
    parts = []
    for card in cards:
        stance = f' data-stance="{html.escape(stances.get(card.source, "unknown"))}"' if stances is not None else ""
        data = f' data-label="{html.escape(card.label)}" data-source="{int(card.source)}"{stance}'
        answers = f" <em>(answers {html.escape(card.answers)})</em>" if card.answers else ""
        if getattr(card, "answer_note", ""):
            answers = f' <span class="flag">({html.escape(card.answer_note)})</span>'
        trimmed = "" if card.tag_from == "model" else ' <span class="flag">(tag: trimmed quote)</span>'
        source = text_with_links(f"[{card.source}]", scope, numbers)
        parts.append(
            f'<div class="card"{data}><span class="label">{html.escape(card.label)}</span> '
            f'<span class="tag">{html.escape(card.tag)}</span>{answers}{trimmed}'
            f"<blockquote><mark>{html.escape(card.quote)}</mark> {source}</blockquote></div>"
        )
    return "".join(parts)


def debate_html(speakers: dict[str, str], turns: Sequence, sources: Sequence, scope: str, live: tuple[str, str] | None = None) -> str:
    """The transcript so far (and the turn being generated, as plain escaped text), then the sources."""
    numbers = {s.number for s in sources}
    blocks = []
    evidence: dict[int, list[tuple[int, int]]] = {}
    for turn in turns:
        for number, spans in evidence_spans(turn.sentences).items():
            evidence.setdefault(number, []).extend(spans)
        if turn.cards:
            body = cards_html(turn.cards, scope, numbers, {s.number: s.stance for s in sources})
        else:
            body = text_with_links(turn.text, scope, numbers, quotes_are_sources=True).replace("\n", "<br>")
        flags = flags_html([
            ("no citation", turn.uncited_sentences), ("withdrawn, not supported", withdrawn(turn.sentences)),
            ("removed, repeats an earlier turn", turn.repeated_sentences),
        ])  # fmt: skip
        blocks.append(
            f'<div class="turn {html.escape(turn.role)}"><strong>{html.escape(turn.speaker)}</strong> '
            f"<em>({html.escape(turn.kind)})</em><div class=\"turn-body\">{body}</div>{flags}</div>"
        )
    if live is not None:
        role, text = live
        blocks.append(
            f'<div class="turn {html.escape(role)}"><strong>{html.escape(speakers.get(role, role))}</strong> '
            f"<em>(speaking)</em><div class=\"turn-body\">{html.escape(text)}</div></div>"
        )
    return "".join(blocks) + sources_html(sources, scope, heading="Sources of this debate", evidence=evidence)


# --- spar -------------------------------------------------------------------------------------
_MARK_SIGNS = {"supported": "✓", "contradicted": "✗", "not found": "?"}


def _slug(mark: str) -> str:
    return re.sub(r"[^a-z]+", "-", mark.lower()).strip("-")


def claims_html(claims: Sequence, scope: str, numbers: set[int], checking: Collection[str] = ()) -> str:
    """A user's spar sentences, each with its mark shown and in ``data-mark`` (supported,
    contradicted, not found), its label in ``data-label`` and the deciding passage quoted with its [n].
    A sentence whose label is in ``checking`` has the rules' mark only, the local model's still to come:
    it says "checking…" and has ``data-final="false"``.

    The sentence, the quote and the verifier's reason are escaped: they come from the user and the articles."""
    items = []
    for claim in claims:
        slug = _slug(claim.mark)
        sign = _MARK_SIGNS.get(claim.mark, "")
        source = int(claim.source) if claim.source else None
        evidence = ""
        if claim.quote and source is not None:
            lead = "closest passage: " if claim.mark == "not found" else ""
            link = text_with_links(f"[{source}]", scope, numbers)
            evidence = f'<blockquote class="claim-evidence">{lead}“{html.escape(claim.quote)}” {link}</blockquote>'
        elif claim.mark == "not found":
            evidence = '<blockquote class="claim-evidence">no passage in the library says this</blockquote>'
        why = f"closest passage: {claim.reason}" if claim.mark == "not found" and source is None else claim.reason
        reason = f' <span class="flag">({html.escape(why)})</span>' if claim.reason and claim.mark != "supported" else ""
        final = claim.label not in checking
        pending = "" if final else ' <span class="flag checking">checking…</span>'
        items.append(
            f'<li class="claim claim-{slug}" data-mark="{html.escape(claim.mark)}" data-label="{html.escape(claim.label)}"'
            f' data-source="{source if source is not None else ""}" data-final="{str(final).lower()}">'
            f'<span class="label">{html.escape(claim.label)}</span> '
            f'<span class="claim-text">{html.escape(claim.text)}</span> '
            f'<span class="mark mark-{slug}">{sign} {html.escape(claim.mark)}</span>{pending}{reason}{evidence}</li>'
        )
    return f'<ul class="claims">{"".join(items)}</ul>' if items else ""


def _claim_spans(claims: Sequence, sources: Sequence) -> dict[int, list[tuple[int, int]]]:
    """Source number -> where the quotes of *supported* claims sit in it (highlighted in the sources panel)."""
    texts = {s.number: s.text for s in sources}
    spans: dict[int, list[tuple[int, int]]] = {}
    for claim in claims:
        if claim.mark != "supported" or not claim.source or not claim.quote:
            continue
        at = texts.get(claim.source, "").find(claim.quote)
        if at >= 0:
            spans.setdefault(claim.source, []).append((at, at + len(claim.quote)))
    return spans


@dataclass
class SparLive:
    """The turn being played: its role and kind, the marks and cards so far, any plain text.
    ``checking``: the labels whose mark is the rules' only (provisional), the local model's to come."""

    role: str
    kind: str
    claims: list = field(default_factory=list)
    cards: list = field(default_factory=list)
    text: str = ""
    checking: set = field(default_factory=set)

    def mark(self, claim, final: bool) -> None:
        """A sentence's mark: a final one takes the place of the provisional one of the same label."""
        at = next((i for i, c in enumerate(self.claims) if c.label == claim.label), None)
        if at is None:
            self.claims.append(claim)
        else:
            self.claims[at] = claim
        (self.checking.discard if final else self.checking.add)(claim.label)


def spar_html(speakers: dict[str, str], user_side: str, turns: Sequence, sources: Sequence, scope: str,
              live: SparLive | None = None) -> str:  # fmt: skip
    """A spar session: the user's turns as marked sentences, the assistant's as cards (with the
    stance of each card's source), the turn being played, then the session's sources."""
    numbers = {s.number for s in sources}
    stances = {s.number: s.stance for s in sources}

    def block(role: str, kind: str, body: str, speaking: bool = False) -> str:
        user = role == user_side
        name = f"{speakers.get(role, role)} ({role})" if user else speakers.get(role, role)
        state = "checking…" if speaking and user else "answering…" if speaking else ""
        note = f' <span class="flag">{state}</span>' if state else ""
        return (
            f'<div class="turn {html.escape(role)}{" user" if user else ""}" data-role="{html.escape(role)}"'
            f' data-kind="{html.escape(kind)}"><strong>{html.escape(name)}</strong> <em>({html.escape(kind)})</em>{note}'
            f'<div class="turn-body">{body}</div></div>'
        )

    def body(claims: Sequence, cards: Sequence, text: str, checking: Collection[str] = ()) -> str:
        if claims:
            return claims_html(claims, scope, numbers, checking)
        if cards:
            return cards_html(cards, scope, numbers, stances)
        return text_with_links(text, scope, numbers)

    blocks, claims = [], []
    for turn in turns:
        claims += turn.claims
        blocks.append(block(turn.role, turn.kind, body(turn.claims, turn.cards, turn.text if not turn.claims else "")))
    if live is not None:
        claims += live.claims
        live_body = body(live.claims, live.cards, live.text, live.checking)
        blocks.append(block(live.role, live.kind, live_body, speaking=True))
    evidence = _claim_spans(claims, sources)
    return "".join(blocks) + sources_html(sources, scope, heading="Sources of this session", evidence=evidence)


def scorecard_html(card) -> str:
    """A spar scorecard as a table (``id="scorecard"``; each count in a cell with ``data-count``
    and ``data-role``), then the user's unused evidence. ``card``: ``assistant.chains.spar.Scorecard``."""
    columns = [("claims", "claims"), ("supported", "supported"), ("contradicted", "contradicted"), ("not found", "not_found")]
    head = "".join(f"<th>{name}</th>" for name, _ in columns)
    rows = []
    for side in card.sides:
        cells = "".join(
            f'<td class="count" data-role="{html.escape(side.role)}" data-count="{_slug(name)}">{int(getattr(side, attr))}</td>'
            for name, attr in columns
        )
        name = html.escape(side_label(side.speaker, side.role))
        rows.append(f'<tr data-role="{html.escape(side.role)}"><td>{name}</td>{cells}</tr>')
    state = "final" if card.complete else "so far"
    table = (
        f'<table class="scorecard" id="scorecard" data-complete="{str(card.complete).lower()}">'
        f"<caption>Scorecard ({state})</caption><tr><th>side</th>{head}</tr>{''.join(rows)}</table>"
    )
    unused = ""
    if card.unused:
        items = "".join(f'<li data-source="{int(u.source)}">“{html.escape(u.quote)}” [{int(u.source)}]</li>'
                        for u in card.unused)  # fmt: skip
        unused = f'<div class="unused"><strong>Evidence for your side you did not use</strong><ul>{items}</ul></div>'
    ballot = ""
    if card.ballot_text:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in card.ballot_text.splitlines())
        ballot = f'<div class="ballot" id="spar-ballot"><strong>Ballot</strong><ul>{items}</ul></div>'
    return table + unused + ballot


# --- flow sheet -------------------------------------------------------------------------------
def _flow_cell_html(cell) -> str:
    """One argument: label, text, [n], a claim's mark badge, and what became of it unanswered."""
    source = f" [{int(cell.source)}]" if cell.source else ""
    mark = ""
    if cell.mark:
        sign = _MARK_SIGNS.get(cell.mark, "")
        mark = f' <span class="mark mark-{_slug(cell.mark)}">{sign} {html.escape(cell.mark)}</span>'
    note = ""
    if cell.status == DROPPED:
        note = ' <span class="dropped-note">dropped</span>'
    elif cell.status == LAST_SPEECH:
        note = ' <span class="flag">last speech</span>'
    elif cell.status == NEW_IN_REBUTTAL:
        note = ' <span class="flag">new in a rebuttal</span>'
    return (
        f'<div class="flow-cell {html.escape(cell.status.replace("_", "-"))}" data-label="{html.escape(cell.label)}"'
        f' data-status="{html.escape(cell.status)}"><span class="label">{html.escape(cell.label)}</span> '
        f"{html.escape(cell.text)}{source}{mark}{note}</div>"
    )


def flow_html(flow) -> str:
    """The flow sheet as a table (``class="flow"``): one column per speech, one row per argument;
    each argument a ``div.flow-cell`` with ``data-label`` and ``data-status`` (a dropped one has the
    class ``dropped`` and says so). Empty when there is nothing to flow. ``flow``: ``assistant.chains.flow.Flow``."""
    if not flow.columns:
        return ""
    head = "".join(
        f'<th class="{html.escape(c.role)}" data-turn="{int(c.turn)}">{html.escape(c.speaker)} '
        f"<em>({html.escape(c.kind)})</em></th>"
        for c in flow.columns
    )
    rows = []
    for row in flow.rows:
        cells = ["".join(_flow_cell_html(c) for c in column) for column in row.by_column(len(flow.columns))]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    dropped = len(flow.dropped)
    caption = f"Flow ({dropped} dropped argument{'s' if dropped != 1 else ''})" if dropped else "Flow"
    return f'<table class="flow"><caption>{caption}</caption><tr>{head}</tr>{"".join(rows)}</table>'
