"""Sentence-level context: the few sentences of the retrieved passages that bear on the question.

Passages are the unit of recall (search) and of citation (``[n]`` names a passage), but
five whole passages are ~500-600 prompt tokens, and on two cores llama.cpp reads only
~40-70 prompt tokens/s: the first word of an answer waited 12-15 s for text that mostly
did not bear on the question. So the prompt is built from sentences instead:

1. Candidates: every sentence of the top passages, plus the next passage of the same
   document when a passage announces a list ("here are just three", "proposals that:") or
   holds an ordinal run ("First, ... Second, ..."), so a list spread over consecutive
   passages stays together.
2. Rank: cosine similarity between the sentence and the question (the embedding model the
   library already has; sentence vectors are cached per passage), plus the share of the
   question's content words the sentence holds, plus a small prior for the passage's rank.
3. Select the best sentences within ``context_tokens`` (about 4 characters a token), and
   keep each announced list's items with it; show them grouped by passage, in text order,
   with "..." where sentences were skipped.

Citations still name passages; the sentence offsets are what the verifier aligns against.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.core.lexicon import topic_stems
from assistant.core.passage import Passage
from assistant.core.text import Sentence, sentence_spans

CHARS_PER_TOKEN = 4
# A sentence that announces a list whose items follow.
_ANNOUNCES_LIST = re.compile(
    r":\s*$|\b(here (are|is)|the following|as follows|(two|three|four|five|six|several|these) "
    r"(main |key |strategic |big )?(reasons|ways|steps|points|proposals|lessons|options|things|conditions))\b",
    re.IGNORECASE,
)
_ORDINAL_START = re.compile(r"^\W*(first|second|third|fourth|fifth|finally|lastly)\b|^\W*[–—•-]\s", re.IGNORECASE)
# Weights of the three ranking signals (cosine is in [-1, 1], overlap and prior in [0, 1]).
COSINE_WEIGHT = 1.0
OVERLAP_WEIGHT = 0.5
RANK_PRIOR_WEIGHT = 0.15
FOLLOWER_SHARE = 0.85
MAX_LIST_PASSAGES = 6
LIST_ANNOUNCER_RANKS = 2
# A list the question asks for is shown whole, up to this many times the budget: its items are the
# answer ("the three reasons"), and a cut list is a wrong answer, not a shorter one.
LIST_STRETCH = 2
_TERMINAL = ('.', '!', '?', '…', '"', '”', '’', "'", ')', ':')


def _whole_sentences(passage: Passage) -> list[Sentence]:
    """The passage's sentences without the pieces a passage boundary cut off (consecutive
    passages overlap, so the whole sentence is in the neighbour), without the title line and
    without the sentences set aside at ingest (they address the assistant: never evidence)."""
    sentences = sentence_spans(passage.text)
    whole = []
    for i, sentence in enumerate(sentences):
        cut_at_end = i == len(sentences) - 1 and not sentence.text.endswith(_TERMINAL)
        cut_at_start = i == 0 and sentence.text[:1].islower()
        set_aside = passage.sets_aside(sentence.start, sentence.end)
        if cut_at_end or cut_at_start or set_aside or sentence.text == passage.title:
            continue
        whole.append(sentence)
    return whole


def _carries_list(passage: Passage) -> bool:
    """The passage announces a list or holds one of its items, so the next passage may continue it."""
    return any(_ANNOUNCES_LIST.search(s.text) or _ORDINAL_START.search(s.text) for s in sentence_spans(passage.text))


@dataclass
class ChosenEvidence:
    """A numbered source of the prompt: the passage and the sentences of it that are shown."""

    passage: Passage
    sentences: list[Sentence] = field(default_factory=list)

    def shown_text(self) -> str:
        """The chosen sentences in text order, "..." between sentences that are not adjacent."""
        parts: list[str] = []
        previous_end: int | None = None
        for sentence in sorted(self.sentences, key=lambda s: s.start):
            if previous_end is not None and self.passage.text[previous_end : sentence.start].strip():
                parts.append("...")
            parts.append(sentence.text)
            previous_end = sentence.end
        return " ".join(parts)


@dataclass(frozen=True)
class _Candidate:
    origin: int  # position of the passage in the candidate list
    sentence: Sentence
    score: float
    in_list: bool  # an item of a list announced just before it


class ContextBuilder:
    """Chooses the evidence sentences for a question from ranked passages."""

    def __init__(
        self,
        embed_texts: Callable[[list[str]], list[list[float]]],
        embed_query: Callable[[str], list[float]],
        neighbour: Callable[[Passage], Passage | None],
        budget_tokens: int,
    ) -> None:
        self._embed_texts = embed_texts
        self._embed_query = embed_query
        self._neighbour = neighbour
        self.budget_chars = budget_tokens * CHARS_PER_TOKEN
        self._vectors: dict[tuple[str, str, tuple[tuple[int, int], ...]], np.ndarray] = {}

    def build(self, question: str, passages: Sequence[Passage]) -> list[ChosenEvidence]:
        """The numbered sources for ``question``: passages with their chosen sentences, best first."""
        pool, chain = self._with_list_continuations(list(passages))
        candidates = self._rank(question, pool)
        chosen = self._select(candidates, pool, chain)
        by_origin: dict[int, ChosenEvidence] = {}
        for candidate in chosen:
            by_origin.setdefault(candidate.origin, ChosenEvidence(pool[candidate.origin])).sentences.append(candidate.sentence)
        # Passages of one document next to each other (one header in the prompt), documents in
        # the order of their best passage, passages of a document in rank (then list) order.
        first_of_document: dict[str, int] = {}
        for origin in sorted(by_origin):
            first_of_document.setdefault(pool[origin].doc_id, origin)
        order = sorted(by_origin, key=lambda origin: (first_of_document[pool[origin].doc_id], origin))
        return [by_origin[origin] for origin in order]

    def rank_sentences(self, query: str, passages: Sequence[Passage]) -> list[tuple[int, Sentence, float]]:
        """(position of the passage, whole sentence, score) for every sentence of ``passages``,
        best first, each text once: the debate's evidence cards choose from these."""
        ranked = sorted(self._rank(query, list(passages)), key=lambda c: -c.score)
        return [(c.origin, c.sentence, c.score) for c in ranked]

    def _with_list_continuations(self, passages: list[Passage]) -> tuple[list[Passage], list[int]]:
        """``passages`` plus, for each one that announces or carries a list, the next
        ``MAX_LIST_PASSAGES`` passages of its document (list items are long: "Second, ..." can
        start two passages later); and for each pool entry the entry whose list it belongs to
        (itself when it continues none)."""
        pool = list(passages)
        position = {p.id: i for i, p in enumerate(pool)}
        root = list(range(len(pool)))
        for start in range(len(passages)):
            if not _carries_list(pool[start]) or root[start] != start:
                continue
            current = pool[start]
            for _ in range(MAX_LIST_PASSAGES):
                following = self._neighbour(current)
                if following is None:
                    break
                if following.id not in position:
                    position[following.id] = len(pool)
                    pool.append(following)
                    root.append(start)
                else:
                    root[position[following.id]] = start
                current = following
        return pool, root

    def _sentence_vectors(self, passage: Passage, sentences: list[Sentence]) -> np.ndarray:
        key = (passage.id, passage.text, passage.set_aside)
        if key not in self._vectors:
            self._vectors[key] = np.array(self._embed_texts([s.text for s in sentences]), dtype=np.float32)
        return self._vectors[key]

    def _rank(self, question: str, pool: list[Passage]) -> list[_Candidate]:
        query_vector = np.array(self._embed_query(question), dtype=np.float32)
        query_stems = topic_stems(question)
        candidates: list[_Candidate] = []
        seen_text: set[str] = set()
        for origin, passage in enumerate(pool):
            sentences = _whole_sentences(passage)
            if not sentences:
                continue
            cosines = self._sentence_vectors(passage, sentences) @ query_vector
            prior = 1.0 - origin / max(len(pool), 1)
            announced = False
            previous_score = 0.0
            for sentence, cosine in zip(sentences, cosines):
                key = " ".join(sentence.text.lower().split())
                in_list = announced or bool(_ORDINAL_START.search(sentence.text))
                announced = announced or bool(_ANNOUNCES_LIST.search(sentence.text))
                if key in seen_text:  # consecutive passages overlap
                    continue
                seen_text.add(key)
                overlap = len(query_stems & topic_stems(sentence.text)) / max(len(query_stems), 1)
                own = COSINE_WEIGHT * float(cosine) + OVERLAP_WEIGHT * overlap + RANK_PRIOR_WEIGHT * prior
                # The sentence after a relevant one often holds the answer in words the
                # question does not use ("We should test that view ..."): it inherits part
                # of its predecessor's score.
                score = max(own, FOLLOWER_SHARE * previous_score)
                previous_score = own
                candidates.append(_Candidate(origin, sentence, score, in_list))
        return candidates

    def _select(self, candidates: list[_Candidate], pool: list[Passage], chain: list[int]) -> list[_Candidate]:
        """Best sentences first within the budget; an announced list brings its items along."""
        chosen: list[_Candidate] = []
        used = 0
        for rank, candidate in enumerate(sorted(candidates, key=lambda c: -c.score)):
            group = [candidate]
            budget = self.budget_chars
            # Only a list that is itself among the best matches is what the question asks for.
            if rank < LIST_ANNOUNCER_RANKS and _ANNOUNCES_LIST.search(candidate.sentence.text):
                root = chain[candidate.origin]
                start = pool[candidate.origin].index
                group += [c for c in candidates if c.in_list and chain[c.origin] == root and pool[c.origin].index >= start]
                budget = self.budget_chars * LIST_STRETCH
            for member in group:
                if member in chosen:
                    continue
                cost = len(member.sentence.text) + 1
                if used + cost > budget and chosen:
                    continue
                chosen.append(member)
                used += cost
        return chosen
