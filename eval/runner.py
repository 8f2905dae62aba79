"""Run a question set against a corpus under one or more named configurations.

A configuration is a name and settings overrides (``dense:retrieval_mode=dense``,
``k3:retrieval_k=3``, ``extractive:llm_backend=extractive``); everything else comes from the
usual settings (environment, ``debate-assistant.toml``). Each configuration ingests the corpus
into its own data dir under ``data_root``; configurations that split and embed the same way
share one, so comparing generation settings does not embed the corpus twice.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from tqdm import tqdm

from typing import TYPE_CHECKING, Any, cast

from assistant.core.settings import Settings

if TYPE_CHECKING:
    from assistant.chains.debate import DebateChain
    from assistant.chains.qa import AskChain
    from assistant.server.service import Components
    from assistant.storage.library import Library
from eval.metrics import mean
from eval.questions import Question
from eval.retrieval_eval import is_scored, score_retrieval

# Settings that change what is stored: configurations differing only elsewhere share an ingest.
INGEST_SETTINGS = ("embedding_model", "embedding_model_path", "chunk_tokens", "chunk_overlap_tokens", "collection")

GENERATION_METRICS = (
    "evidence_holds_quote", "abstention_correct", "declined", "withheld", "rescued", "not_an_answer",
    "no_answer_shown", "keyword_in_answer", "answers_question", "keyword_recall",
    "citation_validity", "citation_precision", "cited_sentence_share", "cited_expected_source", "first_token_ms",
    "tokens_per_s", "verify_ms", "total_s",
)  # fmt: skip
DEBATE_METRICS = (
    "sides_cite", "advocate_own_evidence", "skeptic_own_evidence", "quote_exact", "tag_support", "model_tags",
    "repeated_cards", "moderator_cites_both", "prompt_tokens_per_turn",
)  # fmt: skip


class ConfigError(ValueError):
    """A configuration spec that cannot be turned into settings."""


@dataclass(frozen=True)
class EvalConfig:
    name: str
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> "EvalConfig":
        """``name`` or ``name:key=value,key=value`` (keys are setting names, as in the TOML file)."""
        name, _, rest = spec.partition(":")
        overrides: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"configuration {spec!r}: expected key=value, got {pair!r}")
            overrides[key.strip()] = value.strip()
        if not name.strip():
            raise ConfigError(f"configuration {spec!r} needs a name before the colon")
        unknown = sorted(set(overrides) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(f"configuration {name!r}: unknown setting(s) {', '.join(unknown)}")
        return cls(name.strip(), overrides)

    def settings(self, data_root: Path) -> Settings:
        try:
            base = Settings(**cast(dict[str, Any], self.overrides))  # strings pydantic validates per field
        except ValidationError as exc:
            raise ConfigError(f"configuration {self.name!r}: {exc}") from exc
        key = "|".join(str(getattr(base, name)) for name in INGEST_SETTINGS)
        data_dir = data_root / f"ingest-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        return Settings(**cast(dict[str, Any], self.overrides), data_dir=data_dir)


Progress = Callable[[str], None]


def load_inputs(
    load: Callable[[Path], list], path: Path, specs: Sequence[str], corpus: Sequence[Path],
    errors: tuple[type[Exception], ...], half: str | None = None, out: Path | None = None,
) -> tuple[list, list[EvalConfig]]:
    """The items of ``path`` (questions or claims; only those of ``half`` when given), the
    configurations of ``specs`` (a default one when none), and checks that the corpus exists and the
    report folder ``out`` can be written, all before any work; ``ConfigError`` with the message for
    exit code 2."""
    try:
        items = load(path)
        configs = [EvalConfig.parse(spec) for spec in specs] or [EvalConfig("default")]
    except (*errors, ConfigError, OSError) as exc:  # type: ignore[misc]  # mypy rejects a starred tuple in except
        raise ConfigError(str(exc)) from exc
    if half is not None:
        halves = sorted({item.half for item in items if item.half})
        items = [item for item in items if item.half == half]
        if not items:
            raise ConfigError(f"no item of {path} is in half {half!r}; its halves: {', '.join(halves) or 'none'}")
    if len({c.name for c in configs}) != len(configs):
        raise ConfigError("configuration names must differ")
    missing = [str(p) for p in corpus if not p.exists()]
    if missing:
        raise ConfigError(f"corpus not found: {', '.join(missing)}")
    if out is not None:  # last: a run refused for any other reason leaves no report folder behind
        check_writable(out)
    return items, configs


def check_writable(folder: Path) -> None:
    """ConfigError unless ``folder`` exists (or can be made) and takes a file: a report written only
    after a long run must not be lost to a typo in ``--out``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {folder}: {exc.strerror or exc}") from exc


def _ingest(settings: Settings, corpus: Sequence[Path], progress: Progress) -> tuple[Library, dict]:
    from assistant.storage.library import Library

    library = Library(settings)
    started = time.perf_counter()
    results = library.ingest([str(p) for p in corpus])
    errors = [r for r in results if r.status == "error"]
    for problem in errors:
        progress(f"  ingest error: {problem.message}")
    documents = library.documents()
    return library, {
        "documents": len(documents),
        "passages": sum(d.n_passages for d in documents),
        "errors": len(errors),
        "seconds": time.perf_counter() - started,
    }


def _summarise(rows: list[dict], k: int) -> dict:
    """Means over the questions of ``rows`` (missing figures left out); latency percentiles."""
    scored = [r["retrieval"] for r in rows if r.get("retrieval")]
    latencies = [s["retrieval_ms"] for s in scored]
    summary: dict[str, float | int | None] = {
        "questions": len(rows),
        "retrieval_scored": len(scored),
        f"recall_at_{k}": mean(s["recall"] for s in scored),
        "all_quotes_found": mean(s["all_found"] for s in scored),
        "mrr": mean(s["reciprocal_rank"] for s in scored),
        "retrieval_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
        "retrieval_ms_p95": float(np.percentile(latencies, 95)) if latencies else None,
    }
    generated = [r["generation"] for r in rows if r.get("generation")]
    if generated:
        for metric in GENERATION_METRICS:
            summary[metric] = mean(g.get(metric) for g in generated)
        for metric in DEBATE_METRICS:
            if any(metric in g for g in generated):
                summary[metric] = mean(g.get(metric) for g in generated if metric in g)
    return summary


@dataclass
class _Chains:
    """The model-backed chains of one configuration; both None for a retrieval-only run."""

    ask: AskChain | None = None
    debate: DebateChain | None = None
    stances: dict[str, str] = field(default_factory=dict)


def _make_chains(components: Components, corpus: Sequence[Path], retrieval_only: bool) -> _Chains:
    """The ask and debate chains from the composition root (loading the model), unless only retrieval is scored."""
    if retrieval_only:
        return _Chains()
    from eval.debate_eval import manifest_stances

    return _Chains(components.ask_chain(), components.debate_chain(), manifest_stances(corpus))


def _score_question(
    question: Question, retriever, k: int, chains: _Chains, settings: Settings, debate_rounds: int
) -> dict:
    """One question's row: its retrieval scores and, with the model, its answer's or debate's."""
    row: dict = {"id": question.id, "mode": question.mode, "question": question.question}
    if is_scored(question):
        row["retrieval"] = asdict(score_retrieval(retriever, question, k))
    if chains.ask is not None and question.mode == "ask":
        from eval.ask_eval import score_answer

        row["generation"] = asdict(score_answer(question, chains.ask.ask(question.question)))
    elif chains.debate is not None and question.mode == "debate":
        from eval.debate_eval import run_debate

        row["generation"] = asdict(run_debate(chains.debate, question, debate_rounds, chains.stances))
    if row.get("generation") and settings.llm_backend == "extractive":
        row["generation"]["tokens_per_s"] = None  # it emits whole sentences, not tokens
    return row


def run_config(
    config: EvalConfig,
    corpus: Sequence[Path],
    questions: list[Question],
    data_root: Path,
    *,
    retrieval_only: bool = False,
    debate_rounds: int = 0,
    progress: Progress = lambda line: None,
) -> dict:
    """All per-question scores of one configuration, and their means by mode (ask, debate, all)."""
    settings = config.settings(data_root)
    progress(f"[{config.name}] ingesting {', '.join(map(str, corpus))}")
    library, ingest = _ingest(settings, corpus, progress)
    from assistant.server.service import build

    components = build(settings, library=library)
    retriever = components.retriever
    k = settings.retrieval_k
    rows: list[dict] = []
    chains = _make_chains(components, corpus, retrieval_only)
    try:
        for question in tqdm(questions, desc=config.name, unit="question", file=sys.stderr, leave=False):
            rows.append(_score_question(question, retriever, k, chains, settings, debate_rounds))
            progress(f"[{config.name}] {_one_line(rows[-1], k)}")
    finally:
        library.close()
    return _config_report(config, settings, debate_rounds, ingest, rows)


def _config_report(config: EvalConfig, settings: Settings, debate_rounds: int, ingest: dict, rows: list[dict]) -> dict:
    """The report of one configuration: what it ran with, its ingest, its means by mode, every row."""
    k = settings.retrieval_k
    return {
        "name": config.name,
        "overrides": config.overrides,
        "settings": {
            "retrieval_mode": settings.retrieval_mode, "retrieval_k": k, "chunk_tokens": settings.chunk_tokens,
            "llm_backend": settings.llm_backend, "debate_rounds": debate_rounds,
        },  # fmt: skip
        "k": k,
        "ingest": ingest,
        "by_mode": {
            mode: _summarise([r for r in rows if mode == "all" or r["mode"] == mode], k)
            for mode in ("ask", "debate", "all")
            if mode == "all" or any(r["mode"] == mode for r in rows)
        },
        "questions": rows,
    }


def _one_line(row: dict, k: int) -> str:
    parts = [row["id"]]
    if row.get("retrieval"):
        parts.append(f"recall@{k}={row['retrieval']['recall']:.2f}")
    if row.get("generation"):
        g = row["generation"]
        parts.append("declined" if g["declined"] else "withheld" if g["withheld"]
                     else "related only" if g.get("not_an_answer") else "answered")  # fmt: skip
        parts.append(f"ok={g['abstention_correct']}")
        parts.append(repr(g["text"][:100]))
    return " ".join(parts)


def baseline_exit_code(failures: list[str], baselines_file: Path) -> int:
    """Print each figure that fell below its recorded baseline; 1 if any did, else 0."""
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"baseline holds ({baselines_file})")
    return 0
