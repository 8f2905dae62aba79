"""Write an eval run as ``report.json``, ``report.md``, ``report.html`` and PNG plots in one folder.

The Markdown puts the configurations side by side (one column each) per mode, then the
plots, then every question's figures, so a regression can be traced to the question that
caused it. The HTML is the same Markdown rendered (markdown-it), with the plots inline.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402

QUALITY = (
    "recall_at_k", "mrr", "evidence_holds_quote", "abstention_correct", "declined", "withheld", "rescued",
    "not_an_answer", "no_answer_shown", "keyword_in_answer", "answers_question",
    "keyword_recall", "citation_validity", "citation_precision",
    "cited_sentence_share", "cited_expected_source", "sides_cite", "advocate_own_evidence",
    "skeptic_own_evidence", "quote_exact", "tag_support", "model_tags", "moderator_cites_both",
)  # fmt: skip
COST = ("retrieval_ms_p50", "retrieval_ms_p95", "first_token_ms", "tokens_per_s", "verify_ms", "total_s",
        "prompt_tokens_per_turn", "repeated_cards")  # fmt: skip
LABELS = {
    "recall_at_k": "recall@k", "mrr": "MRR", "all_quotes_found": "all quotes found",
    "abstention_correct": "abstention accuracy", "keyword_recall": "keyword recall",
    "evidence_holds_quote": "evidence holds the quote", "declined": "declined (by the model)",
    "withheld": "withheld (by the checker)", "rescued": "rescued (unanswerable, withheld)",
    "not_an_answer": "related only (relevance check)", "no_answer_shown": "unanswerable: no answer shown",
    "keyword_in_answer": "answerable: keyword in the answer", "answers_question": "answers the question (check)",
    "citation_validity": "citation validity (raw)", "citation_precision": "citation precision",
    "verify_ms": "verify ms (mean)",
    "cited_sentence_share": "sentences with a citation", "cited_expected_source": "expected source cited",
    "sides_cite": "both sides cite", "advocate_own_evidence": "advocate cards from own-stance documents",
    "skeptic_own_evidence": "skeptic cards from own-stance documents", "quote_exact": "quotes exact",
    "tag_support": "tags supported by their quote", "model_tags": "tags written by the model",
    "repeated_cards": "repeated cards", "moderator_cites_both": "moderator cites both sides",
    "prompt_tokens_per_turn": "prompt tokens per turn",
    "retrieval_ms_p50": "retrieval ms (p50)", "retrieval_ms_p95": "retrieval ms (p95)",
    "first_token_ms": "first token ms (mean)", "tokens_per_s": "tokens/s (mean)", "total_s": "seconds per question",
    "questions": "questions", "retrieval_scored": "questions with a retrieval target",
}  # fmt: skip
CSS = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
)


def _metric(summary: dict, name: str, k: int):
    return summary.get(f"recall_at_{k}") if name == "recall_at_k" else summary.get(name)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def _comparison_table(runs: list[dict], mode: str) -> list[str]:
    names = ["questions", "retrieval_scored", "recall_at_k", "all_quotes_found", *QUALITY[1:], *COST]
    present = [n for n in names if any(_metric(r["by_mode"].get(mode, {}), n, r["k"]) is not None for r in runs)]
    lines = ["| metric | " + " | ".join(r["name"] for r in runs) + " |", "| --- |" + " --- |" * len(runs)]
    for name in present:
        label = LABELS.get(name, name).replace("@k", f"@{runs[0]['k']}" if len({r["k"] for r in runs}) == 1 else "@k")
        cells = [_cell(_metric(r["by_mode"].get(mode, {}), name, r["k"])) for r in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _question_table(run: dict) -> list[str]:
    lines = [
        "| id | mode | recall | RR | outcome | abstention ok | quote in evidence | keywords | validity | first token ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in run["questions"]:
        r, g = row.get("retrieval") or {}, row.get("generation") or {}
        cells = [
            row["id"], row["mode"], _cell(r.get("recall")), _cell(r.get("reciprocal_rank")),
            "" if not g else "declined" if g["declined"] else "withheld" if g.get("withheld")
            else "related only" if g.get("not_an_answer") else "answered",  # fmt: skip
            _cell(g.get("abstention_correct")), _cell(g.get("evidence_holds_quote")),
            _cell(g.get("keyword_recall")), _cell(g.get("citation_validity")),
            _cell(g.get("first_token_ms")),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _bar_plot(runs: list[dict], names: tuple[str, ...], title: str, path: Path) -> bool:
    """Grouped bars, one group per metric, one bar per configuration; False if nothing to plot."""
    summaries = [r["by_mode"]["all"] for r in runs]
    names = tuple(n for n in names if any(_metric(s, n, r["k"]) is not None for s, r in zip(summaries, runs)))
    if not names:
        return False
    width = 0.8 / len(runs)
    fig, axes = plt.subplots(figsize=(max(6, 1.1 * len(names) * max(1, len(runs) / 2)), 4))
    for i, (run, summary) in enumerate(zip(runs, summaries)):
        values = [_metric(summary, n, run["k"]) or 0.0 for n in names]
        axes.bar([x + i * width for x in range(len(names))], values, width, label=run["name"])
    axes.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(names))])
    axes.set_xticklabels([LABELS.get(n, n) for n in names], rotation=30, ha="right", fontsize=8)
    axes.set_title(title)
    axes.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _cost_plots(runs: list[dict], folder: Path) -> list[str]:
    """One small panel per cost figure (their units differ too much for one axis)."""
    names = [n for n in COST if any(r["by_mode"]["all"].get(n) is not None for r in runs)]
    if not names:
        return []
    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        axis.bar([r["name"] for r in runs], [r["by_mode"]["all"].get(name) or 0.0 for r in runs], color="#4a78a8")
        axis.set_title(LABELS.get(name, name), fontsize=9)
        axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(folder / "cost.png", dpi=110)
    plt.close(fig)
    return ["cost.png"]


def render_markdown(report: dict, plots: list[str]) -> str:
    runs = report["configs"]
    lines = [
        "# Evaluation report",
        "",
        f"- question set: `{report['questions_file']}` ({report['n_questions']} questions)",
        f"- corpus: {', '.join(f'`{c}`' for c in report['corpus'])}",
        f"- run: {report['started_at']}, {report['seconds']:.0f} s; "
        f"{'retrieval only' if report['retrieval_only'] else 'retrieval, answers and debates'}",
        "- configurations: "
        + "; ".join(f"**{r['name']}** ({', '.join(f'{k}={v}' for k, v in r['overrides'].items()) or 'defaults'})" for r in runs),
        "",
    ]
    for mode in ("all", "ask", "debate"):
        if any(mode in r["by_mode"] for r in runs):
            lines += [f"## {'All questions' if mode == 'all' else mode.capitalize() + ' questions'}", ""]
            lines += _comparison_table(runs, mode) + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    for run in runs:
        ingest = run["ingest"]
        lines += [
            f"## Questions: {run['name']}",
            "",
            f"Ingest: {ingest['documents']} documents, {ingest['passages']} passages, {ingest['seconds']:.1f} s.",
            "",
        ]
        lines += _question_table(run) + [""]
    return "\n".join(lines)


def write_report(report: dict, folder: Path) -> dict[str, Path]:
    """Write every format into ``folder``; returns the paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md", "html": folder / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    plots = []
    if _bar_plot(report["configs"], QUALITY, "Quality (all questions)", folder / "quality.png"):
        plots.append("quality.png")
    plots += _cost_plots(report["configs"], folder)
    markdown = render_markdown(report, plots)
    paths["markdown"].write_text(markdown, encoding="utf-8")
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    paths["html"].write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>",
        encoding="utf-8",
    )
    for plot in plots:
        paths[plot] = folder / plot
    return paths
