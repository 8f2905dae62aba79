"""Claim benchmark: does the verifier accept faithful claims and catch contradicted ones?

    python -m eval.claims --corpus ../shared/corpus --claims ../shared/eval/claims_dev.jsonl \\
        --config rules --config llm:verifier=rules+llm --out claims-report

A claims file has one JSON object per line: ``id``, ``source`` (corpus file name),
``evidence`` (the span of that file the claim is about, or a fragment of it), ``claim``,
``label`` (``supported`` or ``unsupported``) and ``kind`` (paraphrase, negation, number,
date, entity, not stated ...). The corpus is ingested like ``python -m eval`` does; each
claim's evidence is located in the ingested passages (whitespace and typographic quotes
ignored) and the verifier is run on (claim, that passage), exactly as it runs on an answer
sentence citing that passage. A claim whose evidence is in no ingested passage (a caption the
cleaner dropped) is listed as not located and left out of the figures. Reported per configuration and per kind: accuracy, precision
and recall of "supported", the share of unsupported claims caught, and seconds per claim.
With ``--spar`` each claim is checked as a sentence of a user's spar turn is: against the
library's best ``spar_claim_passages`` passages (retrieval included, no evidence given), with
the ``spar_verifier`` stage, and mapped to the spar mark (``supported`` / ``contradicted`` /
``not found``; the last two count as "unsupported"); the rows keep the mark.
Exit code 2 for a bad claims file (the message names the line), 1 with ``--check-baseline``
when a figure falls below the one recorded in ``eval/baselines.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.core.passage import Passage
from eval.questions import normalize_for_match
from eval.runner import ConfigError, EvalConfig, baseline_exit_code, load_inputs

DEFAULT_BASELINES = Path(__file__).parent / "baselines.json"
LABELS = ("supported", "unsupported")
FIGURES = ("accuracy", "supported_precision", "supported_recall", "unsupported_caught")


class ClaimSetError(ValueError):
    """A claims file line is not valid; the message names the line."""


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    evidence: str
    claim: str
    label: str
    kind: str
    half: str = ""  # "tune" or "lockbox" in a set split for honest measurement (``--half``); "" when not split


def load_claims(path: Path) -> list[Claim]:
    """The claims of ``path``; ClaimSetError naming the first bad line."""
    claims: list[Claim] = []
    seen: set[str] = set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            claim = Claim(**{name: str(data[name]).strip() for name in ("id", "source", "evidence", "claim", "label")},
                          kind=str(data.get("kind", "unspecified")).strip(), half=str(data.get("half", "")).strip())  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise ClaimSetError(f"{path}:{number}: not a valid claim ({type(exc).__name__}: {exc})") from exc
        if claim.label not in LABELS:
            raise ClaimSetError(f"{path}:{number}: label must be 'supported' or 'unsupported', not {claim.label!r}")
        if not claim.claim or not claim.evidence or not claim.source:
            raise ClaimSetError(f"{path}:{number}: claim, evidence and source must not be empty")
        if claim.id in seen:
            raise ClaimSetError(f"{path}:{number}: duplicate id {claim.id!r}")
        seen.add(claim.id)
        claims.append(claim)
    if not claims:
        raise ClaimSetError(f"{path}: no claims")
    return claims


def locate(claim: Claim, library) -> Passage:
    """The ingested passage holding ``claim.evidence`` (or two neighbours together); LookupError if none."""
    from assistant.retrieval.retrieval import LEAD_IN_CHARS

    docs = [d for d in library.documents() if Path(d.source).name == claim.source]
    if not docs:
        raise LookupError(f"{claim.id}: source {claim.source!r} is not in the ingested corpus")
    doc = docs[0]
    wanted = normalize_for_match(claim.evidence)
    passages = sorted(library.registry.passages([doc.id]), key=lambda p: p.index)
    text = library.registry.text(doc.id) or ""
    windows = [(p.id, p.text, before) for p, before in zip(passages, [None, *passages])]
    windows += [(f"{a.id}+{b.id}", text[a.start : b.end], before)
                for a, b, before in zip(passages, passages[1:], [None, *passages])]  # fmt: skip
    for pid, body, before in windows:
        if wanted in normalize_for_match(body):
            lead_in = before.text[-LEAD_IN_CHARS:] if before is not None else ""
            # As the verifier sees a retrieved passage (two neighbours joined when a span crosses their border).
            return Passage(pid, doc.id, 0, body, 0, len(body), title=doc.title, author=doc.author,
                           publisher=doc.publisher, lead_in=lead_in)  # fmt: skip
    raise LookupError(f"{claim.id}: evidence not found in the passages of {claim.source}: {claim.evidence[:80]!r}")


def _figures(rows: list[dict]) -> dict:
    """Accuracy, supported precision/recall and unsupported caught (None where undefined)."""
    tp = sum(r["label"] == "supported" and r["predicted"] == "supported" for r in rows)
    fp = sum(r["label"] == "unsupported" and r["predicted"] == "supported" for r in rows)
    fn = sum(r["label"] == "supported" and r["predicted"] == "unsupported" for r in rows)
    tn = sum(r["label"] == "unsupported" and r["predicted"] == "unsupported" for r in rows)
    seconds = [r["seconds"] for r in rows]
    return {
        "claims": len(rows),
        "accuracy": (tp + tn) / len(rows) if rows else None,
        "supported_precision": tp / (tp + fp) if tp + fp else None,
        "supported_recall": tp / (tp + fn) if tp + fn else None,
        "unsupported_caught": tn / (tn + fp) if tn + fp else None,
        "seconds_per_claim": sum(seconds) / len(seconds) if seconds else None,
    }


def run_config(config: EvalConfig, corpus: list[Path], claims: list[Claim], data_root: Path, progress=print,
               spar: bool = False) -> dict:  # fmt: skip
    """Verify every claim under one configuration; per-claim rows and the figures overall and by kind.
    ``spar``: each claim against retrieved passages, marked as a spar turn's sentence is."""
    from assistant.retrieval.retrieval import HybridRetriever
    from assistant.chains.spar import SUPPORTED, claim_mark, spar_check_settings
    from assistant.chains.configured_checks import make_verifier
    from eval.runner import _ingest

    settings = config.settings(data_root)
    progress(f"[{config.name}] ingesting {', '.join(map(str, corpus))}")
    library, ingest = _ingest(settings, corpus, progress)
    try:
        if spar:
            settings = spar_check_settings(settings)
        verifier = make_verifier(settings)
        retriever = HybridRetriever(library) if spar else None
        rows: list[dict] = []
        unlocated: list[dict] = []
        for claim in claims:
            try:
                passages = retriever.retrieve(claim.claim, settings.spar_claim_passages) if retriever else [locate(claim, library)]
            except LookupError as exc:  # e.g. a caption the cleaner dropped: nothing the product could cite
                progress(f"[{config.name}] {claim.id} NOT LOCATED: {exc}")
                unlocated.append({"id": claim.id, "kind": claim.kind, "label": claim.label, "claim": claim.claim,
                                  "reason": str(exc)})  # fmt: skip
                continue
            started = time.perf_counter()
            verdict = verifier.verify(claim.claim, passages)
            seconds = time.perf_counter() - started
            mark = claim_mark(verdict) if spar else None
            predicted = "supported" if (mark == SUPPORTED if spar else verdict.supported) else "unsupported"
            rows.append({
                **({"mark": mark} if spar else {}),
                "id": claim.id, "kind": claim.kind, "label": claim.label, "predicted": predicted,
                "correct": predicted == claim.label, "reason": verdict.reason, "stage": verdict.stage,
                "claim": claim.claim, "evidence": [e.as_dict() for e in verdict.evidence],
                "coverage": verdict.coverage, "seconds": seconds, "stage_seconds": verdict.seconds,
            })  # fmt: skip
            progress(f"[{config.name}] {claim.id} {claim.label} -> {predicted} {'ok' if predicted == claim.label else 'WRONG'}"
                     f" {verdict.reason}")  # fmt: skip
    finally:
        library.close()
    kinds = sorted({r["kind"] for r in rows})
    return {
        "name": config.name,
        "overrides": config.overrides,
        "verifier": settings.verifier,
        "ingest": ingest,
        "overall": {**_figures(rows), "not_located": len(unlocated)},
        "not_located": unlocated,
        "by_kind": {kind: _figures([r for r in rows if r["kind"] == kind]) for kind in kinds},
        "stage_seconds": {
            stage: sum(r["stage_seconds"].get(stage, 0.0) for r in rows) / max(1, sum(stage in r["stage_seconds"] for r in rows))
            for stage in ("rules", "llm") if any(stage in r["stage_seconds"] for r in rows)
        },  # fmt: skip
        "claims": rows,
    }


def _cell(value) -> str:
    return "" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def render_markdown(report: dict) -> str:
    runs = report["configs"]
    header = "| | " + " | ".join(r["name"] for r in runs) + " |"
    rule = "| --- |" + " --- |" * len(runs)
    lines = [
        "# Claim benchmark",
        "",
        f"- claims: `{report['claims_file']}` ({report['n_claims']} claims)",
        f"- corpus: {', '.join(f'`{c}`' for c in report['corpus'])}",
        f"- run: {report['started_at']}, {report['seconds']:.0f} s",
        *(["- mode: **spar** (each claim against the retrieved passages; a mark other than supported counts as unsupported)"]
          if report.get("spar") else []),
        "- configurations: " + "; ".join(f"**{r['name']}** (verifier={r['verifier']})" for r in runs),
        "",
        "## Overall",
        "",
        header,
        rule,
    ]
    for figure in (*FIGURES, "seconds_per_claim", "claims", "not_located"):
        lines.append(f"| {figure.replace('_', ' ')} | " + " | ".join(_cell(r["overall"][figure]) for r in runs) + " |")
    for stage in ("rules", "llm"):
        if any(stage in r["stage_seconds"] for r in runs):
            lines.append(f"| seconds per claim, {stage} stage | "
                         + " | ".join(_cell(r["stage_seconds"].get(stage)) for r in runs) + " |")  # fmt: skip
    lines += ["", "## By kind (accuracy / unsupported caught / supported recall)", "", header, rule]
    for kind in sorted({k for r in runs for k in r["by_kind"]}):
        cells = []
        for r in runs:
            f = r["by_kind"].get(kind)
            cells.append(" / ".join(_cell(f[n]) for n in ("accuracy", "unsupported_caught", "supported_recall")) if f else "")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for run in runs:
        lines += ["", f"## Claims: {run['name']}", "", "| id | kind | label | predicted | reason |", "| --- | --- | --- | --- | --- |"]
        for r in run["claims"]:
            mark = "" if r["correct"] else " **(wrong)**"
            lines.append(f"| {r['id']} | {r['kind']} | {r['label']} | {r['predicted']}{mark} | {r['reason'].replace('|', '/')} |")
        for r in run["not_located"]:
            lines.append(f"| {r['id']} | {r['kind']} | {r['label']} | not located (left out) | {r['reason'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, folder: Path) -> dict[str, Path]:
    from markdown_it import MarkdownIt

    from eval.report import CSS

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md", "html": folder / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    markdown = render_markdown(report)
    paths["markdown"].write_text(markdown, encoding="utf-8")
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    paths["html"].write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Claim benchmark</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>",
        encoding="utf-8",
    )
    return paths


def check_baseline(report: dict, baselines_file: Path) -> list[str]:
    """Messages for every configuration below a figure recorded for this claims file."""
    if report.get("spar"):
        return ["the baselines are recorded for claims checked against their evidence, not for --spar"]
    recorded = json.loads(baselines_file.read_text(encoding="utf-8")).get(Path(report["claims_file"]).name)
    if not recorded:
        return [f"no baseline recorded for {Path(report['claims_file']).name} in {baselines_file}"]
    failures = []
    for run in report["configs"]:
        wanted = recorded.get(run["verifier"])
        if not wanted:
            continue
        for figure in FIGURES:
            got = run["overall"].get(figure)
            if figure in wanted and (got is None or got + 1e-9 < wanted[figure]):
                failures.append(f"{run['name']}: {figure} {got} is below the recorded {wanted[figure]:.3f}")
    return failures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.claims", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", required=True, help="folder or file to ingest (repeatable)")
    parser.add_argument("--claims", type=Path, required=True, help="claims file (JSONL)")
    parser.add_argument("--config", action="append", default=[], metavar="NAME[:key=value,...]",
                        help="a configuration (repeatable), e.g. llm:verifier=rules+llm. Default: 'default'.")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("claims-report"), help="report folder")
    parser.add_argument("--data-dir", type=Path, default=None, help="where to ingest (default: a temporary folder)")
    parser.add_argument("--half", default=None, help="only the claims of this half of a split set (tune or lockbox)")
    parser.add_argument("--spar", action="store_true",
                        help="check each claim as a spar turn's sentence: against retrieved passages, as a spar mark")
    parser.add_argument("--check-baseline", type=Path, nargs="?", const=DEFAULT_BASELINES, default=None,
                        help="exit 1 if a figure drops below the one recorded for this claims file")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        claims, configs = load_inputs(load_claims, args.claims, args.config, args.corpus, (ClaimSetError,),
                                      half=args.half, out=args.out)  # fmt: skip
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data_root = args.data_dir or Path(tempfile.mkdtemp(prefix="da-claims-"))
    started, clock = dt.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        runs = [run_config(config, args.corpus, claims, data_root, progress, args.spar) for config in configs]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = {
        "claims_file": str(args.claims),
        "half": args.half,
        "spar": args.spar,
        "n_claims": len(claims),
        "corpus": [str(p) for p in args.corpus],
        "started_at": started,
        "seconds": time.perf_counter() - clock,
        "configs": runs,
    }
    paths = write_report(report, args.out)
    print(render_markdown(report).split("\n## Claims")[0])
    print(f"report: {paths['markdown']} (also report.json and report.html)")
    if args.check_baseline:
        return baseline_exit_code(check_baseline(report, args.check_baseline), args.check_baseline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
