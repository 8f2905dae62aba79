"""The chaos soak (bench.soak) runs end to end at toy size, so that it keeps working: real app
process on 127.0.0.1, SIGTERM and restart mid-run, random disconnects, then the data checks.
Its figures are not checked here (no timing asserts); its own pass/fail checks are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak import main as soak_main

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, *options: str) -> dict:
    output = tmp_path / "soak.json"
    code = soak_main([*options, "--output", str(output)])
    report = json.loads(output.read_text())
    assert code == 0, {name: ok for name, ok in report["checks"].items() if not ok} | {"errors": report["errors"]}
    assert all(report["checks"].values())
    return report


def test_soak_without_the_model_covers_every_kind_and_the_restart(tmp_path: Path) -> None:
    report = _run(tmp_path, "--backend", "extractive", "--minutes", "0.5", "--clients", "6", "--disconnect-share", "0.5")
    by_kind = {row["kind"]: row for row in report["table"]}
    assert {"search", "ask", "debate", "upload", "all"} <= set(by_kind)
    assert by_kind["all"]["disconnects"] > 0 and by_kind["all"]["errors"] == 0
    assert report["run"]["restart"]["exit_code"] == 0 and report["run"]["final_queue"] == {"running": False, "waiting": 0}
    # Every debate a client saw started is stored (how many start in 30 s depends on the machine's load).
    assert report["data"]["registry_and_store_agree"]
    assert sum(report["data"]["debates"].values()) >= report["data"]["debates_seen_by_clients"]


def test_soak_with_the_real_model_for_a_few_asks(tmp_path: Path) -> None:
    report = _run(tmp_path, "--backend", "llamacpp", "--minutes", "0.75", "--clients", "3", "--max-tokens", "16",
                  "--turn-max-tokens", "16", "--restart-at", "0.7")  # fmt: skip
    assert report["run"]["restart"]["exit_code"] == 0
