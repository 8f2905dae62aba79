"""The Yes/No judge: a short question put to the model, answered Yes or No, on every backend.

The verifier asks it whether a sentence is true according to its evidence, the relevance check
whether an answer answers the question, the debate whether a rebuttal disputes the card it names.
Each asks a ``YesNo`` (a system line and a user message); the backend decides how it is decoded:

- the local GGUF (``llamacpp``, and the extractive baseline, which has no model of its own):
  raw ChatML under the grammar ``root ::= "Yes" | "No"``, 2 tokens, temperature 0, in a small
  llama.cpp context of its own (``LlamaJudge``), so judging never evicts the chat model's prompt;
- an OpenAI-compatible server (``openai``): the same messages through the chat model under a
  JSON schema whose one field is "Yes" or "No" (``ChatModelJudge``), at temperature 0, so a larger
  model served for a school judges with the same question.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.models.llm import LlamaModelCache, common_prefix, evaluated_tokens, make_chat_model
from assistant.models.model_files import resolve_gguf
from assistant.core.settings import Settings
from assistant.models.structured import structured_reply
from assistant.models.yes_no import YesNo, YesNoJudge, odds_of_yes

JUDGE_GRAMMAR = 'root ::= "Yes" | "No"'
YES_NO_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["Yes", "No"]}},
    "required": ["answer"],
}


class LlamaJudge(YesNoJudge):
    """The local GGUF model as a Yes/No judge, decoded under a two-answer grammar.

    Runs in its own small llama.cpp context (the weights are memory-mapped, so shared), so
    judging never evicts the answer or debate prompt that the chat model keeps evaluated.
    The context is made on the first question, not here: a spar turn's rules marks are shown
    before anything waits for it (measured: 5.7 s to load on two busy cores).
    """

    def __init__(self, model_path: str, n_threads: int, n_ctx: int = 1024, seed: int = 7) -> None:
        self._key = (model_path, n_ctx, n_threads, seed)

    @cached_property
    def _model(self) -> tuple:
        """The llama.cpp context and its lock (``LlamaModelCache``: one per process and key)."""
        return LlamaModelCache.get(*self._key)

    @property
    def _llama(self):
        return self._model[0]

    @cached_property
    def _grammar(self):
        from llama_cpp import LlamaGrammar

        return LlamaGrammar.from_string(JUDGE_GRAMMAR, verbose=False)

    def yes(self, question: YesNo) -> bool:
        llama, lock = self._model
        with lock:
            out = llama.create_completion(question.chatml(), max_tokens=2, temperature=0.0, grammar=self._grammar)
        return out["choices"][0]["text"].strip().startswith("Yes")

    def yes_odds(self, question: YesNo) -> float | None:
        return odds_of_yes(self, question)

    def first_word_logprobs(self, question: YesNo, reply_start: str, words: Sequence[str]) -> list[float]:
        """How likely the model is to go on ``reply_start`` with each of ``words``: the log-probability
        of each word's first token, over those tokens only (their first tokens must differ).

        Read from the logits after the prompt, nothing sampled: a choice decoded under a grammar
        gives only the winner, and this model's winner leans to one option whatever the sentence
        (``assistant.chains.side_check``). The prompt's evaluated prefix is kept, so questions that share
        their start (one motion, many sentences) read only what differs.
        """
        import numpy as np

        llama, lock = self._model
        firsts = [llama.tokenize(word.encode(), add_bos=False, special=False)[0] for word in words]
        if len(set(firsts)) != len(firsts):
            raise ValueError(f"the words {list(words)} do not start with different tokens")
        tokens = llama.tokenize((question.chatml() + reply_start).encode(), add_bos=False, special=True)
        with lock:
            llama.n_tokens = min(common_prefix(evaluated_tokens(llama), tokens), len(tokens) - 1)
            llama.eval(tokens[llama.n_tokens :])
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
            chosen = logits[firsts].astype(np.float64)
        chosen -= chosen.max()
        return [float(v) for v in chosen - np.log(np.exp(chosen).sum())]


class ChatModelJudge(YesNoJudge):
    """Any chat model as a Yes/No judge: the question as messages, the reply under ``YES_NO_SCHEMA``
    (a grammar on llama.cpp servers, ``response_format`` on others). A reply that is not the schema's
    object (a server that ignores ``response_format``) counts as Yes only when it starts with Yes."""

    def __init__(self, chat_model: BaseChatModel, max_tokens: int = 12) -> None:
        self.chat_model = chat_model
        self.max_tokens = max_tokens

    def yes(self, question: YesNo) -> bool:
        messages = [SystemMessage(content=question.system), HumanMessage(content=question.user)]
        reply = structured_reply(self.chat_model, messages, YES_NO_SCHEMA, self.max_tokens)
        if reply.parsed is not None:
            return reply.parsed.get("answer") == "Yes"
        return reply.raw.strip().strip('"{} ').lower().startswith("yes")


def make_judge(settings: Settings) -> YesNoJudge:
    """The judge of the configured backend: the OpenAI-compatible server's model (at temperature 0)
    for ``openai``; otherwise the local GGUF (the packaged one or ``llm_model_path``)."""
    if settings.llm_backend == "openai":
        return ChatModelJudge(make_chat_model(settings.model_copy(update={"llm_temperature": 0.0})))
    return LlamaJudge(str(resolve_gguf(settings)), settings.generation_threads, seed=settings.llm_seed)
