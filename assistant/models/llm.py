"""Chat model backends behind LangChain's ``BaseChatModel`` interface.

- ``LocalLlamaChatModel``: llama.cpp in-process (``llama-cpp-python``), streaming. Written
  here rather than taken from langchain-community, whose wrapper overrides the model's
  rope base and is being sunset. One ``Llama`` per model file lives in ``LlamaModelCache``
  with a lock, because a llama.cpp context serves one generation at a time; keeping the
  same instance also lets llama.cpp reuse the evaluated prompt prefix between calls.
- ``ChatOpenAI`` (langchain-openai) for any OpenAI-compatible server.
- ``ExtractiveChatModel``: no neural model at all; answers by quoting the source sentence
  that best overlaps the question. Deterministic, so it serves chain tests and is the
  baseline the eval compares the LLM against.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from assistant.core import prompts
from assistant.core.cancel import check_stop
from assistant.models.prefix_cache import snapshots_of
from assistant.models.structured import EXTRACTIVE_LLM_TYPE, LOCAL_LLM_TYPE
from assistant.core.settings import Settings
from assistant.core.text import STOP_WORDS, split_sentences


class LlamaModelCache:
    """The process-wide cache of loaded llama.cpp models (each with its generation lock)."""

    _models: dict[tuple, tuple[Any, threading.Lock]] = {}
    _guard = threading.Lock()

    @classmethod
    def get(cls, model_path: str, n_ctx: int, n_threads: int, seed: int) -> tuple[Any, threading.Lock]:
        key = (model_path, n_ctx, n_threads, seed)
        with cls._guard:
            if key not in cls._models:
                from llama_cpp import Llama

                llama = Llama(
                    model_path=model_path,
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    seed=seed,
                    flash_attn=True,  # measured: prompt evaluation 65 -> 70 tokens/s on 2 cores
                    verbose=False,
                )
                cls._models[key] = (llama, threading.Lock())
            return cls._models[key]


def chat_prompt_tokens(llama: Any, messages: list[dict[str, str]]) -> list[int] | None:
    """The tokens ``create_chat_completion`` will evaluate for ``messages``, built the way llama-cpp-python
    builds them from the GGUF's chat template; None if the model uses another chat format."""
    template = llama.metadata.get("tokenizer.chat_template")
    if template is None or llama.chat_handler is not None or llama.chat_format != "chat_template.default":
        return None
    eos_id, bos_id = llama.token_eos(), llama.token_bos()
    formatter = _chat_formatter(
        template,
        llama._model.token_get_text(eos_id) if eos_id != -1 else "",
        llama._model.token_get_text(bos_id) if bos_id != -1 else "",
        eos_id,
    )
    result = formatter(messages=messages)
    return llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)


@lru_cache(maxsize=4)
def _chat_formatter(template: str, eos_token: str, bos_token: str, eos_id: int) -> Any:
    """The GGUF chat template, compiled once: every generation renders its prompt (and its system
    message alone, ``_system_prefix_length``) with it, and compiling took most of each ~5 ms render."""
    from llama_cpp import llama_chat_format

    return llama_chat_format.Jinja2ChatFormatter(
        template=template, eos_token=eos_token, bos_token=bos_token, stop_token_ids=[eos_id]
    )


def _prefill(llama: Any, messages: list[dict[str, str]], step_tokens: int) -> int | None:
    """Evaluate the prompt but its last token, starting from the saved state of its system message.

    The system message holds only fixed instructions (``assistant.core.prompts``), so its state is saved
    the first time it is read (``PrefixSnapshots``) and put back whenever the context holds less of
    it, e.g. after a debate turn ran in between. The rest is read in steps of ``step_tokens`` (0:
    one step), checking the stop signal before each, so that a cancelled request lets go of the
    model while its prompt is still being read (one llama.cpp call cannot be interrupted).

    ``create_chat_completion`` then finds the prompt in the cache and evaluates one token. Should the
    tokens here ever differ from its own, it re-evaluates from the first difference: slower, never wrong.
    Returns how many prompt tokens were not read (found in the context or a saved state), None when
    the model's chat format is not one this can render.
    """
    tokens = chat_prompt_tokens(llama, messages)
    if not tokens:
        return None
    target = tokens[:-1]
    keep = common_prefix(evaluated_tokens(llama), target)
    fixed = _system_prefix_length(llama, messages, target)
    snapshots = snapshots_of(llama)
    if keep < fixed and snapshots.restore(llama, target[:fixed]):
        keep = fixed
    reused = keep
    llama.n_tokens = keep  # eval() drops the cached state after this point
    if keep < fixed:
        _evaluate(llama, target[keep:fixed], step_tokens)
        snapshots.save(llama)
        keep = fixed
    _evaluate(llama, target[keep:], step_tokens)
    check_stop()
    return reused


def _system_prefix_length(llama: Any, messages: list[dict[str, str]], target: list[int]) -> int:
    """How many leading tokens of ``target`` render the system message (0 without one)."""
    if len(messages) < 2 or messages[0]["role"] != "system":
        return 0
    alone = chat_prompt_tokens(llama, messages[:1]) or []
    return common_prefix(alone, target)


def _evaluate(llama: Any, tokens: list[int], step_tokens: int) -> None:
    step = step_tokens or len(tokens)
    for start in range(0, len(tokens), step or 1):
        check_stop()
        llama.eval(tokens[start : start + step])


def evaluated_tokens(llama: Any) -> list[int]:
    """The tokens whose state sits in the llama.cpp context now (the reusable prefix)."""
    return llama.input_ids[: llama.n_tokens].tolist()


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens of the new prompt were already evaluated, i.e. reused."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in content
        if isinstance(block, str) or block.get("type") == "text"
    )


def to_role_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> OpenAI-style role/content dicts for llama.cpp's chat template."""
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
    converted = []
    for message in messages:
        role = next((r for t, r in roles.items() if isinstance(message, t)), None)
        if role is None:
            role = message.role if isinstance(message, ChatMessage) else "user"
        converted.append({"role": role, "content": _text_of(message)})
    return converted


class LocalLlamaChatModel(BaseChatModel):
    """A GGUF model run by llama.cpp on the CPU."""

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 7
    stop: list[str] | None = None
    prefill_step_tokens: int = 0  # 0: the prompt in one llama.cpp call (a stop lands at the first token)

    @property
    def _llm_type(self) -> str:
        return LOCAL_LLM_TYPE

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "max_tokens": self.max_tokens,
                "temperature": self.temperature}  # fmt: skip

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params.update({  # a dict, not keywords: mypy types a TypedDict's update() by its keys
            "ls_provider": "llamacpp",
            "ls_model_name": kwargs.get("model", Path(self.model_path).name),
            "ls_model_type": "chat",
            "ls_temperature": kwargs.get("temperature", self.temperature),
            "ls_max_tokens": kwargs.get("max_tokens", self.max_tokens),
        })
        return params

    def _llama(self) -> tuple[Any, threading.Lock]:
        return LlamaModelCache.get(self.model_path, self.n_ctx, self.n_threads, self.seed)

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """llama.cpp options; ``response_format`` ({"type": "json_object", "schema": ...}) makes
        llama.cpp decode under the schema's grammar (the debate's evidence cards)."""
        options = {
            "max_tokens": int(kwargs.get("max_tokens", self.max_tokens)),
            "temperature": float(kwargs.get("temperature", self.temperature)),
            "stop": list(stop or self.stop or []) or None,
            "seed": self.seed,
        }
        if kwargs.get("response_format"):
            options["response_format"] = kwargs["response_format"]
        return options

    def _response_metadata(self, finish_reason: str | None, reused: int) -> dict[str, Any]:
        return {
            "finish_reason": finish_reason,
            "model_name": Path(self.model_path).name,
            "reused_prompt_tokens": reused,
        }

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama, lock = self._llama()
        role_dicts = to_role_dicts(messages)
        with lock:
            before = evaluated_tokens(llama)
            reused = _prefill(llama, role_dicts, self.prefill_step_tokens)
            produced = 0
            finish_reason = None
            for chunk in llama.create_chat_completion(messages=role_dicts, stream=True, **self._options(stop, kwargs)):
                check_stop()  # once per token: a stopped generation hands the model on within one token
                choice = chunk["choices"][0]
                finish_reason = choice.get("finish_reason") or finish_reason
                text = choice.get("delta", {}).get("content") or ""
                if not text:
                    continue
                produced += 1
                generation = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager:
                    run_manager.on_llm_new_token(text, chunk=generation)
                yield generation
            prompt_tokens = max(llama.n_tokens - produced, 0)
            if reused is None:
                reused = common_prefix(before, evaluated_tokens(llama)[:prompt_tokens])
        usage = UsageMetadata(input_tokens=prompt_tokens, output_tokens=produced, total_tokens=prompt_tokens + produced)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=usage,
                response_metadata=self._response_metadata(finish_reason, reused),
                chunk_position="last",
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Streamed and gathered, so that a stop signal reaches this token loop too (``_stream``).
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))


_WORD = re.compile(r"[a-z0-9]+")
# A numbered source as ``assistant.core.prompts.format_sources`` writes it: "[n] text", one line.
_SOURCE_LINE = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
# The question line of ``assistant.core.prompts.ANSWER_USER``.
_QUESTION_LINE = re.compile(r"^Question: (.*)$", re.MULTILINE)


class ExtractiveChatModel(BaseChatModel):
    """Quotes the source sentence with the largest word overlap with the question, cited.

    It reads the numbered sources from the prompt (``[n] ...`` lines, the format
    ``assistant.core.prompts`` writes) and the question from the last human message (its
    "Question:" line when it has one). Below
    ``min_overlap`` shared content words it declines with ``decline_text``.
    """

    decline_text: str = prompts.DECLINE
    min_overlap: int = Field(2, ge=1)

    @property
    def _llm_type(self) -> str:
        return EXTRACTIVE_LLM_TYPE

    def _answer(self, messages: list[BaseMessage]) -> str:
        prompt = "\n".join(_text_of(m) for m in messages)
        user = next((_text_of(m) for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        asked = _QUESTION_LINE.search(user)
        question = asked.group(1) if asked else user
        wanted = set(_WORD.findall(question.lower())) - STOP_WORDS
        best: tuple[int, int, str] | None = None
        for match in _SOURCE_LINE.finditer(prompt):
            number, body = int(match.group(1)), match.group(2)
            for sentence in split_sentences(body.strip()):
                overlap = len(wanted & (set(_WORD.findall(sentence.lower())) - STOP_WORDS))
                if best is None or overlap > best[0]:
                    best = (overlap, number, sentence.strip())
        if best is None or best[0] < self.min_overlap:
            return self.decline_text
        sentence = best[2].rstrip()
        return f"{sentence} [{best[1]}]"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._answer(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:  # fmt: skip
        for piece in re.findall(r"\S+\s*", self._answer(messages)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model the settings ask for (loading a local model happens on first use)."""
    if settings.llm_backend == "extractive":
        return ExtractiveChatModel()
    if settings.llm_backend == "openai":
        return _openai_compatible_chat(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=settings.openai_api_key,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            timeout=settings.openai_timeout_s,
            max_retries=1,
            stream_usage=True,
        )
    from assistant.models.model_files import resolve_gguf

    return LocalLlamaChatModel(
        model_path=str(resolve_gguf(settings)),
        n_ctx=settings.llm_context_tokens,
        n_threads=settings.generation_threads,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        seed=settings.llm_seed,
        prefill_step_tokens=settings.llm_prefill_step_tokens,
    )


def _openai_compatible_chat(**options: Any) -> BaseChatModel:
    """``ChatOpenAI`` that also sends the token limit as ``max_tokens``.

    langchain-openai sends the limit only as ``max_completion_tokens`` (OpenAI's newer name),
    which llama.cpp's server and other OpenAI-compatible servers ignore, so answers and debate
    turns ran to the model's own end (measured: 247-263 tokens for a 60-token turn). Sending
    both names caps every server. Imported here because langchain-openai is slow to import and
    only this backend needs it.
    """
    from langchain_openai import ChatOpenAI

    class OpenAICompatibleChat(ChatOpenAI):
        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            if "max_completion_tokens" in payload:
                payload.setdefault("max_tokens", payload["max_completion_tokens"])
            return payload

    return OpenAICompatibleChat(**options)
