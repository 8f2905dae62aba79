"""How soon a spar answers: first mark, all marks final, whole claim check and first card after a user's turn.

    python -m bench.spar_time --corpus ../shared/corpus --runs 3 --out bench-results

Each run starts a fresh session (the user argues the skeptic side) and plays one
four-sentence opening turn; the seconds are counted from the moment the turn is handed to
the chain (the model is loaded and warm: one untimed turn is played first). Reported per
verifier mode (``--verifier``, both by default): the median of the runs for the first mark
(the rules' mark, provisional under "rules+llm"), all marks final (the last final mark: the
judge has confirmed or revised every supported one), the whole check and the first card,
against the targets (1 s, 8 s, 5 s). Each run lists its final marks and the provisional marks
the judge revised. Run it on an otherwise idle machine: two cores are easily shared away.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

MOTION = "Engaging North Korea diplomatically is the best way to reduce its nuclear threat"
# Four-sentence turns over the shared corpus: supported, contradicted and unmentioned claims mixed.
TURNS = [
    "The Kaesong complex was shut down in February 2016 after a fourth nuclear test. "
    "North Korea carried out its first nuclear test in October 2009. "
    "Diplomats from Brazil drafted the Sunshine Policy. "
    "Goodwill has not changed Pyongyang.",
    "Seoul never shut down the Kaesong industrial zone. "
    "Aid to the North was diverted to its weapons programs. "
    "Every round of talks has collapsed within a year. "
    "The North conducted its first nuclear test while aid was flowing.",
    "Sanctions are the only tool that has ever worked. "
    "The decade of sunshine ended with a nuclear test on the record. "
    "The liaison office in Kaesong was opened after the April 2018 summit. "
    "Engagement rewards a regime that breaks its word.",
]
TARGETS = {"first_mark_s": 1.0, "final_s": 8.0, "first_card_s": 5.0}


def measure_spar(corpus: Path, runs: int, data_dir: Path, verifiers: list[str]) -> dict:
    """Per verifier mode, ``runs`` timed opening turns (after one untimed warm-up turn)."""
    from assistant.server.service import build
    from assistant.chains.debate_events import CardMade, ClaimMarked, TurnFinished
    from assistant.core.settings import Settings
    from assistant.chains.configured_checks import make_verifier

    settings = Settings(data_dir=data_dir, stance_suggestions=False)
    components = build(settings)
    library = components.library
    library.ingest([str(corpus)])
    results: dict[str, dict] = {}
    for mode in verifiers:
        chain = components.spar_chain(make_verifier(settings.model_copy(update={"verifier": mode})))
        timed = []
        for n in range(runs + 1):
            session = chain.start(MOTION, "skeptic", rounds=0)
            started = time.perf_counter()
            run: dict = {"marks": [], "revised": []}
            provisional: dict[str, str] = {}
            for event in chain.play(session.id, TURNS[n % len(TURNS)]):
                now = time.perf_counter() - started
                if isinstance(event, ClaimMarked):
                    run.setdefault("first_mark_s", now)
                    if not event.final:
                        provisional[event.claim.label] = event.claim.mark
                        continue
                    run["final_s"] = now
                    run["marks"].append(event.claim.mark)
                    was = provisional.get(event.claim.label, event.claim.mark)
                    if was != event.claim.mark:
                        run["revised"].append(f"{event.claim.label}: {was} -> {event.claim.mark}")
                elif isinstance(event, TurnFinished) and event.turn.claims:
                    run["check_s"] = now
                elif isinstance(event, CardMade):
                    run.setdefault("first_card_s", now)
                elif isinstance(event, TurnFinished):
                    run["turn_s"] = now
                    run["prompt_tokens"] = event.turn.timing.get("prompt_tokens")
            if n:  # the first turn warms the model, the saved prompt prefixes and the judge
                timed.append(run)
        results[mode] = {
            "runs": timed,
            "median": {key: statistics.median(r.get(key, float("inf")) for r in timed)
                       for key in (*TARGETS, "check_s", "turn_s")},  # fmt: skip
        }
    library.close()
    return {"motion": MOTION, "targets": TARGETS, "verifiers": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spar_time", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--verifier", action="append", choices=["rules", "rules+llm"], help="default: both")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="da-bench-spar-") as folder:
        result = measure_spar(args.corpus, args.runs, Path(folder), args.verifier or ["rules", "rules+llm"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spar_time.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    for mode, measured in result["verifiers"].items():
        for n, run in enumerate(measured["runs"], start=1):
            print(f"{mode} run {n}: first mark {run['first_mark_s']:.2f} s, all final {run['final_s']:.2f} s, "
                  f"check {run['check_s']:.2f} s, first card {run['first_card_s']:.2f} s, turn {run['turn_s']:.1f} s, "
                  f"marks {run['marks']}, revised {run['revised'] or 'none'}")  # fmt: skip
        median = measured["median"]
        verdicts = ", ".join(
            f"{key} {median[key]:.2f} s ({'within' if median[key] <= target else 'OVER'} {target:g} s)"
            for key, target in TARGETS.items()
        )
        print(f"{mode} median: {verdicts}; whole turn {median['turn_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
