"""mypy, configured in pyproject.toml's ``[tool.mypy]``, finds no error in assistant/, ingest/ and eval/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["assistant", "ingest", "eval"]


def _mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # a cold mypy run over the package takes about a minute
def test_mypy_finds_no_error() -> None:
    result = _mypy(*CHECKED)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow  # mypy's start-up: a few seconds
def test_mypy_does_report_a_type_error(tmp_path: Path) -> None:
    (tmp_path / "careless.py").write_text('count: int = "three"\n', encoding="utf-8")
    result = _mypy("careless.py", cwd=tmp_path)
    assert result.returncode == 1 and "[assignment]" in result.stdout, result.stdout + result.stderr
