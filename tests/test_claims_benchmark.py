"""The claim benchmark (``python -m eval.claims``): bad files, report formats, and the CI gate.

The gate runs on the shared claim set (``../shared/eval/claims_dev.jsonl``) and fails when a
figure drops below the one recorded in ``eval/baselines.json``: the rules stage on every run,
the default verifier (rules + the local model as judge) with the slow tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.claims import ClaimSetError, load_claims, main
from tests.conftest import ARTICLES, shared_dir

CLAIMS = shared_dir() / "eval" / "claims_dev.jsonl"
CORPUS = shared_dir() / "corpus"
needs_shared = pytest.mark.skipif(not CLAIMS.exists(), reason="the shared claim set is not there")


def _claim(**fields) -> str:
    base = {"id": "c1", "source": "pro_engagement.txt", "evidence": "40,000 tonnes of grain",
            "claim": "The accord let 40,000 tonnes of grain cross the border.", "label": "supported", "kind": "number"}
    return json.dumps({**base, **fields})  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", ":2: not a valid claim"),
        (_claim(label="maybe"), ":2: label must be"),
        (json.dumps({"id": "x", "claim": "c"}), ":2: not a valid claim"),
        (_claim(), ":2: duplicate id"),
        (_claim(id="c2", evidence=""), ":2: claim, evidence and source must not be empty"),
    ],
)
def test_a_bad_claims_file_names_the_line_and_exits_2(tmp_path: Path, capsys, line: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_claim() + "\n" + line + "\n")
    with pytest.raises(ClaimSetError, match=message):
        load_claims(bad)
    assert main(["--corpus", str(ARTICLES), "--claims", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_report_formats_and_figures_on_fixture_claims(tmp_path: Path) -> None:
    claims = tmp_path / "fixture_claims.jsonl"
    claims.write_text("\n".join([
        _claim(),
        _claim(id="c2", claim="The accord let 90,000 tonnes of grain cross the border.", label="unsupported"),
        _claim(id="c3", source="skeptic.txt", evidence="collapsed after eight months", kind="negation",
               claim="Reyne says the Copper Lake agreement held for years.", label="unsupported"),
        _claim(id="c4", source="skeptic.txt", evidence="a caption that is not there", kind="entity"),
    ]) + "\n")  # fmt: skip
    out = tmp_path / "r"
    assert main(["--corpus", str(ARTICLES), "--claims", str(claims), "--out", str(out), "--config", "rules"]) == 0
    report = json.loads((out / "report.json").read_text())
    run = report["configs"][0]
    assert run["verifier"] == "rules" and run["overall"]["not_located"] == 1
    assert set(run["overall"]) >= {"accuracy", "supported_precision", "supported_recall", "unsupported_caught"}
    assert run["overall"]["supported_recall"] == 1.0 and run["by_kind"]["number"]["accuracy"] == 1.0
    row = next(r for r in run["claims"] if r["id"] == "c1")
    assert "40,000 tonnes" in row["evidence"][0]["text"] and row["evidence"][0]["end"] > row["evidence"][0]["start"]
    assert "## By kind" in (out / "report.md").read_text() and "<table>" in (out / "report.html").read_text()


@pytest.mark.slow  # a few seconds: the fast lane stays under two minutes
@needs_shared
def test_rules_hold_the_recorded_figures_on_the_shared_claim_set(tmp_path: Path) -> None:
    args = ["--corpus", str(CORPUS), "--claims", str(CLAIMS), "--out", str(tmp_path / "r"), "--config", "rules:verifier=rules"]
    assert main([*args, "--check-baseline"]) == 0


@needs_shared
@pytest.mark.slow
def test_the_default_verifier_holds_the_recorded_figures_on_the_shared_claim_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DA_VERIFIER")  # the product's default: rules + the local model as judge
    out = tmp_path / "r"
    assert main(["--corpus", str(CORPUS), "--claims", str(CLAIMS), "--out", str(out), "--check-baseline"]) == 0
    run = json.loads((out / "report.json").read_text())["configs"][0]
    assert run["verifier"] == "rules+llm"
    assert run["overall"]["unsupported_caught"] >= 0.9 and run["overall"]["supported_recall"] >= 0.85


@pytest.mark.slow  # several seconds: the fast lane stays under two minutes
def test_spar_mode_checks_each_claim_against_retrieved_passages_and_keeps_its_mark(tmp_path: Path) -> None:
    """No evidence given: the claim is retrieved for, as a spar turn's sentence is; a claim whose
    evidence the cleaner dropped is still checked (and nothing supports it)."""
    claims = tmp_path / "fixture_claims.jsonl"
    claims.write_text("\n".join([
        _claim(),
        _claim(id="c2", claim="The accord let 90,000 tonnes of grain cross the border.", label="unsupported"),
        _claim(id="c3", source="skeptic.txt", evidence="a caption that is not there", kind="entity",
               claim="Penguins from Brazil drafted the Harbor Accord.", label="unsupported"),
    ]) + "\n")  # fmt: skip
    out = tmp_path / "r"
    args = ["--corpus", str(ARTICLES), "--claims", str(claims), "--out", str(out), "--config", "rules", "--spar"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    marks = {r["id"]: r["mark"] for r in report["configs"][0]["claims"]}
    assert report["spar"] and report["configs"][0]["overall"]["not_located"] == 0
    assert marks == {"c1": "supported", "c2": "contradicted", "c3": "not found"}
    assert "mode: **spar**" in (out / "report.md").read_text()
    assert main([*args, "--check-baseline"]) == 1  # the recorded figures are for claims checked against their evidence


def test_half_selects_the_claims_of_one_half_before_any_work(tmp_path: Path, capsys) -> None:
    """A set split into tune and lockbox halves is run one half at a time (``--half``), so the lockbox
    stays locked; a half the file does not have, or a report folder that cannot be written, exits 2
    before anything is ingested."""
    from eval.runner import load_inputs

    claims = tmp_path / "split.jsonl"
    claims.write_text("\n".join([_claim(half="tune"), _claim(id="c2", half="lockbox"), _claim(id="c3", half="tune")]) + "\n")
    tune, _ = load_inputs(load_claims, claims, [], [ARTICLES], (ClaimSetError,), half="tune")
    assert [c.id for c in tune] == ["c1", "c3"] and {c.half for c in tune} == {"tune"}
    args = ["--corpus", str(ARTICLES), "--claims", str(claims)]
    assert main([*args, "--half", "test", "--out", str(tmp_path / "r")]) == 2
    assert "no item of" in capsys.readouterr().err and not (tmp_path / "r" / "report.json").exists()
    assert main([*args, "--half", "tune", "--out", "/dev/null/r"]) == 2
    assert "cannot write the report to /dev/null/r" in capsys.readouterr().err
