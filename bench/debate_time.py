"""Seconds per one-round debate (4 card turns + moderator) with the local model, median of N runs.

    python -m bench.debate_time --corpus ../shared/corpus --runs 3 --out bench-results

Reports per run the total seconds and, per turn, prompt tokens, first-token ms and seconds;
and the median total. Each run is a fresh debate (no quote is carried over between runs),
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


def measure_debates(corpus: Path, motion: str, runs: int, data_dir: Path, rounds: int = 1) -> dict:
    """Stage ``runs`` debates on ``motion`` and time each one."""
    from assistant.debate import DebateChain
    from assistant.library import Library
    from assistant.llm import make_chat_model
    from assistant.retrieval import HybridRetriever
    from assistant.settings import Settings
    from assistant.transcripts import TranscriptStore

    settings = Settings(data_dir=data_dir, stance_suggestions=False)
    library = Library(settings)
    library.ingest([str(corpus)])
    chain = DebateChain(HybridRetriever(library), make_chat_model(settings), TranscriptStore(settings.transcripts_path))
    results = []
    for _ in range(runs):
        started = time.perf_counter()
        debate = chain.run(motion, rounds=rounds)
        results.append({
            "seconds": time.perf_counter() - started,
            "turns": [{"role": t.role, "kind": t.kind, "prompt_tokens": t.timing.get("prompt_tokens"),
                       "output_tokens": t.timing.get("output_tokens"), "first_token_ms": t.timing.get("first_token_ms"),
                       "seconds": t.timing.get("total_s")} for t in debate.turns],
        })  # fmt: skip
    library.close()
    return {"motion": motion, "rounds": rounds, "runs": results,
            "median_seconds": statistics.median(r["seconds"] for r in results)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.debate_time", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--motion", default=DEFAULT_MOTION)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="da-bench-debate-") as folder:
        result = measure_debates(args.corpus, args.motion, args.runs, Path(folder))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "debate_time.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    for n, run in enumerate(result["runs"], start=1):
        turns = ", ".join(f"{t['role'][:3]} {t['prompt_tokens']}tok {t['seconds']:.1f}s" for t in run["turns"])
        print(f"run {n}: {run['seconds']:.1f} s ({turns})")
    print(f"median: {result['median_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
