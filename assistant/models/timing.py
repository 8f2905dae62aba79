"""Where the time of one generation went: the one timing record of answers, debate turns and
structured replies, kept with the models so every backend reports the same figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Timing:
    """Where the time of one generation went. ``tokens_per_s`` is the decode rate after the first token.

    ``first_token_ms`` counts from the start of generation; ``retrieval_ms`` and
    ``condense_ms`` come before it (answers only). ``reused_prompt_tokens`` is how much of
    the prompt was not read: found already evaluated, or the system message's saved state
    (``assistant.models.prefix_cache``; local backend only).
    """

    condense_ms: float = 0.0
    retrieval_ms: float = 0.0
    first_token_ms: float | None = None
    generation_s: float = 0.0
    output_tokens: int = 0
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    verify_ms: float = 0.0  # checking the reply's sentences against their evidence (assistant.checks.verify)
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        if self.first_token_ms is None or self.output_tokens < 2:
            return 0.0
        decoding_s = self.generation_s - self.first_token_ms / 1000
        return (self.output_tokens - 1) / decoding_s if decoding_s > 0 else 0.0

    def as_dict(self) -> dict:
        """All figures, the derived tokens/s included (for JSON and the transcript store)."""
        return {**asdict(self), "tokens_per_s": self.tokens_per_s}
