"""Sentence-level context and query understanding: real library, real embedding model."""

from __future__ import annotations

from pathlib import Path

from assistant.core import prompts
from assistant.retrieval.context import LIST_STRETCH
from assistant.storage.library import Library
from assistant.chains.qa import AskChain
from assistant.retrieval.query import named_documents, search_text
from assistant.retrieval.retrieval import HybridRetriever
from tests.fakes import ScriptedChatModel

# A list announced in one paragraph whose items are long enough to land in later passages.
LIST_ARTICLE = """Why the Ferry Matters

The Velmar ferry carries most of the island's trade, and its timetable is argued about every winter.

There are many reasons to keep the ferry running all year, but here are just three.

First, the hospital on Osk Island receives its medicines, its oxygen bottles and its visiting surgeons only by the morning boat, and a winter without the ferry would leave the island's doctors without supplies for weeks at a time.

The harbour master keeps a log of every crossing, and the log shows that the boat has been late only four times in the last ten years, even in storms.

Second, the fishing cooperative of Port Osk sells its catch on the mainland, and every week without a crossing costs its forty families the income from the fish they cannot get to market before it spoils.

The cooperative was founded by twelve families after the cannery closed, and it now runs its own cold store beside the pier.

Third, children from the outer islands attend the secondary school in Port Osk and go home on the evening boat.

The council will vote on the winter timetable in March.
"""


def _chain(library: Library) -> AskChain:
    return AskChain(HybridRetriever(library), ScriptedChatModel(rule=lambda m: "", calls=[]))


def test_a_list_spread_over_consecutive_passages_stays_together(library: Library, tmp_path: Path) -> None:
    article = tmp_path / "ferry.txt"
    article.write_text(LIST_ARTICLE)
    library.ingest([str(article)])
    chain = _chain(library)
    question = "What are the three reasons to keep the ferry running?"
    passages = chain.retriever.retrieve(question, 2)
    assert not any("Third," in p.text for p in passages)  # the last item is beyond the top passages...
    numbered, shown = chain.sources(question, passages)
    text = " ".join(shown)
    for item in ("First, the hospital", "Second, the fishing cooperative", "Third, children"):
        assert item in text  # ...but the context carries every item of the announced list
    assert len(" ".join(shown)) <= chain.settings.context_tokens * 4 * LIST_STRETCH + 200  # a list may stretch the budget


def test_context_fits_its_budget_and_holds_no_cut_sentences(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    chain = _chain(library)
    question = "What did the Harbor Accord reopen?"
    passages = chain.retriever.retrieve(question, 5)
    numbered, shown = chain.sources(question, passages)
    assert sum(len(t) + 1 for t in shown) <= chain.settings.context_tokens * 4 + 100  # + "..." between sentences
    assert any("Tessaly rail link" in t for t in shown)
    assert all(t[-1] in ".!?\"”’')" for t in shown)  # no sentence a passage boundary cut off
    whole = sum(len(p.text) for p in passages)
    assert sum(len(t) for t in shown) < whole  # sentences, not whole passages
    # One header per document, every passage on one numbered line under it.
    user = prompts.answer_user_prompt(question, numbered, shown)
    sources = user.partition("Sources:\n")[2].partition("\n\nQuestion: ")[0]
    headers = [line for line in sources.splitlines() if line.startswith("From (")]
    assert len(headers) == len({p.doc_id for p in numbered})
    assert [line.split("]")[0] for line in sources.splitlines() if line.startswith("[")] == [
        f"[{n}" for n in range(1, len(numbered) + 1)
    ]


def test_whole_passage_mode_is_still_available(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    library.settings.context_mode = "passages"
    chain = _chain(library)
    passages = chain.retriever.retrieve("What did the Harbor Accord reopen?", 3)
    numbered, shown = chain.sources("What did the Harbor Accord reopen?", passages)
    assert numbered == passages and shown == [p.text for p in passages]


def test_instruction_words_are_not_searched() -> None:
    assert search_text("Argue as a skeptic: why did the ferry stop?") == "why did the ferry stop?"
    assert search_text("Debate: should the ferry run in winter?") == "should the ferry run in winter?"
    assert search_text("What caused the delay, according to the sources?") == "What caused the delay?"
    assert search_text("Debate:") == "Debate:"  # nothing would be left: searched as written


class _Doc:
    def __init__(self, id: str, author: str | None, publisher: str | None = None) -> None:
        self.id, self.author, self.publisher = id, author, publisher


def test_named_authors_and_publishers_pick_their_documents() -> None:
    docs = [_Doc("a", "Mira Castell"), _Doc("b", "Tomas Reyne", "Harbour Council (blog)"), _Doc("c", None)]
    assert named_documents("Do Castell and Reyne agree?", docs) == ["a", "b"]
    assert named_documents("What does the Harbour Council say?", docs) == ["b"]
    assert named_documents("What do castles say?", docs) == []  # whole words, as written
    assert named_documents("Do both authors favour talks?", docs) == ["a", "b", "c"]


def test_a_named_author_ranks_their_article_first(library: Library, articles: Path) -> None:
    library.ingest([str(articles)])
    retriever = HybridRetriever(library)
    hits = retriever.retrieve("What does Reyne say about talks?", 3)
    assert hits[0].author == "Tomas Reyne"
