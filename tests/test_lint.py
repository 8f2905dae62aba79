"""ruff, with the small rule set in pyproject.toml's ``[tool.ruff.lint]``, finds nothing in the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["assistant", "ingest", "eval", "bench", "tests", "ui.py"]


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_ruff_finds_nothing_in_the_project() -> None:
    result = _ruff(*CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_does_report_an_unused_import(tmp_path: Path) -> None:
    (tmp_path / "careless.py").write_text("import os\n", encoding="utf-8")
    result = _ruff("careless.py", cwd=tmp_path)
    assert result.returncode == 1 and "F401" in result.stdout
