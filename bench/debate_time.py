"""Seconds per one-round debate (4 card turns + the judge's ballot) with the local model, median of N runs.

    python -m bench.debate_time --corpus ../shared/corpus --runs 3 --out bench-results
    python -m bench.debate_time --corpus ../shared/corpus_more --motion "..." --compare side_check
    python -m bench.debate_time --corpus ../shared/corpus --compare dispute_check

Reports per run the total seconds and, per turn, prompt tokens, first-token ms, seconds and the
seconds the side check took (``assistant.chains.side_check``); and the median total. ``--compare
CHECK`` alternates runs without and with that check (``debate_side_check`` or
``debate_dispute_check``: off, on, off, on, ...), so both medians come from the same minutes of a
shared machine; without it every run uses the settings as configured. Each run is a fresh debate (no quote is carried over between runs),
on a library ingested once into a temporary data dir (stances from the corpus's manifest).
Run it on an otherwise idle machine: two cores are easily shared away.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_MOTION = "Should South Korea reopen the Kaesong industrial park?"


def measure_debates(corpus: Path, motion: str, runs: int, data_dir: Path, rounds: int = 1,
                    compare: str | None = None) -> dict:
    """Stage ``runs`` debates on ``motion`` (for each of off and on, alternating, when ``compare`` names
    a check: "side_check" or "dispute_check") and time each one."""
    from assistant.server.service import build
    from assistant.core.settings import Settings

    settings = Settings(data_dir=data_dir, stance_suggestions=False)
    components = build(settings)
    library = components.library
    library.ingest([str(corpus)])
    model = components.chat_model
    modes: list[dict[str, bool]] = [{f"debate_{compare}": on} for on in (False, True)] if compare else [{}]
    results = []
    for _ in range(runs):
        for mode in modes:
            # A fresh chain each run: the side check remembers its answers, and a run that found them
            # remembered would time a debate nobody starts cold.
            configured = settings.model_copy(update=mode)
            chain = build(configured, library=library, chat_model=model).debate_chain()
            started = time.perf_counter()
            debate = chain.run(motion, rounds=rounds)
            results.append({
                "mode": _label(mode), "side_check": configured.debate_side_check,
                "dispute_check": configured.debate_dispute_check, "seconds": time.perf_counter() - started,
                "turns": [{"role": t.role, "kind": t.kind, "prompt_tokens": t.timing.get("prompt_tokens"),
                           "output_tokens": t.timing.get("output_tokens"), "first_token_ms": t.timing.get("first_token_ms"),
                           "side_check_s": t.timing.get("side_check_s", 0.0), "seconds": t.timing.get("total_s")}
                          for t in debate.turns],
            })  # fmt: skip
    library.close()
    medians = {_label(mode): statistics.median(r["seconds"] for r in results if r["mode"] == _label(mode)) for mode in modes}
    return {"motion": motion, "rounds": rounds, "runs": results, "median_seconds_by_mode": medians}


def _label(mode: dict[str, bool]) -> str:
    """"debate_dispute_check on", or "as configured" for no override."""
    return ", ".join(f"{name} {'on' if on else 'off'}" for name, on in mode.items()) or "as configured"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.debate_time", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--motion", default=DEFAULT_MOTION)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--compare", choices=["side_check", "dispute_check"],
                        help="alternate runs without and with this check (default: every run as configured)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="da-bench-debate-") as folder:
        result = measure_debates(args.corpus, args.motion, args.runs, Path(folder), compare=args.compare)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "debate_time.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    for n, run in enumerate(result["runs"], start=1):
        turns = ", ".join(f"{t['role'][:3]} {t['prompt_tokens']}tok {t['seconds']:.1f}s (side {t['side_check_s']:.1f}s)"
                          for t in run["turns"])  # fmt: skip
        print(f"run {n} ({run['mode']}): {run['seconds']:.1f} s ({turns})")
    for mode, seconds in result["median_seconds_by_mode"].items():
        print(f"median, {mode}: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
