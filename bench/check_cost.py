"""What the checks cost per answer: the verifier's two stages and the relevance check.

For each ask question of a question set, the local model answers once (checks off, so every
configuration checks the very same reply), then, timed separately on that reply:
- **verify, rules**: alignment plus the number, name, polarity and coverage rules;
- **verify, rules+llm**: the same, then the local model's Yes/No on every sentence the rules pass;
- **relevance, rules** and **relevance, rules+llm**: on what the verifier kept, as the ask chain
  runs it (only when something was kept).
Seconds per answer and per checked sentence, and the prompt tokens the judge reads, are
reported; the judge's context is shared with nothing else, as in the product.
Run: ``python -m bench.check_cost --corpus ../shared/corpus --questions ../shared/eval/dev.jsonl
[--limit N] [--json out.json]`` on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


class _CountingJudge:
    """A ``judge.LlamaJudge`` wrapper counting calls and the prompt tokens they read."""

    def __init__(self, judge) -> None:
        self.judge = judge
        self.calls = 0
        self.prompt_tokens = 0

    def _count(self, question) -> None:
        self.calls += 1
        self.prompt_tokens += len(self.judge._llama.tokenize(question.chatml().encode(), add_bos=False, special=True))

    def __call__(self, claim: str, context: str, label: str) -> bool:
        from assistant.models.yes_no import support_question

        self._count(support_question(" ".join(claim.split()), " ".join(context.split()), label))
        return self.judge(claim, context, label)

    def yes(self, question) -> bool:
        self._count(question)
        return self.judge.yes(question)

    def answers(self, question: str, answer: str, context: str) -> bool:
        from assistant.models.yes_no import answer_question

        self._count(answer_question(" ".join(question.split()), " ".join(answer.split()), " ".join(context.split())))
        return self.judge.answers(question, answer, context)

    def take(self) -> tuple[int, int]:
        """(calls, prompt tokens) since the last take."""
        taken = (self.calls, self.prompt_tokens)
        self.calls = self.prompt_tokens = 0
        return taken


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def measure_check_cost(corpus: Path, questions_file: Path, limit: int | None = None, data_dir: Path | None = None) -> dict:
    """Per-answer rows and their means (see the module docstring)."""
    from assistant.checks.grounding import check_grounding
    from assistant.server.service import build
    from assistant.chains.qa import cited_evidence
    from assistant.models.judge import make_judge
    from assistant.checks.relevance import ModelAnswerJudge, RelevanceCheck
    from assistant.core.settings import Settings
    from assistant.checks.verify import Verifier
    from eval.questions import load_questions

    settings = Settings(data_dir=data_dir or Path(tempfile.mkdtemp(prefix="da-bench-")), verifier="rules",
                        relevance="off")  # fmt: skip
    components = build(settings)
    components.library.ingest([str(corpus)])
    chain = components.ask_chain()
    judge = _CountingJudge(make_judge(settings))
    rules, with_llm = Verifier(), Verifier(judge)
    relevance_rules, relevance_llm = RelevanceCheck(), RelevanceCheck(ModelAnswerJudge(judge))
    rows = []
    for question in [q for q in load_questions(questions_file) if q.mode == "ask"][:limit]:
        answer = chain.ask(question.question)
        if not answer.raw_text.strip():
            continue
        row = {"id": question.id, "answerable": question.answerable}
        grounded, row["verify_rules_s"] = _timed(check_grounding, answer.raw_text, answer.passages, rules, answer.standalone_question)
        judge.take()
        checked, row["verify_llm_s"] = _timed(check_grounding, answer.raw_text, answer.passages, with_llm, answer.standalone_question)
        row["sentences"] = len(checked.sentences)
        row["judged_sentences"] = sum(s.stage == "llm" for s in checked.sentences)
        row["verify_llm_calls"], row["verify_llm_prompt_tokens"] = judge.take()
        row["kept_rules"], row["kept_llm"] = len(grounded.supported_sentences), len(checked.supported_sentences)
        if checked.grounded:
            evidence = cited_evidence(checked.sentences, answer.passages)
            verdict, row["relevance_rules_s"] = _timed(relevance_rules.check, answer.standalone_question, checked.text, *evidence)
            judged, row["relevance_llm_s"] = _timed(relevance_llm.check, answer.standalone_question, checked.text, *evidence)
            row["relevance_llm_calls"], row["relevance_llm_prompt_tokens"] = judge.take()
            row["answers_rules"], row["answers_llm"] = verdict.answers, judged.answers
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return _summary(rows)


def _summary(rows: list[dict]) -> dict:
    """Means per answer, per sentence and per judged sentence, with the rows."""

    def mean(key: str) -> float | None:
        values = [r[key] for r in rows if key in r]
        return statistics.mean(values) if values else None

    sentences = sum(r["sentences"] for r in rows)
    judged = sum(r["judged_sentences"] for r in rows)
    return {
        "answers": len(rows),
        "sentences_checked": sentences,
        "verify_rules_s_per_answer": mean("verify_rules_s"),
        "verify_rules_llm_s_per_answer": mean("verify_llm_s"),
        "verify_rules_s_per_sentence": sum(r["verify_rules_s"] for r in rows) / sentences if sentences else None,
        "verify_llm_stage_s_per_judged_sentence": (
            sum(r["verify_llm_s"] - r["verify_rules_s"] for r in rows) / judged if judged else None
        ),
        "verify_llm_prompt_tokens_per_judged_sentence": (
            sum(r["verify_llm_prompt_tokens"] for r in rows) / judged if judged else None
        ),
        "relevance_checked_answers": sum("relevance_llm_s" in r for r in rows),
        "relevance_rules_s_per_answer": mean("relevance_rules_s"),
        "relevance_rules_llm_s_per_answer": mean("relevance_llm_s"),
        "relevance_llm_prompt_tokens_per_answer": mean("relevance_llm_prompt_tokens"),
        "rows": rows,
    }


def markdown(report: dict) -> str:
    """The figures as a table for bench.md."""

    def fmt(value, unit: str = "") -> str:
        return "n/a" if value is None else f"{value:.3f}{unit}" if isinstance(value, float) else f"{value}{unit}"

    return "\n".join([
        "## Checks per answer", "",
        f"{report['answers']} answers, {report['sentences_checked']} sentences checked, "
        f"{report['relevance_checked_answers']} answers reached the relevance check.", "",
        "| check | seconds per answer | other |", "| --- | --- | --- |",
        f"| verify, rules | {fmt(report['verify_rules_s_per_answer'])} | {fmt(report['verify_rules_s_per_sentence'])} s per sentence |",
        f"| verify, rules+llm | {fmt(report['verify_rules_llm_s_per_answer'])} | "
        f"{fmt(report['verify_llm_stage_s_per_judged_sentence'])} s and "
        f"{fmt(report['verify_llm_prompt_tokens_per_judged_sentence'])} prompt tokens per judged sentence |",
        f"| relevance, rules | {fmt(report['relevance_rules_s_per_answer'])} | |",
        f"| relevance, rules+llm | {fmt(report['relevance_rules_llm_s_per_answer'])} | "
        f"{fmt(report['relevance_llm_prompt_tokens_per_answer'])} prompt tokens per answer |", "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="only the first N ask questions")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    report = measure_check_cost(args.corpus, args.questions, args.limit)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
