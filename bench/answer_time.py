"""How soon an answer can be read: free prose against quote-first answers (issue 27's latency target).

    python -m bench.answer_time --corpus ../shared/corpus --questions ../shared/eval/dev.jsonl --out bench-results

One library, one loaded model and two ask chains whose settings differ only in ``answer_mode``
("free": today's prose, "quotes": the default since issue 27); every other setting is the
product's default (verifier rules+llm, relevance rules). The first N ask questions are each
asked in both modes, the mode that goes first alternating from one question (and repeat) to
the next; one untimed warm-up ask per mode comes first, and the judge's context is made before
any clock starts (a running server has it; its load is a first-use cost, not an answer's).
Questions are asked in a row, as a server takes them: the model's context is not reset.

Per ask, seconds from the call to: the sources (``SourcesFound``); the first thing the user
can read as the answer ("first readable": free mode's first non-blank text piece, quotes mode's
first ``QuoteFound`` or text piece, whichever comes first; an ask with nothing to read before
its end, such as a decline, counts its whole time); for quotes mode also the first quote and
the first word of the short answer separately; the whole ``Answer`` (the final item); and the
Answer's ``verify_ms``. Reported: medians per mode, and the quotes/free ratios (per question the
median of its repeats in each mode, quotes over free, then the median over questions: the
machine is shared and noisy, so ratios measured in one run are the figures to compare), against
the issue's targets: first readable no slower than free mode, whole answer 12 s or less.
Run it on an otherwise idle machine: two cores are easily shared away.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODES = ("free", "quotes")
DEFAULT_LIMIT = 8
WHOLE_TARGET_S = 12.0
# Figures per ask that both modes have: their quotes/free ratios are reported.
COMPARED = ("sources_s", "first_read_s", "first_word_s", "whole_s", "verify_ms", "first_token_ms")
COLUMNS = {"sources_s": "sources s", "first_read_s": "first readable s", "first_quote_s": "first quote s",
           "first_word_s": "first answer word s", "whole_s": "whole answer s", "verify_ms": "verify ms",
           "first_token_ms": "model first token ms"}  # fmt: skip


def ask_questions(questions_file: Path, limit: int) -> list:
    """All the ask questions of the file (the warm-up takes the one after the first ``limit``); a
    clear ``ValueError`` when there are none or ``limit`` is below 1."""
    from eval.questions import load_questions

    if limit < 1:
        raise ValueError(f"the number of questions must be at least 1, not {limit}")
    questions = [q for q in load_questions(questions_file) if q.mode == "ask"]
    if not questions:
        raise ValueError(f"{questions_file} has no ask questions")
    return questions


def input_error(corpus: Path, questions_file: Path, limit: int, repeats: int = 1) -> str | None:
    """What is wrong with the inputs, checked before anything is loaded (None: nothing); both
    CLIs show it as a usage error, so a mistyped path costs no model load and no traceback."""
    for path in (corpus, questions_file):
        if not path.exists():
            return f"{path} does not exist"
    if repeats < 1:
        return f"the repeats must be at least 1, not {repeats}"
    try:
        ask_questions(questions_file, limit)
    except (ValueError, OSError) as exc:  # QuestionSetError is a ValueError
        return str(exc)
    return None


def _chains(library, chat_model) -> dict:
    """Mode -> an ``AskChain`` on the shared library and model, its settings differing only in
    ``answer_mode``, from the composition root."""
    from assistant.server.service import build

    return {mode: build(library.settings.model_copy(update={"answer_mode": mode}), library=library,
                        chat_model=chat_model).ask_chain()
            for mode in MODES}  # fmt: skip


def timed_ask(chain, question: str) -> dict:
    """One ask, streamed as the UI streams it: the seconds to each item the user sees (see the
    module docstring), the Answer's verify ms, model first token ms and tokens, and whether it declined."""
    from assistant.chains.ask_events import Answer, QuoteFound, SourcesFound

    started = time.perf_counter()
    row: dict = {}
    answer = None
    for item in chain.stream(question):
        now = time.perf_counter() - started
        if isinstance(item, Answer):
            answer = item
            row["whole_s"] = now
        elif isinstance(item, SourcesFound):
            row.setdefault("sources_s", now)
        elif isinstance(item, QuoteFound):
            row.setdefault("first_quote_s", now)
        elif isinstance(item, str) and item.strip():
            row.setdefault("first_word_s", now)
    assert answer is not None, "the ask stream ended without its Answer"
    readable = [row[key] for key in ("first_quote_s", "first_word_s") if key in row]
    row["first_read_s"] = min(readable, default=row["whole_s"])
    timing = answer.timing
    row.update(verify_ms=timing.verify_ms, first_token_ms=timing.first_token_ms, prompt_tokens=timing.prompt_tokens,
               output_tokens=timing.output_tokens, declined=answer.declined)  # fmt: skip
    return row


def _warm_judge(chain) -> None:
    """Make the judge's llama.cpp context now (both chains' judges share it: one per process)."""
    judge = chain.verifier.judge
    if judge is not None:
        judge("The sky is blue.", "The sky is blue.", "[1]")


def _timed_rows(chains: dict, questions: list, repeats: int) -> list[dict]:
    """Each question (and repeat) in both modes, the mode that goes first alternating."""
    rows = []
    for n, (repeat, question) in enumerate((r, q) for r in range(repeats) for q in questions):
        order = MODES if n % 2 == 0 else MODES[::-1]
        for position, mode in enumerate(order):
            row = {"id": question.id, "repeat": repeat, "mode": mode, "position": position,
                   **timed_ask(chains[mode], question.question)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def measure_answer_time(
    corpus: Path, questions_file: Path, limit: int = DEFAULT_LIMIT, repeats: int = 1, data_dir: Path | None = None
) -> dict:
    """Every timed ask and the summary (see the module docstring)."""
    from assistant.storage.library import Library
    from assistant.models.llm import make_chat_model
    from assistant.core.settings import Settings

    questions = ask_questions(questions_file, limit)
    measured, warm_up = questions[:limit], questions[min(limit, len(questions) - 1)]
    settings = Settings(data_dir=data_dir or Path(tempfile.mkdtemp(prefix="da-bench-")), stance_suggestions=False)
    library = Library(settings)
    try:
        library.ingest([str(corpus)])
        model = make_chat_model(settings)
        chains = _chains(library, model)
        for mode in MODES:  # untimed: first-call allocations and the saved instruction states
            chains[mode].ask(warm_up.question)
        _warm_judge(chains["quotes"])
        rows = _timed_rows(chains, measured, repeats)
    finally:
        library.close()
    return summarise(rows, {"questions": len(measured), "repeats": repeats, "warm_up": warm_up.id,
                            "verifier": settings.verifier, "relevance": settings.relevance,
                            "model": Path(str(getattr(model, "model_path", settings.llm_backend))).name,
                            "threads": settings.generation_threads})  # fmt: skip


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _per_question(rows: list[dict], mode: str, key: str) -> dict:
    """Question id -> the median of its repeats' ``key`` in ``mode`` (questions without one left out)."""
    by_id: dict[str, list] = {}
    for row in rows:
        if row["mode"] == mode and row.get(key) is not None:
            by_id.setdefault(row["id"], []).append(row[key])
    return {qid: statistics.median(values) for qid, values in by_id.items()}


def _ratio(rows: list[dict], key: str) -> float | None:
    """Per question quotes over free on ``key``, then the median over the questions that have both."""
    quotes, free = _per_question(rows, "quotes", key), _per_question(rows, "free", key)
    return _median(quotes[qid] / free[qid] for qid in quotes if free.get(qid))


def summarise(rows: list[dict], about: dict) -> dict:
    """Medians per mode, quotes/free ratios, the verdicts on the issue's targets, and every row."""
    medians = {mode: {key: _median(r.get(key) for r in rows if r["mode"] == mode) for key in COLUMNS}
               for mode in MODES}  # fmt: skip
    for mode in MODES:
        medians[mode]["declined"] = sum(r["declined"] for r in rows if r["mode"] == mode)
        medians[mode]["asks"] = sum(r["mode"] == mode for r in rows)
    ratios = {key: _ratio(rows, key) for key in COMPARED}
    whole = medians["quotes"]["whole_s"]
    targets = {
        "first_read_ratio_at_most": 1.0,
        "first_read_within": ratios["first_read_s"] is not None and ratios["first_read_s"] <= 1.0,
        "whole_s_at_most": WHOLE_TARGET_S,
        "whole_within": whole is not None and whole <= WHOLE_TARGET_S,
    }
    return {**about, "medians": medians, "ratios_quotes_over_free": ratios, "targets": targets, "runs": rows}


def _verdict(ok: bool) -> str:
    return "within" if ok else "OVER"


def markdown(report: dict) -> str:
    """The figures as a table for bench.md."""

    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.2f}"

    medians, ratios, targets = report["medians"], report["ratios_quotes_over_free"], report["targets"]
    header = "| | " + " | ".join(COLUMNS.values()) + " | declined |"
    rows = [f"| {mode} (median) | " + " | ".join(fmt(medians[mode][k]) for k in COLUMNS)
            + f" | {medians[mode]['declined']} of {medians[mode]['asks']} |" for mode in MODES]  # fmt: skip
    ratio_row = "| quotes / free (median of per-question ratios) | " + " | ".join(
        f"**{fmt(ratios[k])}**" if k in ratios and ratios[k] is not None else "n/a" for k in COLUMNS
    ) + " | |"
    return "\n".join([
        "## Answer latency: free prose against quote-first answers", "",
        f"{report['questions']} ask questions x {report['repeats']} repeat(s), each asked in both modes (order "
        f"alternating), after one untimed warm-up ask per mode; model {report['model']}, {report['threads']} threads, "
        f"verifier {report['verifier']}, relevance {report['relevance']}. Seconds from the call.", "",
        header, "| --- " * (len(COLUMNS) + 2) + "|", *rows, ratio_row, "",
        f"Issue 27's targets: first readable quotes/free **{fmt(ratios['first_read_s'])}** "
        f"({_verdict(targets['first_read_within'])} {targets['first_read_ratio_at_most']:g}); quotes mode's median "
        f"whole answer **{fmt(medians['quotes']['whole_s'])} s** ({_verdict(targets['whole_within'])} "
        f"{targets['whole_s_at_most']:g} s).", "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answer_time", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    parser.add_argument("--questions", type=Path, default=Path("../shared/eval/dev.jsonl"))
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="the first N ask questions")
    parser.add_argument("--repeats", type=int, default=1, help="measured asks per question and mode")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    if error := input_error(args.corpus, args.questions, args.limit, args.repeats):
        parser.error(error)
    with tempfile.TemporaryDirectory(prefix="da-bench-answers-") as folder:
        report = measure_answer_time(args.corpus, args.questions, args.limit, args.repeats, Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "answer_time.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    text = markdown(report)
    (args.out / "answer_time.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
