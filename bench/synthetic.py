"""Made-up text for benchmarks: seeded, so every run measures the same work.

Words are invented syllable strings drawn with a Zipf-like frequency (a few very common,
a long tail of rare ones), which is what BM25 sees in real prose; sentences are 8-24
words. Nothing here is meant to be read; it only has to cost what real passages cost.
"""

from __future__ import annotations

import numpy as np

_SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "pel", "dra", "sun", "ith", "or", "bel", "quo", "nar", "es", "tum"]


def vocabulary(size: int = 5000, seed: int = 1) -> list[str]:
    if size > 30000:
        raise ValueError("at most 30000 distinct words (invented words are 2-4 syllables)")
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))))
    return sorted(words)


class TextMaker:
    """Sentences, passages and documents of invented words."""

    def __init__(self, seed: int = 7, vocabulary_size: int = 5000) -> None:
        self._rng = np.random.default_rng(seed)
        self._words = np.array(vocabulary(vocabulary_size, seed))
        ranks = np.arange(1, len(self._words) + 1)
        self._p = (1.0 / ranks) / (1.0 / ranks).sum()

    def sentence(self) -> str:
        words = self._rng.choice(self._words, size=int(self._rng.integers(8, 25)), p=self._p)
        return " ".join(words).capitalize() + "."

    def passage(self, sentences: int = 4) -> str:
        return " ".join(self.sentence() for _ in range(sentences))

    def document(self, paragraphs: int) -> str:
        return "\n\n".join(self.passage(int(self._rng.integers(3, 6))) for _ in range(paragraphs))

    def unit_vectors(self, n: int, dimension: int) -> np.ndarray:
        vectors = self._rng.standard_normal((n, dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
