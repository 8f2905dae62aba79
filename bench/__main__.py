"""All benchmarks in one run, reported as figures and ratios (JSON + Markdown).

    python -m bench --corpus ../shared/corpus --questions ../shared/eval/dev.jsonl --out bench-results

- ingest: passages/s of ``Library.ingest`` against raw sentence-transformers encoding of the
  same passages, with a batch-size sweep (``bench.ingest_throughput``);
- retrieval: p50/p95 latency at 1k, 10k and 100k passages, hybrid, dense and BM25
  (``bench.retrieval_scale``);
- llm: time to first token and tokens/s of ``ask`` against raw llama.cpp on the same prompts
  and on the whole-passage prompt (``bench.llm_overhead``);
- checks: seconds and prompt tokens per answer of the verifier's stages and the relevance
  check (``bench.check_cost``);
- answers (only when asked for, ``--only answers``: about 20 asks with the judge): seconds to the
  sources, the first readable item and the whole answer, free prose against quote-first answers,
  on the first ``--llm-limit`` (default 8) ask questions (``bench.answer_time``).
Run it on an otherwise idle machine: two cores are easily shared away.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
from pathlib import Path

from bench.answer_time import DEFAULT_LIMIT as DEFAULT_ANSWERS_LIMIT
from bench.answer_time import input_error

PARTS = ("ingest", "retrieval", "llm", "checks", "answers")
DEFAULT_PARTS = ("ingest", "retrieval", "llm", "checks")


def _markdown(results: dict) -> str:
    lines = [f"# Benchmarks ({results['started_at']}, {results['cpu_count']} CPUs)", ""]
    if ingest := results.get("ingest"):
        raw = ingest["raw_passages_per_s_by_batch_size"]
        lines += [
            "## Ingest throughput", "",
            f"{ingest['documents']} synthetic documents, {ingest['passages']} passages "
            f"(mean {ingest['mean_passage_chars']:.0f} characters), {ingest['threads']} threads.", "",
            "| what | passages/s |", "| --- | --- |",
            f"| `Library.ingest` (batch {ingest['embedding_batch_size']}) | {ingest['ingest_passages_per_s']:.1f} |",
            *[f"| raw `SentenceTransformer.encode`, batch {size} | {rate:.1f} |" for size, rate in raw.items()],
            f"| raw encode, one call per document | {ingest['raw_per_document_passages_per_s']:.1f} |", "",
            f"Ratio ingest / raw at the same batch size: **{ingest['ratio_ingest_over_raw']:.2f}**; "
            f"fastest raw batch size: {ingest['best_batch_size']}.", "",
        ]  # fmt: skip
    if rows := results.get("retrieval"):
        lines += ["## Retrieval latency", "", "| passages | mode | p50 ms | p95 ms | max ms | first query ms | fill s |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        lines += [
            f"| {r['passages']:,} | {r['mode']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | "
            f"{r['first_query_ms']:.0f} | {r['fill_s']:.0f} |"
            for r in rows
        ]
        lines.append("")
    if llm := results.get("llm"):
        lines += _llm_markdown(llm)
    if checks := results.get("checks"):
        from bench.check_cost import markdown

        lines += [markdown(checks)]
    if answers := results.get("answers"):
        from bench.answer_time import markdown as answers_markdown

        lines += [answers_markdown(answers)]
    return "\n".join(lines)


def _llm_markdown(llm: dict) -> list[str]:
    """The section of ``bench.llm_overhead``'s figures."""
    rows = [("raw llama.cpp, ask's prompt", llm["raw_llama_cpp"]),
            ("raw llama.cpp, five whole passages", llm["raw_llama_cpp_whole_passages"]),
            ("ask (instructions from the saved state)", llm["ask"]),
            ("ask, saved state dropped (reads its whole prompt)", llm["ask_unsaved"]),
            ("ask, questions in a row", llm["ask_warm_prefix"])]  # fmt: skip
    tokens = llm["prompt_tokens_mean"]
    return [
        "## Local LLM against raw llama.cpp", "",
        f"Model {llm['model']}, {llm['threads']} threads, context reset before every measured call but the last row.", "",
        "| | first token ms (mean) | first token ms (median) | tokens/s |", "| --- | --- | --- | --- |",
        *[f"| {name} | {r['first_token_ms_mean']:.0f} | {r['first_token_ms_median']:.0f} | {r['tokens_per_s_mean']:.2f} |"
          for name, r in rows],
        "",
        f"Median over questions of the first token ratio: ask / raw on the five-whole-passage prompt "
        f"**{llm['first_token_ratio_ask_over_whole_passages_median']:.3f}**; ask reading its whole prompt / raw on "
        f"the same prompt (our code's overhead) **{llm['first_token_ratio_ask_unsaved_over_raw_median']:.3f}**; "
        f"ask / raw on ask's prompt **{llm['first_token_ratio_ask_over_raw_median']:.3f}**. Tokens/s ask / raw "
        f"**{llm['tokens_per_s_ratio_ask_over_raw']:.3f}**; retrieval inside ask {llm['ask_retrieval_ms_mean']:.0f} ms.", "",
        f"Prompt tokens per request: {tokens['raw_whole_passages']:.0f} with whole passages, {tokens['raw']:.0f} with "
        f"evidence sentences, of which ask reads {tokens['ask_read']:.0f}; sources shown after "
        f"{llm['ask_sources_ms_median']:.0f} ms (median), before the first token.", "",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="articles for the LLM benchmark")
    parser.add_argument("--questions", type=Path, help="question set for the LLM benchmark")
    parser.add_argument("--only", default=",".join(DEFAULT_PARTS),
                        help=f"comma-separated parts of {','.join(PARTS)} (default {','.join(DEFAULT_PARTS)})")
    parser.add_argument("--sizes", default="1000,10000,100000", help="library sizes for retrieval latency")
    parser.add_argument("--documents", type=int, default=60, help="synthetic documents for the ingest benchmark")
    parser.add_argument("--llm-limit", type=int, default=None,
                        help="only the first N ask questions (answers part: default 8)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    if {"llm", "checks", "answers"} & set(parts) and not (args.corpus and args.questions):
        parser.error("the llm, checks and answers parts need --corpus and --questions")
    answers_limit = DEFAULT_ANSWERS_LIMIT if args.llm_limit is None else args.llm_limit
    if "answers" in parts and (error := input_error(args.corpus, args.questions, answers_limit)):
        parser.error(error)

    work = Path(tempfile.mkdtemp(prefix="da-bench-"))
    results: dict = {"started_at": dt.datetime.now().isoformat(timespec="seconds"), "cpu_count": os.cpu_count()}
    if "ingest" in parts:
        from bench.ingest_throughput import measure_ingest

        results["ingest"] = measure_ingest(work / "ingest", documents=args.documents)
        print(json.dumps(results["ingest"]), flush=True)
    if "retrieval" in parts:
        from bench.retrieval_scale import measure_retrieval

        results["retrieval"] = measure_retrieval(work / "retrieval", tuple(int(s) for s in args.sizes.split(",")))
    if "llm" in parts:
        from bench.llm_overhead import measure_llm_overhead

        results["llm"] = measure_llm_overhead(args.corpus, args.questions, limit=args.llm_limit, data_dir=work / "llm")
    if "checks" in parts:
        from bench.check_cost import measure_check_cost

        results["checks"] = measure_check_cost(args.corpus, args.questions, limit=args.llm_limit, data_dir=work / "checks")
    if "answers" in parts:
        from bench.answer_time import measure_answer_time

        results["answers"] = measure_answer_time(args.corpus, args.questions, answers_limit, data_dir=work / "answers")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    markdown = _markdown(results)
    (args.out / "bench.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
