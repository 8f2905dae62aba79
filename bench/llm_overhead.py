"""Time to first token and tokens/s of ``ask`` next to raw llama.cpp on the same prompts.

For each ask question of a question set, in one process and one run:
- **raw**: ``llama_cpp.Llama.create_chat_completion(stream=True)`` on the exact messages the
  ask chain builds (same retrieved passages, same prompt, same loaded model, same options);
  the clock starts at the call.
- **raw_whole_passages**: the same, on the prompt with the five retrieved passages shown
  whole (``context_mode = "passages"``, the prompt before sentence-level context): what
  the evidence-sentence prompt saves.
- **ask**: ``AskChain.stream(question)`` as the product runs it; the clock starts before
  retrieval, and the first token is the first piece of *displayed* text (after the citation
  filter), so the figure includes everything our code adds: retrieval, prompt building, the
  LangChain wrapper and the streaming citation check. Its fixed instructions (the system
  message) come from the state the process saved when it first read them
  (``assistant.models.prefix_cache``): that is the product's design, and the raw sides do not have it.
- **ask_unsaved**: the same with the saved states dropped first, so ask reads its whole prompt
  as raw does: ``ask_unsaved / raw`` is the overhead of our code alone.
The model's context is reset before every measured call so no side finds the previous prompt
in it, and the order alternates between questions. Temperature 0: all produce the same tokens.
A further figure, ``ask_warm_prefix``, is ask with the questions asked one after another
without a reset. Prompt tokens are counted per request: the whole prompt, and for ask the
part it reads (without the saved instructions). Run: ``python -m bench.llm_overhead --corpus
../shared/corpus --questions ../shared/eval/dev.jsonl [--repeats 1] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _decode_rate(tokens: int, seconds: float, first_token_ms: float) -> float:
    """Tokens per second after the first token (the prompt is not decoding)."""
    decoding = seconds - first_token_ms / 1000
    return (tokens - 1) / decoding if tokens > 1 and decoding > 0 else 0.0


def _raw_run(llama, messages: list[dict], max_tokens: int, seed: int) -> tuple[float, int, float]:
    """(first token ms, tokens, decode tokens/s) for raw llama.cpp streaming."""
    llama.reset()
    started = time.perf_counter()
    first = None
    tokens = 0
    for chunk in llama.create_chat_completion(
        messages=messages, stream=True, max_tokens=max_tokens, temperature=0.0, seed=seed
    ):
        if chunk["choices"][0].get("delta", {}).get("content"):
            tokens += 1
            if first is None:
                first = (time.perf_counter() - started) * 1000
    first = first or 0.0
    return first, tokens, _decode_rate(tokens, time.perf_counter() - started, first)


def _ask_run(chain, llama, question: str, cold: bool = True, saved: bool = True) -> dict:
    """First displayed token ms, tokens, decode tokens/s, retrieval ms, sources shown ms and prompt
    tokens read, for the ask chain.

    ``cold=False`` keeps the context as the previous call left it; ``saved=False`` drops the saved
    instruction states first, so the whole prompt is read.
    """
    from assistant.models.prefix_cache import snapshots_of
    from assistant.chains.ask_events import Answer, SourcesFound

    if cold:
        llama.reset()
    if not saved:
        snapshots_of(llama).clear()
    started = time.perf_counter()
    first = sources = None
    answer = None
    for item in chain.stream(question):
        if isinstance(item, Answer):
            answer = item
        elif isinstance(item, SourcesFound):
            sources = (time.perf_counter() - started) * 1000
        elif first is None and isinstance(item, str) and item:
            first = (time.perf_counter() - started) * 1000
    assert answer is not None
    timing = answer.timing
    return {"first_token_ms": first or 0.0, "tokens": timing.output_tokens, "tokens_per_s": timing.tokens_per_s,
            "retrieval_ms": timing.retrieval_ms, "sources_ms": sources or 0.0,
            "prompt_tokens_read": timing.prompt_tokens - timing.reused_prompt_tokens}  # fmt: skip


def measure_llm_overhead(
    corpus: Path, questions_file: Path, repeats: int = 1, limit: int | None = None, data_dir: Path | None = None
) -> dict:
    """All figures of one run (see the module docstring); ``runs`` holds every measured call."""
    from assistant.server.service import build
    from assistant.models.llm import LlamaModelCache
    from assistant.core.settings import Settings
    from eval.questions import load_questions

    settings = Settings(data_dir=data_dir or Path(tempfile.mkdtemp(prefix="da-bench-")))
    components = build(settings)
    components.library.ingest([str(corpus)])
    model = components.chat_model
    chain = components.ask_chain()
    llama, _ = LlamaModelCache.get(model.model_path, model.n_ctx, model.n_threads, model.seed)
    questions = [q for q in load_questions(questions_file) if q.mode == "ask"][: limit]

    chain.ask(questions[0].question)  # warm-up: first-call allocations are not what we measure
    rows = _cold_runs(chain, llama, settings, questions, repeats)
    rows += _warm_runs(chain, llama, questions)
    return _overhead_report(Path(model.model_path).name, settings.generation_threads, rows)


def _prompt_tokens(llama, messages: list[dict]) -> int:
    """Tokens of the prompt as llama.cpp reads it (chat template included)."""
    from assistant.models.llm import chat_prompt_tokens

    return len(chat_prompt_tokens(llama, messages) or [])


def _cold_runs(chain, llama, settings, questions: list, repeats: int) -> list[dict]:
    """Every question ``repeats`` times on each side (raw, raw on whole passages, ask), from a reset
    context; the order of the sides alternates between questions so neither always goes first."""
    from assistant.models.llm import to_role_dicts

    rows = []
    for index, question in enumerate(questions):
        passages = chain.retriever.retrieve(question.question)
        prompts_by_side = {
            "raw": to_role_dicts(chain.answer_messages(question.question, *chain.sources(question.question, passages))),
            "raw_whole_passages": to_role_dicts(chain.answer_messages(question.question, passages)),
        }
        for _ in range(repeats):
            order = ("raw", "raw_whole_passages", "ask", "ask_unsaved")
            for side in order if index % 2 == 0 else reversed(order):
                if side in prompts_by_side:
                    messages = prompts_by_side[side]
                    first, tokens, rate = _raw_run(llama, messages, settings.llm_max_tokens, settings.llm_seed)
                    rows.append({"id": question.id, "side": side, "first_token_ms": first, "tokens": tokens,
                                 "tokens_per_s": rate, "prompt_tokens": _prompt_tokens(llama, messages)})  # fmt: skip
                else:
                    measured = _ask_run(chain, llama, question.question, saved=side == "ask")
                    rows.append({"id": question.id, "side": side, **measured})
                print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _warm_runs(chain, llama, questions: list) -> list[dict]:
    """As in real use: one question after another, each finding the previous one's prompt in the
    context, so only the instruction part at the start is reused (never the same question)."""
    rows = []
    for question in questions:
        rows.append({"id": question.id, "side": "ask_warm", **_ask_run(chain, llama, question.question, cold=False)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def _side_summary(rows: list[dict], side: str) -> dict:
    mine = [r for r in rows if r["side"] == side]
    return {
        "first_token_ms_mean": statistics.mean(r["first_token_ms"] for r in mine),
        "first_token_ms_median": statistics.median(r["first_token_ms"] for r in mine),
        "tokens_per_s_mean": statistics.mean(r["tokens_per_s"] for r in mine),
        "runs": len(mine),
    }


def _median_first_token_by_question(rows: list[dict], side: str) -> dict:
    """Question id -> median first token ms of its runs on ``side`` (the repeats of one question)."""
    by_id: dict = {}
    for r in rows:
        if r["side"] == side:
            by_id.setdefault(r["id"], []).append(r["first_token_ms"])
    return {qid: statistics.median(v) for qid, v in by_id.items()}


def _median_ratio(medians: dict, side: str, against: str) -> float:
    """Per question ``side``/``against`` first token, then the median over questions."""
    return statistics.median(medians[side][qid] / medians[against][qid] for qid in medians[side])


def _overhead_report(model_name: str, threads, rows: list[dict]) -> dict:
    """Means and medians per side, the ask-over-raw ratios, and every run."""
    sides = ("raw", "raw_whole_passages", "ask", "ask_unsaved")
    summary = {side: _side_summary(rows, side) for side in sides}
    medians = {side: _median_first_token_by_question(rows, side) for side in sides}
    asked = [r for r in rows if r["side"] == "ask"]
    return {
        "model": model_name,
        "threads": threads,
        "raw_llama_cpp": summary["raw"],
        "raw_llama_cpp_whole_passages": summary["raw_whole_passages"],
        "ask": summary["ask"],
        "ask_unsaved": summary["ask_unsaved"],
        "prompt_tokens_mean": {
            "raw": statistics.mean(r["prompt_tokens"] for r in rows if r["side"] == "raw"),
            "raw_whole_passages": statistics.mean(r["prompt_tokens"] for r in rows if r["side"] == "raw_whole_passages"),
            "ask_read": statistics.mean(r["prompt_tokens_read"] for r in asked),
        },
        # The figures: ask as the product runs it against today's five-whole-passage prompt,
        # and our code's overhead (ask reading its whole prompt) against raw llama.cpp on that prompt.
        "first_token_ratio_ask_over_whole_passages_median": _median_ratio(medians, "ask", "raw_whole_passages"),
        "first_token_ratio_ask_unsaved_over_raw_median": _median_ratio(medians, "ask_unsaved", "raw"),
        "first_token_ratio_ask_over_raw_median": _median_ratio(medians, "ask", "raw"),
        "ask_warm_prefix": _side_summary(rows, "ask_warm"),
        "ask_retrieval_ms_mean": statistics.mean(r["retrieval_ms"] for r in asked),
        "ask_sources_ms_median": statistics.median(r["sources_ms"] for r in asked),
        "tokens_per_s_ratio_ask_over_raw": summary["ask"]["tokens_per_s_mean"] / summary["raw"]["tokens_per_s_mean"],
        "runs": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1, help="measured runs per question and side")
    parser.add_argument("--limit", type=int, default=None, help="only the first N ask questions")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    report = measure_llm_overhead(args.corpus, args.questions, args.repeats, args.limit)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
