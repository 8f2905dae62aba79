"""Evaluate a question set against a corpus under one or more configurations, and write a report.

    python -m eval --corpus ../shared/corpus --questions ../shared/eval/dev.jsonl \\
        --config hybrid --config dense:retrieval_mode=dense --out eval-report

Writes report.json, report.md, report.html and plots into --out. ``--retrieval-only`` skips
the LLM (seconds instead of minutes). ``--check-baseline eval/baselines.json`` exits 1 when
recall@k of any configuration falls below the figure recorded there for this question set:
CI runs exactly that on the dev set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from eval.questions import QuestionSetError, load_questions
from eval.runner import ConfigError, baseline_exit_code, load_inputs, run_config

DEFAULT_BASELINES = Path(__file__).parent / "baselines.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", required=True, help="folder or file to ingest (repeatable)")
    parser.add_argument("--questions", type=Path, required=True, help="question set (JSONL, see README)")
    parser.add_argument(
        "--config", action="append", default=[], metavar="NAME[:key=value,...]",
        help="a configuration to run (repeatable; compared side by side). Default: one named 'default'.",
    )  # fmt: skip
    parser.add_argument("--half", default=None, help="only the questions of this half of a split set (tune or lockbox)")
    parser.add_argument("--retrieval-only", action="store_true", help="retrieval metrics only; no LLM")
    parser.add_argument("--debate-rounds", type=int, default=0, help="rebuttal rounds per debate question (default 0)")
    parser.add_argument("--out", type=Path, default=Path("eval-report"), help="report folder (default ./eval-report)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where to ingest (default: a temporary folder)")
    parser.add_argument(
        "--check-baseline", type=Path, nargs="?", const=DEFAULT_BASELINES, default=None,
        help=f"fail if recall@k drops below the recorded figure (default file: {DEFAULT_BASELINES.name})",
    )  # fmt: skip
    return parser


def check_baseline(report: dict, baselines_file: Path) -> list[str]:
    """Messages for every configuration below the recorded recall@k; empty if all hold."""
    baselines = json.loads(baselines_file.read_text(encoding="utf-8"))
    name = Path(report["questions_file"]).name
    if name not in baselines:
        return [f"no baseline recorded for {name} in {baselines_file}"]
    recorded = baselines[name]
    failures = []
    for run in report["configs"]:
        if run["k"] != recorded["k"]:
            continue
        got = run["by_mode"]["all"].get(f"recall_at_{run['k']}") or 0.0
        if got + 1e-9 < recorded["recall_at_k"]:
            failures.append(
                f"{run['name']}: recall@{run['k']} {got:.3f} is below the recorded {recorded['recall_at_k']:.3f} "
                f"({baselines_file.name}, measured {recorded.get('measured', '?')})"
            )
    if not any(run["k"] == recorded["k"] for run in report["configs"]):
        failures.append(f"no configuration ran with k={recorded['k']}, the k of the recorded baseline")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        questions, configs = load_inputs(load_questions, args.questions, args.config, args.corpus, (QuestionSetError,),
                                         half=args.half, out=args.out)  # fmt: skip
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    data_root = args.data_dir or Path(tempfile.mkdtemp(prefix="da-eval-"))
    started, clock = dt.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    progress = lambda line: tqdm.write(line, file=sys.stderr)  # noqa: E731  (keeps the progress bar intact)
    try:
        runs = [
            run_config(config, args.corpus, questions, data_root, retrieval_only=args.retrieval_only,
                       debate_rounds=args.debate_rounds, progress=progress)
            for config in configs
        ]  # fmt: skip
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {
        "questions_file": str(args.questions),
        "half": args.half,
        "n_questions": len(questions),
        "corpus": [str(p) for p in args.corpus],
        "retrieval_only": args.retrieval_only,
        "started_at": started,
        "seconds": time.perf_counter() - clock,
        "configs": runs,
    }
    from eval.report import render_markdown, write_report

    paths = write_report(report, args.out)
    print(render_markdown(report, []).split("\n## Questions")[0])
    print(f"report: {paths['markdown']} (also report.json, report.html and plots in {args.out})")
    if args.check_baseline:
        return baseline_exit_code(check_baseline(report, args.check_baseline), args.check_baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
